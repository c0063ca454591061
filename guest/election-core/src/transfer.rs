//! Leadership transfer (Raft's TimeoutNow) without a hole in the lease.
//!
//! A leader's lease rests on its followers' loyalty: a follower that
//! heard from it within the minimum election timeout votes for no one
//! else. A transfer must bypass that loyalty (the target campaigns at
//! once, and the others must vote for it), so the bypass is the weak
//! point. Two rules close it:
//!
//! - **Only the named target gets the bypass.** While a transfer is under
//!   way, the leader's heartbeats name its target ([`Handing`]); a loyal
//!   voter grants a transfer vote (`RequestVote { transfer: true }`) only
//!   to the candidate its current leader's latest heartbeat names
//!   ([`Named`]), for the very next term. The leader itself grants it
//!   only to its own target. Any other candidate that sets the flag is
//!   refused like any other.
//! - **A transfer ends, one way or the other.** From the moment the leader
//!   hands over it holds no lease (its followers may now elect the
//!   target). If the target has not won within one maximum election
//!   timeout (the TimeoutNow was lost, or the target crashed), the leader
//!   abandons the transfer: its heartbeats stop naming a target, and its
//!   lease starts again only from a round sent after the abandonment that
//!   a majority acknowledged. Each of that majority has then seen a
//!   heartbeat naming no one, so none of them grants the bypass any more:
//!   the majority the lease rests on is loyal again without exception.
//!   The target, for its part, ignores a TimeoutNow once it has seen a
//!   later heartbeat of that leader that no longer names it, so a
//!   TimeoutNow delivered late cannot start an election inside the new
//!   lease either.
//!
//! The leader tells the target to campaign only once a majority has
//! acknowledged a heartbeat round naming it: each voter of that majority
//! then knows of the transfer before the target's vote request can reach
//! it, whatever the paths' delays, and the target wins at once. (Sending
//! the TimeoutNow right after the naming round let a vote request that
//! travelled faster than the naming heartbeat arrive first and be
//! refused, and the transfer failed.) A transfer takes about two round
//! trips.

use serde::{Deserialize, Serialize};

use crate::types::{NodeId, Term};

/// A leader's transfer in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handing {
    /// The target its heartbeats name.
    pub to: NodeId,
    /// When the leader handed over; the transfer is abandoned one maximum
    /// election timeout later.
    pub began_ns: u64,
    /// The first heartbeat round that named the target.
    pub naming_round: u64,
    /// Whether the target was told to campaign (TimeoutNow sent).
    pub told: bool,
}

impl Handing {
    /// Whether the transfer has had its time (`max_timeout_ns`) and failed.
    pub fn expired(&self, now_ns: u64, max_timeout_ns: u64) -> bool {
        now_ns.saturating_sub(self.began_ns) >= max_timeout_ns
    }
}

/// What a follower last heard its leader say about a transfer: the
/// transfer target named by the newest heartbeat (by round) of `leader`
/// in `term`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub leader: Option<NodeId>,
    pub term: Term,
    pub round: u64,
    pub to: Option<NodeId>,
}

impl Named {
    /// Records a heartbeat of `leader` at `term`, round `round`, naming
    /// `to`. A heartbeat older than the newest one seen (reordered) is
    /// not news.
    pub fn heard(&mut self, leader: &str, term: Term, round: u64, to: Option<NodeId>) {
        let same = self.leader.as_deref() == Some(leader) && self.term == term;
        if same && round < self.round {
            return;
        }
        *self = Named {
            leader: Some(leader.into()),
            term,
            round,
            to,
        };
    }

    /// Whether `leader`'s newest heartbeat in `term` names `candidate`.
    pub fn names(&self, leader: &str, term: Term, candidate: &str) -> bool {
        self.leader.as_deref() == Some(leader)
            && self.term == term
            && self.to.as_deref() == Some(candidate)
    }

    /// Whether `me`, told at `round` to take over from `leader` in
    /// `term`, has since heard a heartbeat of `leader` that no longer
    /// names it: the transfer was abandoned.
    pub fn superseded(&self, leader: &str, term: Term, round: u64, me: &str) -> bool {
        self.leader.as_deref() == Some(leader)
            && self.term == term
            && self.round > round
            && self.to.as_deref() != Some(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_heartbeat_decides_and_reordered_ones_do_not() {
        let mut n = Named::default();
        n.heard("l", 3, 5, Some("t".into()));
        assert!(n.names("l", 3, "t"));
        assert!(!n.names("l", 3, "x"), "only the named target");
        assert!(!n.names("l", 4, "t"), "only in that term");
        assert!(!n.superseded("l", 3, 5, "t"));
        n.heard("l", 3, 6, None);
        assert!(!n.names("l", 3, "t"), "abandoned");
        assert!(n.superseded("l", 3, 5, "t"));
        n.heard("l", 3, 5, Some("t".into()));
        assert!(!n.names("l", 3, "t"), "a late older heartbeat is no news");
        n.heard("m", 4, 1, Some("t".into()));
        assert!(n.names("m", 4, "t"), "a new leader's rounds start afresh");
    }

    #[test]
    fn a_transfer_expires_after_its_time() {
        let h = Handing {
            to: "t".into(),
            began_ns: 100,
            naming_round: 1,
            told: false,
        };
        assert!(!h.expired(399, 300));
        assert!(h.expired(400, 300));
    }
}
