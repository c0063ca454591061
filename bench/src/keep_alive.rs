//! Probes over kept-alive connections: one HTTP/1.1 connection per member,
//! reused from poll to poll.
//!
//! Polling every millisecond with a new connection per request costs each
//! member a TCP accept and teardown per poll, and those (~70 µs of a
//! Tenure node's CPU per `/status`, mostly in the kernel) compete for the
//! same two cores the survivors elect on. Reusing the connection leaves the
//! request itself. Both systems are probed the same way (etcd's Go server
//! keeps connections alive as Tenure's admin endpoint does), so the
//! comparison stays fair. `--keep-alive on` turns it on; off is the default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Whether probes keep their connections, or open one per request (the
/// default: in the 2026-12-04 runs in BENCHMARKS.md keeping them did not
/// lower the polled failover time).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Idle connections by member address, ready for the next probe.
static IDLE: Mutex<BTreeMap<SocketAddr, Vec<TcpStream>>> = Mutex::new(BTreeMap::new());

/// Turns kept-alive probing on or off for the rest of the run.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether probes reuse connections ([`set_enabled`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn take(addr: SocketAddr) -> Option<TcpStream> {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    idle.get_mut(&addr)?.pop()
}

fn give_back(addr: SocketAddr, stream: TcpStream) {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    idle.entry(addr).or_default().push(stream);
}

/// One request to `addr` within `within`, on an idle connection if there
/// is one (else a new one); returns the status code and body. A reused
/// connection that the server has closed meanwhile (its idle timeout, a
/// restart) is retried once on a new connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    within: Duration,
) -> anyhow::Result<(u16, String)> {
    let attempt = async {
        if let Some(stream) = take(addr)
            && let Ok(answer) = exchange(addr, stream, method, path, body).await
        {
            return Ok(answer);
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        exchange(addr, stream, method, path, body).await
    };
    tokio::time::timeout(within, attempt)
        .await
        .with_context(|| format!("no answer from {addr} within {within:?}"))?
}

/// Sends one request on `stream`, reads the reply by its `content-length`,
/// and returns the stream to the pool unless the server said it closes.
async fn exchange(
    addr: SocketAddr,
    mut stream: TcpStream,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut got = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let (head_len, length, closes) = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            if head.contains("transfer-encoding: chunked") {
                bail!("{addr} answered chunked; only content-length replies are read");
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse().ok())
                .with_context(|| format!("no content-length from {addr}"))?;
            break (end + 4, length, head.contains("connection: close"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("{addr} closed the connection");
        }
        got.extend_from_slice(&chunk[..n]);
    };
    while got.len() < head_len + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("{addr} closed the connection mid-reply");
        }
        got.extend_from_slice(&chunk[..n]);
    }
    let code = std::str::from_utf8(&got[..head_len])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("malformed status line from {addr}"))?;
    let text = String::from_utf8_lossy(&got[head_len..head_len + length]).into_owned();
    if !closes && got.len() == head_len + length {
        give_back(addr, stream);
    }
    Ok((code, text))
}
