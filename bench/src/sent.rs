//! What a Tenure node says it sent: its `/metrics` counters
//! `tenure_sent_messages_total{kind}` and `tenure_sent_bytes_total{kind}`
//! for heartbeats and their acks, read so two scrapes can be subtracted.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use tenure_host::admin_client::request;

/// Messages and payload bytes one node had sent, of the two kinds an idle
/// cluster sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Heartbeats: (messages, bytes).
    pub heartbeats: (u64, u64),
    /// Heartbeat acks: (messages, bytes).
    pub acks: (u64, u64),
}

impl Sent {
    /// Reads the counters out of a `/metrics` text; fails if the node has
    /// none (a binary older than the counters).
    pub fn parse(text: &str) -> anyhow::Result<Sent> {
        let pair = |kind: &str| -> anyhow::Result<(u64, u64)> {
            Ok((
                counter(text, "tenure_sent_messages_total", kind)?,
                counter(text, "tenure_sent_bytes_total", kind)?,
            ))
        };
        Ok(Sent {
            heartbeats: pair("heartbeat")?,
            acks: pair("heartbeat_ack")?,
        })
    }

    /// What was sent between `earlier` and `self`.
    pub fn since(&self, earlier: &Sent) -> Sent {
        let minus =
            |a: (u64, u64), b: (u64, u64)| (a.0.saturating_sub(b.0), a.1.saturating_sub(b.1));
        Sent {
            heartbeats: minus(self.heartbeats, earlier.heartbeats),
            acks: minus(self.acks, earlier.acks),
        }
    }
}

/// One sample of a counter family labelled by `kind` alone.
fn counter(text: &str, name: &str, kind: &str) -> anyhow::Result<u64> {
    let prefix = format!("{name}{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| {
            format!(
                "no {name}{{kind=\"{kind}\"}} in /metrics: is the tenure binary older than \
                 that counter?"
            )
        })
}

/// Scrapes the node whose admin endpoint is `admin`.
pub async fn scrape(admin: SocketAddr) -> anyhow::Result<Sent> {
    let (code, body) = request(admin, "GET", "/metrics", b"", Duration::from_secs(2))
        .await
        .with_context(|| format!("GET http://{admin}/metrics"))?;
    ensure!(code == 200, "GET http://{admin}/metrics: {code}");
    Sent::parse(&body).with_context(|| format!("http://{admin}/metrics"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_subtracts_the_counters() {
        let text = "# TYPE tenure_sent_messages counter\n\
            tenure_sent_messages_total{kind=\"heartbeat\"} 40\n\
            tenure_sent_messages_total{kind=\"heartbeat_ack\"} 2\n\
            tenure_sent_bytes_total{kind=\"heartbeat\"} 4000\n\
            tenure_sent_bytes_total{kind=\"heartbeat_ack\"} 90\n";
        let later = Sent::parse(text).unwrap();
        assert_eq!(
            later,
            Sent {
                heartbeats: (40, 4000),
                acks: (2, 90)
            }
        );
        let earlier = Sent {
            heartbeats: (10, 1000),
            acks: (2, 90),
        };
        assert_eq!(later.since(&earlier).heartbeats, (30, 3000));
        assert_eq!(later.since(&earlier).acks, (0, 0));
        assert!(Sent::parse("tenure_frames_total{kind=\"frame\"} 3\n").is_err());
    }
}
