//! `DATA-DIR/events.log`: one JSON line per protocol event, with the wall
//! clock time, so operators (and the multi-process tests) can reconstruct
//! who led which term; and one per grant and revocation of the fencing
//! token applications see (`lease-granted`, `lease-revoked`). Every line
//! also carries `mono-ns`, the host's `CLOCK_MONOTONIC` (Linux), which all
//! processes of one machine share — network namespaces too — so a test
//! can order two nodes' leases exactly (tests/netns.rs).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::json;

use crate::bindings::types::Event;

/// An append-only event log. Lines it cannot write (a full disk) are
/// lost, not fatal: the first failure of a streak is reported, the rest
/// only counted, and the count is logged once writing works again.
pub struct EventLog {
    file: File,
    node: String,
    /// Lines lost in the current streak of failed writes.
    lost: u64,
}

impl EventLog {
    /// Opens (creating or appending to) `data_dir/events.log`.
    pub fn open(data_dir: &Path, node: &str) -> anyhow::Result<EventLog> {
        let path = data_dir.join("events.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(EventLog {
            file,
            node: node.to_string(),
            lost: 0,
        })
    }

    /// Appends one event as a JSON line.
    pub fn append(&mut self, event: &Event) -> anyhow::Result<()> {
        let fields = match event {
            Event::BecameLeader(term) => json!({"event": "became-leader", "term": term}),
            Event::BecameFollower(f) => json!({
                "event": "became-follower", "term": f.term, "leader": f.leader,
            }),
            Event::TermChanged(t) => json!({"event": "term-changed", "old": t.old, "new": t.new}),
            Event::PeerJoined(p) => json!({"event": "peer-joined", "peer": p}),
            Event::PeerLeft(p) => json!({"event": "peer-left", "peer": p}),
        };
        self.append_fields(fields)
    }

    /// Appends `fields` (a JSON object) as one line, with the wall-clock
    /// time (`at-ms`) and the node: the admin endpoint's audit lines go
    /// through here too. The line is one `write` to a file opened for
    /// appending, so lines from two handles on one log never interleave.
    pub fn append_fields(&mut self, fields: serde_json::Value) -> anyhow::Result<()> {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut line =
            json!({"at-ms": at_ms, "mono-ns": monotonic_ns_at(Instant::now()), "node": self.node});
        if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let mut text = line.to_string();
        text.push('\n');
        match self.file.write_all(text.as_bytes()) {
            Ok(()) => {
                if self.lost > 0 {
                    tracing::warn!(node = %self.node, lost = self.lost, "the event log is writable again");
                    self.lost = 0;
                }
                Ok(())
            }
            // Reported once per streak.
            Err(_) if self.lost > 0 => {
                self.lost += 1;
                Ok(())
            }
            Err(e) => {
                self.lost = 1;
                Err(e).context("appending to the event log (further failures are only counted)")
            }
        }
    }
}

/// `at` on the host's `CLOCK_MONOTONIC`, in nanoseconds (Linux; `None`
/// elsewhere, or for an instant before the clock's zero). `Instant` is
/// that clock on Linux, but opaque: this reads the clock and the instant
/// together and takes the difference.
pub fn monotonic_ns_at(at: Instant) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let now = Instant::now();
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let now_ns = i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
        let ns = |d: std::time::Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
        let at_ns = if at >= now {
            now_ns.saturating_add(ns(at - now))
        } else {
            now_ns.saturating_sub(ns(now - at))
        };
        u64::try_from(at_ns).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = at;
        None
    }
}

/// Writes a protocol event to the node's log.
pub(super) fn log_event(node: &str, event: &Event) {
    match event {
        Event::BecameLeader(term) => {
            tracing::info!(node, term, event = "became-leader", "became leader")
        }
        Event::BecameFollower(f) => {
            let leader = f.leader.as_deref().unwrap_or("");
            tracing::info!(
                node,
                term = f.term,
                leader,
                event = "became-follower",
                "became follower"
            );
        }
        Event::TermChanged(t) => {
            tracing::debug!(
                node,
                old = t.old,
                term = t.new,
                event = "term-changed",
                "term changed"
            )
        }
        Event::PeerJoined(peer) => {
            tracing::info!(node, %peer, event = "peer-joined", "peer joined")
        }
        Event::PeerLeft(peer) => tracing::info!(node, %peer, event = "peer-left", "peer left"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_reported_once_per_streak_and_never_fatal() {
        // Every write to /dev/full fails with ENOSPC.
        let Ok(file) = OpenOptions::new().append(true).open("/dev/full") else {
            eprintln!("skipped: no /dev/full on this machine");
            return;
        };
        let mut log = EventLog {
            file,
            node: "n1".into(),
            lost: 0,
        };
        let event = Event::BecameLeader(3);
        assert!(log.append(&event).is_err(), "the first failure is reported");
        assert!(log.append(&event).is_ok(), "later ones are only counted");
        assert!(log.append(&event).is_ok());
        assert_eq!(log.lost, 3);
    }
}
