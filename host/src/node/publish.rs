//! The node's side of [`super::leadership`]: publishing what applications
//! see after each change, and the lease guard's timer.

use std::time::Instant;

use serde_json::json;

use super::leadership::{Leadership, Subscriptions};
use super::{LEASE_GUARD_TIMER, Node, event_log};

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
        .with_plugin(current.plugin.clone());
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
        self.log_lease(&current, &next, now);
        self.publisher.publish(next);
    }

    /// Records in the event log each grant and revocation of the fencing
    /// token, on the monotonic clock: a revocation says until when the
    /// token was last promised good (`valid-until-mono-ns`), which is
    /// earlier than the line's own time when the revocation comes late (a
    /// frozen process, a busy machine). A token replaced by a newer one
    /// without a gap is a revocation and a grant.
    fn log_lease(&mut self, current: &Leadership, next: &Leadership, now: Instant) {
        if current.fencing_token == next.fencing_token {
            return;
        }
        let mono = event_log::monotonic_ns_at;
        let mut lines = Vec::new();
        if let Some(term) = current.fencing_token {
            lines.push(json!({
                "event": "lease-revoked", "term": term,
                "valid-until-mono-ns": current.valid_until.and_then(mono),
            }));
        }
        if let Some(term) = next.fencing_token {
            lines.push(json!({
                "event": "lease-granted", "term": term, "granted-mono-ns": mono(now),
                "valid-until-mono-ns": next.valid_until.and_then(mono),
            }));
        }
        for line in lines {
            if let Err(e) = self.events.append_fields(line) {
                tracing::warn!(node = %self.config.node_id, error = %format!("{e:#}"), "event log");
            }
        }
    }

    /// What applications subscribe to: the leadership, and its changes.
    pub fn subscriptions(&self) -> Subscriptions {
        self.subscriptions.clone()
    }
}
