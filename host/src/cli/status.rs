//! `tenure status --admin ADDR [--json]`: a node's status, readable or raw.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use tenure_host::node::NodeReport;

/// Fetches `GET /status` from the admin endpoint at `admin`.
pub async fn fetch(admin: SocketAddr) -> anyhow::Result<NodeReport> {
    let (code, body) = request(admin, "GET", "/status", &[]).await?;
    if code != 200 {
        bail!("{admin} answered {code}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("unexpected reply from {admin}: {body}"))
}

/// One HTTP/1.1 request to the loopback admin endpoint, `Connection:
/// close`, the reply read to the end: the status code and the body. A
/// minimal client, enough for the few requests the CLI makes.
pub async fn request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(admin).await?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .with_context(|| format!("no answer from {admin} within 60 s"))?
        .with_context(|| format!("cannot reach the admin endpoint at {admin}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("malformed HTTP reply from {admin}"))?;
    let code = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("malformed HTTP status line from {admin}"))?;
    Ok((code, body.to_string()))
}

/// Prints the status, as JSON or readably.
pub async fn status(admin: SocketAddr, json: bool) -> anyhow::Result<ExitCode> {
    let report = fetch(admin).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "node      {} (cluster {})",
        report.node_id, report.cluster_id
    );
    println!("role      {} in term {}", report.role, report.term);
    println!(
        "leader    {}",
        report.leader.as_deref().unwrap_or("none known")
    );
    println!(
        "members   {} (quorum {})",
        report.members.join(", "),
        report.quorum
    );
    println!(
        "peers     {}",
        if report.peers.is_empty() {
            "none heard from".to_string()
        } else {
            report.peers.join(", ")
        }
    );
    match &report.plugin {
        Some(p) => println!("plugin    {} (sha256 {})", p.name, &p.sha256),
        None => println!("plugin    none"),
    }
    println!(
        "protocol  version {} (sha256 {})",
        report.protocol_version, report.protocol_sha256
    );
    println!("listen    {}   admin {}", report.listen, report.admin);
    println!(
        "frames    {} sent, {} received, {} dropped, {} rejected",
        report.transport.sent,
        report.transport.received,
        report.transport.dropped,
        report.transport.rejected
    );
    println!("uptime    {:.1} s", report.uptime_ms as f64 / 1000.0);
    Ok(ExitCode::SUCCESS)
}
