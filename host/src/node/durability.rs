//! What a node does when it cannot persist: it goes quiet, and comes back
//! by itself.
//!
//! A vote or a term must be on disk before any message that depends on it
//! leaves (see the README's "Honest fsync"). When a save fails — a full
//! disk, a read-only remount — the protocol has already moved on in
//! memory, so from then on every protocol message this node would send is
//! withheld: the peers see a silent node (no vote, no candidacy, no
//! heartbeat, no acknowledgement), which the protocol tolerates like any
//! lost message. The node keeps running, keeps the latest state it could
//! not save, retries every [`RETRY_INTERVAL`], reports the failure in
//! `/status` (`cannot_persist`), and once a save succeeds it speaks again,
//! its disk now ahead of every message it sends. Nothing withheld is sent
//! late. A node that crashes while quiet restarts from its last saved
//! state, and nothing it sent depended on more.
//!
//! The policy keeps no clock of its own: callers pass the time (the node
//! its monotonic nanoseconds, the simulator its virtual ones), so the
//! simulator runs this very policy under a full disk (`fill_disk`).

use std::time::Duration;

use crate::bindings::types::PersistedState;

/// How often a node that could not persist tries again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// A save of the durable state this slow is logged as a warning: the node
/// runs on one thread, so nothing else it does moves while the disk
/// syncs, and a failover waits on the candidate's and each voter's save
/// (`tenure_state_persist_seconds` has the whole distribution). On the
/// 2-core VM of BENCHMARKS.md one save in ~20,000 took 100-250 ms.
pub const SLOW_SAVE: Duration = Duration::from_millis(10);

/// Warns, with the time it took, if one save of `node`'s state was
/// [`SLOW_SAVE`] or slower.
pub fn warn_if_slow(node: &str, took: Duration) {
    if took >= SLOW_SAVE {
        let ms = took.as_secs_f64() * 1e3;
        tracing::warn!(
            node,
            ms,
            "saving term and vote was slow: votes and candidacies wait for the disk"
        );
    }
}

/// The state a node could not save yet, and why.
#[derive(Default)]
pub struct Durability {
    /// The newest state not yet on disk.
    pending: Option<PersistedState>,
    /// The last save's error, for `/status`.
    reason: Option<String>,
    /// When to try again, in the caller's nanoseconds.
    next_retry_ns: Option<u64>,
    /// Protocol messages withheld while quiet.
    withheld: u64,
}

impl Durability {
    /// Whether protocol messages must be withheld: some state is not on
    /// disk.
    pub fn quiet(&self) -> bool {
        self.pending.is_some()
    }

    /// Saves `state` with `save` (or, while quiet, keeps it as the newest
    /// to save on the next retry). Returns whether it is on disk.
    pub fn persist(
        &mut self,
        state: PersistedState,
        now_ns: u64,
        save: impl FnOnce(&PersistedState) -> anyhow::Result<()>,
    ) -> bool {
        match save(&state) {
            Ok(()) => {
                self.recovered();
                true
            }
            Err(e) => {
                let reason = format!("{e:#}");
                if self.pending.is_none() {
                    tracing::error!(
                        error = %reason,
                        "cannot persist the node's state: withholding every protocol message until a save succeeds"
                    );
                }
                self.pending = Some(state);
                self.reason = Some(reason);
                let interval = RETRY_INTERVAL.as_nanos() as u64;
                self.next_retry_ns = Some(now_ns.saturating_add(interval));
                false
            }
        }
    }

    /// Counts a protocol message not sent because the node is quiet.
    pub fn withhold(&mut self) {
        self.withheld += 1;
    }

    /// When the next retry is due (in the caller's nanoseconds), if the
    /// node is quiet.
    pub fn next_retry_ns(&self) -> Option<u64> {
        self.next_retry_ns.filter(|_| self.quiet())
    }

    /// Tries to save the pending state again with `save`; whether the
    /// node may speak again.
    pub fn retry(
        &mut self,
        now_ns: u64,
        save: impl FnOnce(&PersistedState) -> anyhow::Result<()>,
    ) -> bool {
        match self.pending.take() {
            Some(state) => self.persist(state, now_ns, save),
            None => true,
        }
    }

    /// Protocol messages withheld so far.
    pub fn withheld(&self) -> u64 {
        self.withheld
    }

    /// Why the node is quiet, if it is: the last save's error.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref().filter(|_| self.quiet())
    }

    fn recovered(&mut self) {
        if self.reason.take().is_some() {
            tracing::warn!(
                withheld = self.withheld,
                "the node's state is on disk again: speaking again"
            );
        }
        self.pending = None;
        self.next_retry_ns = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(term: u64) -> PersistedState {
        PersistedState {
            term,
            voted_for: None,
            members: Vec::new(),
            removed: Vec::new(),
            epoch: 0,
            epoch_term: 0,
            data_id: 1,
            known_ids: Vec::new(),
            confirmed_by: Vec::new(),
            abstain: false,
        }
    }

    #[test]
    fn a_failed_save_keeps_the_newest_state_until_a_retry_succeeds() {
        let full = |_: &PersistedState| Err(anyhow::anyhow!("No space left on device"));
        let mut d = Durability::default();
        assert!(d.persist(state(1), 0, |_| Ok(())));
        assert!(!d.quiet());
        assert!(!d.persist(state(2), 10, full));
        assert!(d.quiet());
        assert!(d.reason().is_some_and(|r| r.contains("No space")));
        assert_eq!(d.next_retry_ns(), Some(10 + 500_000_000));
        // Newer states replace the pending one; the failure goes on.
        assert!(!d.persist(state(3), 20, full));
        let mut saved = None;
        assert!(d.retry(30, |s| {
            saved = Some(s.term);
            Ok(())
        }));
        assert_eq!(saved, Some(3));
        assert!(!d.quiet() && d.reason().is_none() && d.next_retry_ns().is_none());
    }
}
