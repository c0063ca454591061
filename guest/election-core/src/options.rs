//! Options and their validation: every refusal names the field at fault.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::types::NodeId;

/// Election timings, in milliseconds. See `timings` in `wit/types.wit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u32,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u32,
    /// Interval between a leader's heartbeats.
    pub heartbeat_interval_ms: u32,
    /// Heartbeat intervals of silence after which a peer is reported gone.
    pub peer_timeout_heartbeats: u32,
    /// Taken off the leader's lease to cover clocks that run at slightly
    /// different rates on different nodes.
    pub lease_drift_margin_ms: u32,
    /// How long a leader leads, and a higher-priority voter is heard from
    /// without a break, before the leader hands over to it.
    pub stability_window_ms: u32,
}

impl Default for Timings {
    /// 150–300 ms election timeout and 50 ms heartbeats, as Raft and Ergo
    /// recommend for a LAN; a peer is reported gone after 500 ms of silence.
    fn default() -> Self {
        Timings {
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
            peer_timeout_heartbeats: 10,
            lease_drift_margin_ms: 15,
            stability_window_ms: 2_000,
        }
    }
}

/// The longest election timeout accepted: a minute. Longer values are far
/// more likely a unit mistake (seconds taken for milliseconds) than intent.
pub const MAX_ELECTION_TIMEOUT_MS: u32 = 60_000;

/// Everything a protocol instance needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// This node's id.
    pub node_id: NodeId,
    /// Only messages carrying this cluster id are heeded.
    pub cluster_id: String,
    /// Voting members known at start; self is added if missing.
    pub bootstrap: Vec<NodeId>,
    /// Election timings.
    pub timings: Timings,
    /// Run a pre-vote before each election (default on): a node that could
    /// not win — cut off, or returning from a partition — asks first and
    /// does not bump the term, so it cannot depose a healthy leader.
    pub pre_vote: bool,
    /// Leadership priority (default 0): a leader hands over to a healthy
    /// voter of higher priority after the stability window.
    pub priority: u8,
    /// False for an observer (default true): it follows the leader and
    /// reports events, but never votes, never stands, and does not count
    /// towards the quorum.
    pub voter: bool,
    /// True to join a running cluster instead of bootstrapping one (see
    /// `joining` in `wit/types.wit` and [`crate::membership`]): the node
    /// is no member of its own view until a leader lists it.
    pub joining: bool,
}

/// Options refused at start: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsError {
    /// Path of the offending field, e.g. `timings.heartbeat-interval-ms`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid option `{}`: {}", self.field, self.reason)
    }
}

fn refuse(field: &str, reason: impl Into<String>) -> OptionsError {
    OptionsError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// The longest node id accepted, in bytes.
pub const MAX_NODE_ID_BYTES: usize = 255;

fn check_node_id(field: &str, id: &str) -> Result<(), OptionsError> {
    if id.is_empty() {
        return Err(refuse(field, "must not be empty"));
    }
    if id.len() > MAX_NODE_ID_BYTES {
        return Err(refuse(
            field,
            format!("must be at most {MAX_NODE_ID_BYTES} bytes"),
        ));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse(
            field,
            format!("{id:?} must not contain whitespace or control characters"),
        ));
    }
    Ok(())
}

/// Whether `id` is acceptable as a node id. Ids arriving in messages are
/// checked with this before they can enter the membership.
pub(crate) fn valid_node_id(id: &str) -> bool {
    check_node_id("", id).is_ok()
}

impl Options {
    /// What this node's messages say about it: voter or observer, and its
    /// priority.
    pub fn standing(&self) -> crate::wire::Standing {
        crate::wire::Standing {
            voter: self.voter,
            priority: self.priority,
        }
    }

