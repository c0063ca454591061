//! Why a node refuses to stand for election when asked to
//! ([`crate::Election::campaign`]), and why a leader refuses an operator's
//! transfer or removal ([`ChangeRefusal`]).
//!
//! The refusal that matters for safety is [`Refusal::Loyal`]: a node that
//! heard from a live leader within the minimum election timeout may be
//! part of the majority that leader's lease rests on (see
//! [`crate::Election::lease_expires_ns`]). If it stood now, it would vote
//! for itself in a new term and could, with one node that has not heard
//! the leader (say, just back from a partition), elect a second leader
//! inside the first one's lease. So it waits out its loyalty; the only
//! loyal node that may stand is a transfer's target, which its leader
//! told to (TimeoutNow).

use core::fmt;

use crate::types::{NodeId, Term};

/// Why a node does not campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It already leads `term`.
    Leading { term: Term },
    /// It is an observer: it never votes or stands.
    Observer,
    /// It was removed from the cluster with `leave`.
    Removed,
    /// It is joining, and no leader's heartbeat has listed it yet.
    NotAdmitted,
    /// It heard from a live leader (or restarted) lately, and a lease may
    /// rest on it: it may stand in `for_ms` milliseconds, if it hears
    /// nothing more from `leader` by then.
    Loyal { leader: Option<NodeId>, for_ms: u64 },
    /// Its term has reached the ceiling (see [`crate::terms`]).
    TermCeiling { term: Term },
    /// Its host asked it to stand aside (see
    /// [`crate::Election::stand_aside`]) for `for_ms` more milliseconds.
    StandingAside { for_ms: u64 },
    /// It lost its state (a peer knows it by another data id, see
    /// [`crate::identity`]): it never votes or stands again.
    LostState,
    /// Only `have` of the `need` other members it must hear from have
    /// confirmed its data id yet (see [`crate::identity`]); it has asked
    /// them again.
    Unconfirmed { have: u32, need: u32 },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Leading { term } => write!(f, "already leads term {term}"),
            Refusal::Observer => f.write_str("is an observer and never stands"),
            Refusal::Removed => f.write_str("was removed from the cluster and never stands"),
            Refusal::NotAdmitted => {
                f.write_str("is joining and no leader has admitted it yet; it stands once one has")
            }
            Refusal::Loyal {
                leader: Some(leader),
                for_ms,
            } => write!(
                f,
                "heard from its leader {leader} lately and may hold up its lease: try again in {for_ms} ms"
            ),
            Refusal::Loyal {
                leader: None,
                for_ms,
            } => write!(
                f,
                "heard from a leader (or restarted) lately and may hold up its lease: try again in {for_ms} ms"
            ),
            Refusal::TermCeiling { term } => write!(
                f,
                "is at term {term}, at the ceiling: it never campaigns again"
            ),
            Refusal::StandingAside { for_ms } => write!(
                f,
                "stands aside (its plugin refused to lead): try again in {for_ms} ms"
            ),
            Refusal::LostState => f.write_str(
                "lost its state (peers know it by another data id) and never stands again: remove it with leave on the leader and start it under a new node id",
            ),
            Refusal::Unconfirmed { have, need } => write!(
                f,
                "has its data id confirmed by {have} of the {need} other members it needs: try again once they are up"
            ),
        }
    }
}

/// Why [`crate::Election::transfer_leadership`] or
/// [`crate::Election::leave`] was refused. A refusal changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// Only the leader does this; `leader` is the one this node follows,
    /// if it knows one.
    NotLeader {
        node: NodeId,
        leader: Option<NodeId>,
    },
    /// `node` is not a member of this cluster.
    UnknownNode { node: NodeId },
    /// The transfer's target is this node, which already leads.
    AlreadyLeads { node: NodeId },
    /// The transfer's target was not heard from within the minimum
    /// election timeout: it may be down.
    NotHeardLately { node: NodeId },
    /// A transfer to `to` is under way; it ends within `for_ms`.
    TransferUnderWay { to: NodeId, for_ms: u64 },
    /// The leader may not remove itself: transfer leadership first.
    LeaderMustTransfer { node: NodeId },
    /// The previous membership change has not settled (no majority has
    /// acknowledged it, or this leader, yet): try again in a heartbeat
    /// or two. With a majority down, the membership cannot change.
    ChangePending { node: NodeId },
}

impl ChangeRefusal {
    /// Whether asking again later may succeed without anyone acting: a
    /// transfer under way ends, a change settles.
    pub fn retry_later(&self) -> bool {
        matches!(
            self,
            ChangeRefusal::TransferUnderWay { .. } | ChangeRefusal::ChangePending { .. }
        )
    }
}

impl fmt::Display for ChangeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeRefusal::NotLeader { node, leader } => {
                let ask = leader.as_deref().unwrap_or("the leader");
                write!(
                    f,
                    "{node} does not lead: ask {ask} (transfers and membership changes go \
                     through the leader)"
                )
            }
            ChangeRefusal::UnknownNode { node } => {
                write!(f, "{node} is not a member of this cluster")
            }
            ChangeRefusal::AlreadyLeads { node } => write!(f, "{node} already leads"),
            ChangeRefusal::NotHeardLately { node } => {
                write!(f, "{node} has not been heard from recently; it may be down")
            }
            ChangeRefusal::TransferUnderWay { to, for_ms } => write!(
                f,
                "a transfer to {to} is under way; it ends within {for_ms} ms"
            ),
            ChangeRefusal::LeaderMustTransfer { node } => {
                write!(f, "{node} leads; transfer leadership before it leaves")
            }
            ChangeRefusal::ChangePending { node } => write!(
                f,
                "{node}: its last membership change has not settled (no majority has \
                 acknowledged it yet); try again in a heartbeat or two (with a majority \
                 down, the membership cannot change)"
            ),
        }
    }
}
