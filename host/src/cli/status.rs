//! `tenure status --admin ADDR [--json]`: a node's status, readable or raw.

use std::net::SocketAddr;
use std::process::ExitCode;

use tenure_host::admin_client::{Credentials, STATUS_TIMEOUT, fetch_status_as, request_as};

/// Prints the status, as JSON or readably.
pub async fn status(
    admin: SocketAddr,
    credentials: &Credentials,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = fetch_status_as(admin, credentials, STATUS_TIMEOUT).await?;
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
    if report.role == "leader" {
        match report.lease_remaining_ms {
            Some(ms) => println!(
                "lease     {ms:.0} ms left (fencing token: term {})",
                report.term
            ),
            None => println!("lease     none (no majority acknowledged lately)"),
        }
    }
    match &report.plugin {
        Some(p) => {
            println!("plugin    {} (sha256 {})", p.name, &p.sha256);
            // What the plugin says of itself (`inspect()`), best effort.
            if let Ok((200, body)) =
                request_as(admin, credentials, "GET", "/inspect", &[], STATUS_TIMEOUT).await
                && let Ok(pairs) =
                    serde_json::from_str::<std::collections::BTreeMap<String, String>>(&body)
            {
                for (key, value) in pairs {
                    println!("          {key} = {value}");
                }
            }
        }
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
    let identity = if report.abstaining {
        "LOST ITS STATE: abstains for good (remove it with `tenure leave`, restart it \
         under a new node id)"
    } else if report.confirmed {
        "confirmed by its peers"
    } else {
        "awaiting its peers' confirmation (it votes once a majority of them answered)"
    };
    println!("data id   {} ({identity})", report.data_id);
    if report.transport.duplicate_ids > 0 {
        println!(
            "WARNING   {} hellos refused: a second live process claims a peer's node id",
            report.transport.duplicate_ids
        );
    }
    println!("uptime    {:.1} s", report.uptime_ms as f64 / 1000.0);
    Ok(ExitCode::SUCCESS)
}
