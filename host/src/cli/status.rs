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
    let body = http_get(admin, "/status").await?;
    serde_json::from_str(&body).with_context(|| format!("unexpected reply from {admin}: {body}"))
}

/// A minimal HTTP/1.1 GET for the loopback admin endpoint: one request,
/// `Connection: close`, the body read to the end.
pub async fn http_get(admin: SocketAddr, path: &str) -> anyhow::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(admin).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .with_context(|| format!("no answer from {admin} within 5 s"))?
        .with_context(|| format!("cannot reach the admin endpoint at {admin}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("malformed HTTP reply from {admin}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    if !status_line.contains(" 200 ") {
        bail!("{admin} answered {status_line}: {}", body.trim());
    }
    Ok(body.to_string())
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
    println!("protocol  sha256 {}", report.protocol_sha256);
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