    /// Checks every field, returning the first problem found.
    ///
    /// The rules: ids are non-empty without whitespace; `0 < min < max <=
    /// 60 s`; `0 < heartbeat <= min / 2` (so one lost heartbeat does not
    /// trigger an election); `peer-timeout-heartbeats >= 2`.
    pub fn validate(&self) -> Result<(), OptionsError> {
        check_node_id("node-id", &self.node_id)?;
        if self.cluster_id.is_empty() {
            return Err(refuse("cluster-id", "must not be empty"));
        }
        for (i, peer) in self.bootstrap.iter().enumerate() {
            check_node_id(&format!("bootstrap[{i}]"), peer)?;
        }
        if self.joining && !self.bootstrap.iter().any(|p| *p != self.node_id) {
            return Err(refuse(
                "joining",
                "a joining node needs a bootstrap member of the running cluster to ask",
            ));
        }
        let t = &self.timings;
        if t.election_timeout_min_ms == 0 {
            return Err(refuse(
                "timings.election-timeout-min-ms",
                "must be greater than 0",
            ));
        }
        if t.election_timeout_max_ms <= t.election_timeout_min_ms {
            return Err(refuse(
                "timings.election-timeout-max-ms",
                format!(
                    "must be greater than election-timeout-min-ms ({} <= {})",
                    t.election_timeout_max_ms, t.election_timeout_min_ms
                ),
            ));
        }
        if t.election_timeout_max_ms > MAX_ELECTION_TIMEOUT_MS {
            return Err(refuse(
                "timings.election-timeout-max-ms",
                format!(
                    "must be at most {MAX_ELECTION_TIMEOUT_MS} ms, got {}",
                    t.election_timeout_max_ms
                ),
            ));
        }
        if t.heartbeat_interval_ms == 0 {
            return Err(refuse(
                "timings.heartbeat-interval-ms",
                "must be greater than 0",
            ));
        }
        if u64::from(t.heartbeat_interval_ms) * 2 > u64::from(t.election_timeout_min_ms) {
            return Err(refuse(
                "timings.heartbeat-interval-ms",
                format!(
                    "must be at most half of election-timeout-min-ms ({} ms > {} ms / 2)",
                    t.heartbeat_interval_ms, t.election_timeout_min_ms
                ),
            ));
        }
        if t.lease_drift_margin_ms >= t.election_timeout_min_ms {
            return Err(refuse(
                "timings.lease-drift-margin-ms",
                format!(
                    "must be less than election-timeout-min-ms ({} ms >= {} ms), or no lease is ever granted",
                    t.lease_drift_margin_ms, t.election_timeout_min_ms
                ),
            ));
        }
        if t.peer_timeout_heartbeats < 2 {
            return Err(refuse(
                "timings.peer-timeout-heartbeats",
                format!("must be at least 2, got {}", t.peer_timeout_heartbeats),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn options() -> Options {
        Options {
            node_id: "n1".into(),
            cluster_id: "c".into(),
            bootstrap: vec!["n1".into(), "n2".into()],
            timings: Timings::default(),
            pre_vote: true,
            priority: 0,
            voter: true,
            joining: false,
        }
    }

    fn field_of(o: Options) -> String {
        o.validate().expect_err("options should be refused").field
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(options().validate(), Ok(()));
        let t = Timings::default();
        assert_eq!(
            (
                t.election_timeout_min_ms,
                t.election_timeout_max_ms,
                t.heartbeat_interval_ms
            ),
            (150, 300, 50)
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut o = options();
        o.node_id = String::new();
        assert_eq!(field_of(o), "node-id");

        let mut o = options();
        o.node_id = "n 1".into();
        assert_eq!(field_of(o), "node-id");

        let mut o = options();
        o.cluster_id = String::new();
        assert_eq!(field_of(o), "cluster-id");

        let mut o = options();
        o.bootstrap.push(String::new());
        assert_eq!(field_of(o), "bootstrap[2]");

        let mut o = options();
        o.timings.election_timeout_min_ms = 0;
        assert_eq!(field_of(o), "timings.election-timeout-min-ms");

        let mut o = options();
        o.timings.election_timeout_max_ms = 150;
        assert_eq!(field_of(o), "timings.election-timeout-max-ms");

        let mut o = options();
        o.timings.election_timeout_max_ms = 120_000;
        assert_eq!(field_of(o), "timings.election-timeout-max-ms");

        let mut o = options();
        o.timings.heartbeat_interval_ms = 0;
        assert_eq!(field_of(o), "timings.heartbeat-interval-ms");

        let mut o = options();
        o.timings.heartbeat_interval_ms = 76;
        assert_eq!(field_of(o), "timings.heartbeat-interval-ms");

        let mut o = options();
        o.timings.peer_timeout_heartbeats = 1;
        assert_eq!(field_of(o), "timings.peer-timeout-heartbeats");

        let mut o = options();
        o.timings.lease_drift_margin_ms = 150;
        assert_eq!(field_of(o), "timings.lease-drift-margin-ms");
    }

    #[test]
    fn heartbeat_at_exactly_half_the_minimum_is_allowed() {
        let mut o = options();
        o.timings.heartbeat_interval_ms = 75;
        assert_eq!(o.validate(), Ok(()));
    }

    #[test]
    fn error_message_names_field_and_reason() {
        let mut o = options();
        o.timings.election_timeout_max_ms = 100;
        let text = o.validate().unwrap_err().to_string();
        assert!(text.contains("timings.election-timeout-max-ms"), "{text}");
        assert!(text.contains("greater than"), "{text}");
    }
}
