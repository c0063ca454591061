//! What the lock service needs from its node: the few `leader-api` imports
//! it uses, behind a trait so the logic also runs against a fake in tests.

/// Severity of a log line (the subset of WIT `log-level` used here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Grants, releases, expiries and ignored wake-ups.
    Debug,
    /// Leadership phases: warming up, serving, restored.
    Info,
}

/// The node the plugin runs on (the WIT `leader-api`).
pub trait Host {
    /// Whether this node is the leader right now.
    fn is_leader(&self) -> bool;
    /// The leader this node follows (itself when leader), if known.
    fn leader(&self) -> Option<String>;
    /// This node's current term: the fencing token's major part.
    fn current_term(&self) -> u64;
    /// Asks for `on-scheduled(id, tag)` after `after_ms` and returns the id.
    fn schedule(&mut self, after_ms: u64, tag: &str) -> u64;
    /// Cancels a wake-up; unknown or fired ids are ignored.
    fn cancel_schedule(&mut self, id: u64);
    /// Writes a log line through the node's logger.
    fn log(&mut self, level: Level, message: &str);
}
