//! A minimal client for a node's admin endpoint (loopback HTTP/1.1), used
//! by the `tenure` CLI and by the multi-process tests.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::node::NodeReport;

/// How long a `GET /status` may take: a live node answers in
/// milliseconds, so waiting longer only hides a frozen or stopped one.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an action (`POST /plugin`, `/protocol`, `/step-down`, ...) may
/// take: an uncached plugin compiles before the node answers.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Fetches `GET /status` from the admin endpoint at `admin`, giving up
/// after `within` (see [`STATUS_TIMEOUT`]).
pub async fn fetch_status(admin: SocketAddr, within: Duration) -> anyhow::Result<NodeReport> {
    let (code, body) = request(admin, "GET", "/status", &[], within).await?;
    if code != 200 {
        bail!("{admin} answered {code}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("unexpected reply from {admin}: {body}"))
}

/// One HTTP/1.1 request to the loopback admin endpoint, `Connection:
/// close`, the reply read to the end within `within`: the status code and
/// the body. A minimal client, enough for the few requests the CLI and the
/// tests make.
pub async fn request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    within: Duration,
) -> anyhow::Result<(u16, String)> {
    let reply = exchange(admin, method, path, body, within).await?;
    Ok((reply.code, reply.body))
}

/// An admin endpoint's whole answer: see [`exchange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminReply {
    /// The HTTP status code.
    pub code: u16,
    /// The header lines, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl AdminReply {
    /// The first header called `name` (lower case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Like [`request`], with the reply's headers (`Retry-After` on a refusal
/// that may succeed later, say).
pub async fn exchange(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    within: Duration,
) -> anyhow::Result<AdminReply> {
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
    let response = tokio::time::timeout(within, exchange)
        .await
        .with_context(|| format!("no answer from {admin} within {within:?}"))?
        .with_context(|| format!("cannot reach the admin endpoint at {admin}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("malformed HTTP reply from {admin}"))?;
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("malformed HTTP status line from {admin}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(AdminReply {
        code,
        headers,
        body: body.to_string(),
    })
}
