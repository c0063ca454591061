//! A Tenure behaviour plugin that logs every callback and counts them.
//!
//! Each callback writes one info line through the node's logger, named
//! after the WIT callback and followed by its arguments
//! (`on-become-leader term=3`), and bumps that callback's counter.
//! `inspect` shows the counters, `snapshot`/`restore` carry them across a
//! hot swap, and `on-call` echoes the request. Any config is accepted.
//!
//! Build it with
//!
//! ```text
//! cargo build -p tenure-plugin-logger --target wasm32-wasip2 --release
//! ```
//!
//! which writes `target/wasm32-wasip2/release/tenure_plugin_logger.wasm`.
//!
//! The plugin is a [`tenure_sdk::Behaviour`] that overrides every
//! callback; the counters, their snapshot format and how arguments are
//! printed live in plain modules with native unit tests.

#![forbid(unsafe_code)]

mod counts;
mod describe;

use tenure_sdk::{Behaviour, Config, Error, Term, WakeupId, info, warn};

use crate::counts::{Callback, Counts};

/// Logs and counts every callback.
#[derive(Default)]
struct Logger {
    /// How often each callback has been called, across hot swaps.
    counts: Counts,
}

impl Logger {
    /// Counts `callback` and logs `line` (which starts with its name).
    fn note(&mut self, callback: Callback, line: &str) {
        self.counts.record(callback);
        info!("{line}");
    }
}

impl Behaviour for Logger {
    fn init(&mut self, config: &Config) -> Result<(), Error> {
        let line = format!("init config={}", describe::config(config.pairs()));
        self.note(Callback::Init, &line);
        Ok(())
    }

    fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
        self.note(
            Callback::OnBecomeLeader,
            &format!("on-become-leader term={term}"),
        );
        Ok(())
    }

    fn on_become_follower(&mut self, leader: Option<&str>, term: Term) {
        let leader = describe::leader(leader);
        let line = format!("on-become-follower leader={leader} term={term}");
        self.note(Callback::OnBecomeFollower, &line);
    }

    fn on_peer_joined(&mut self, peer: &str) {
        let line = format!("on-peer-joined peer={}", describe::text(peer));
        self.note(Callback::OnPeerJoined, &line);
    }

    fn on_peer_left(&mut self, peer: &str) {
        let line = format!("on-peer-left peer={}", describe::text(peer));
        self.note(Callback::OnPeerLeft, &line);
    }

    fn on_term_changed(&mut self, old: Term, new: Term) {
        let line = format!("on-term-changed old={old} new={new}");
        self.note(Callback::OnTermChanged, &line);
    }

    fn on_message(&mut self, sender: &str, payload: &[u8]) {
        let line = format!(
            "on-message sender={} payload={}",
            describe::text(sender),
            describe::bytes(payload)
        );
        self.note(Callback::OnMessage, &line);
    }

    fn on_call(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let line = format!("on-call request={}", describe::bytes(request));
        self.note(Callback::OnCall, &line);
        Ok(request.to_vec())
    }

    fn on_scheduled(&mut self, id: WakeupId, tag: &str) {
        let line = format!("on-scheduled id={id} tag={}", describe::text(tag));
        self.note(Callback::OnScheduled, &line);
    }

    fn inspect(&mut self) -> Vec<(String, String)> {
        self.note(Callback::Inspect, "inspect");
        self.counts.pairs()
    }

    fn snapshot(&mut self) -> Vec<u8> {
        self.note(Callback::Snapshot, "snapshot");
        self.counts.encode()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Error> {
        let line = format!("restore snapshot={}", describe::bytes(snapshot));
        self.note(Callback::Restore, &line);
        let previous = Counts::decode(snapshot).inspect_err(|reason| {
            warn!("restore refused: {reason}");
        })?;
        self.counts.add(&previous);
        Ok(())
    }
}

tenure_sdk::export!(Logger);

#[cfg(test)]
mod tests {
    use tenure_sdk::{Level, fake};

    use super::*;

    #[test]
    fn every_callback_is_one_line_and_one_count() {
        let mut logger = Logger::default();
        logger
            .init(&Config::from_pairs([("job", "backup")]))
            .expect("any config");
        logger.on_term_changed(1, 2);
        logger.on_become_leader(2).expect("accepts");
        assert_eq!(logger.on_call(b"hi"), Ok(b"hi".to_vec()));
        assert_eq!(
            fake::with(|n| n.lines(Level::Info)),
            [
                "init config={job=\"backup\"}",
                "on-term-changed old=1 new=2",
                "on-become-leader term=2",
                "on-call request=\"hi\" (2 bytes)",
            ]
        );
        let pairs = logger.inspect();
        assert_eq!(pairs.last(), Some(&("total".into(), "5".into())));
    }

    #[test]
    fn restore_refuses_foreign_snapshots_with_a_warning() {
        let mut logger = Logger::default();
        assert!(
            logger
                .restore(b"tenure-plugin-scheduler 1\nruns 3\n")
                .is_err()
        );
        assert_eq!(fake::with(|n| n.lines(Level::Warn)).len(), 1);
    }
}
