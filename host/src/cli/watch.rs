//! `tenure watch --admin ADDR [--json]`: follows a node's `GET /watch`
//! stream and prints one line per leadership change, the current state
//! first, until the node goes away (exit 1) or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use tenure_host::admin_client::Credentials;

/// Streams the node's changes to stdout: `--json` prints each event's
/// JSON as it came; otherwise one sentence per change.
pub async fn watch(
    admin: SocketAddr,
    credentials: &Credentials,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut stream = tenure_host::admin_client::connect(admin, credentials)
        .await
        .with_context(|| format!("cannot reach the admin endpoint at {admin}"))?;
    // HTTP/1.0: the body is the stream itself, up to the close (no chunks).
    stream
        .write_all(
            format!(
                "GET /watch HTTP/1.0\r\nHost: {admin}\r\n{}\r\n",
                credentials.http_header()
            )
            .as_bytes(),
        )
        .await?;
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next_line().await?.unwrap_or_default();
    if !status.contains(" 200") {
        anyhow::bail!("{admin} answered {status:?} to GET /watch");
    }
    // Headers end at the first empty line.
    while let Some(line) = lines.next_line().await? {
        if line.is_empty() {
            break;
        }
    }
    let mut event = String::new();
    while let Some(line) = lines.next_line().await? {
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            let data = data.trim();
            if json {
                println!("{data}");
            } else {
                println!("{}", describe(&event, data));
            }
        }
    }
    eprintln!("the node at {admin} closed the stream");
    Ok(ExitCode::FAILURE)
}

/// One event in words: `#4 n1 leads term 3 (fencing token 3, good for 97 ms)`.
fn describe(event: &str, data: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return format!("{event}: {data}");
    };
    if event == "lagged" {
        return format!(
            "(missed {} changes; the current state follows)",
            v["missed"]
        );
    }
    let seq = v["seq"].as_u64().unwrap_or(0);
    let node = v["node"].as_str().unwrap_or("?");
    let term = v["term"].as_u64().unwrap_or(0);
    match (v["role"].as_str(), v["fencing_token"].as_u64()) {
        (Some("leader"), Some(token)) => format!(
            "#{seq} {node} leads term {term} (fencing token {token}, good for {:.0} ms)",
            v["valid_for_ms"].as_f64().unwrap_or(0.0)
        ),
        (Some("leader"), None) => {
            format!("#{seq} {node} leads term {term} without a lease (no fencing token)")
        }
        (Some(role), _) => match v["leader"].as_str() {
            Some(leader) => format!("#{seq} {node} is {role} of {leader} in term {term}"),
            None => format!("#{seq} {node} is {role} in term {term}, no leader known"),
        },
        (None, _) => format!("{event}: {data}"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn events_read_as_sentences() {
        let lead = r#"{"seq":4,"node":"n1","role":"leader","term":3,"leader":"n1","fencing_token":3,"valid_for_ms":97.4}"#;
        assert_eq!(
            describe("leadership", lead),
            "#4 n1 leads term 3 (fencing token 3, good for 97 ms)"
        );
        let follow = r#"{"seq":5,"node":"n2","role":"follower","term":3,"leader":"n1","fencing_token":null}"#;
        assert_eq!(
            describe("leadership", follow),
            "#5 n2 is follower of n1 in term 3"
        );
        assert_eq!(
            describe("lagged", r#"{"missed":12}"#),
            "(missed 12 changes; the current state follows)"
        );
    }
}
