//! What the scheduler needs from its node: the few `leader-api` calls it
//! uses, behind a trait so the logic also runs against a fake in tests.
//! [`SdkNode`] answers them through the SDK's leader API.

use std::time::Duration;

use tenure_sdk::{WakeupId, node};

/// Severity of a log line: the SDK's (the scheduler logs at `Debug` and
/// `Info`).
pub use tenure_sdk::Level;

/// The node the plugin runs on (the WIT `leader-api`).
pub trait Host {
    /// Whether this node is the leader right now.
    fn is_leader(&self) -> bool;
    /// This node's current term.
    fn current_term(&self) -> u64;
    /// This node's id.
    fn this_node(&self) -> String;
    /// Asks for `on-scheduled(id, tag)` after `after_ms` and returns the id.
    fn schedule(&mut self, after_ms: u64, tag: &str) -> u64;
    /// Cancels a wake-up; unknown or fired ids are ignored.
    fn cancel_schedule(&mut self, id: u64);
    /// Writes a log line through the node's logger.
    fn log(&mut self, level: Level, message: &str);
}

/// The real node, through [`tenure_sdk::node`].
pub struct SdkNode;

impl Host for SdkNode {
    fn is_leader(&self) -> bool {
        node::is_leader()
    }
    fn current_term(&self) -> u64 {
        node::term()
    }
    fn this_node(&self) -> String {
        node::this_node()
    }
    fn schedule(&mut self, after_ms: u64, tag: &str) -> u64 {
        node::schedule(Duration::from_millis(after_ms), tag).as_raw()
    }
    fn cancel_schedule(&mut self, id: u64) {
        node::cancel(WakeupId::from_raw(id));
    }
    fn log(&mut self, level: Level, message: &str) {
        node::log(level, message);
    }
}
