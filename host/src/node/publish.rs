//! The node's side of [`super::leadership`]: publishing what applications
//! see after each change, and the lease guard's timer.

use std::time::Instant;

use super::leadership::{Leadership, Subscriptions};
use super::{LEASE_GUARD_TIMER, Node};

impl Node {
    /// Publishes the leadership applications see, and arms the lease guard
    /// for the moment the fencing token stops being good.
    pub(super) fn publish_leadership(&mut self) {
        let now = Instant::now();
        let current = self.publisher.current();
        let next = Leadership::of(
            self.core.status(),
            self.origin,
            self.config.lease_guard,
            now,
        )
        .with_plugin(current.plugin);
        match next.valid_until {
            Some(until) => {
                let after = until.saturating_duration_since(now);
                let after_ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
                self.timers.set(LEASE_GUARD_TIMER, after_ns);
            }
            None => self.timers.cancel(LEASE_GUARD_TIMER),
        }
        let revoked = next.fencing_token.is_none() && current.fencing_token.is_some();
        if revoked {
            tracing::info!(
                node = %self.config.node_id, term = next.term, role = next.role,
                "fencing token revoked"
            );
        }
        self.publisher.publish(next);
    }

    /// What applications subscribe to: the leadership, and its changes.
    pub fn subscriptions(&self) -> Subscriptions {
        self.subscriptions.clone()
    }
}
