//! Term arithmetic that cannot wrap, and the bounds on what one message
//! may do to a node's term.
//!
//! A term only grows, and every node persists the highest it has seen, so
//! a single message carrying a huge term — a bug elsewhere, a corrupted
//! peer, a hostile member — would otherwise move the whole cluster there
//! at once and for good. At `u64::MAX` the next candidacy would wrap to 0
//! (or overflow) and elections would stop forever. Two bounds prevent it:
//!
//! - [`TERM_CEILING`] (2^63): no message with a higher term is heeded, and
//!   a node whose own term has reached it never campaigns (it logs an
//!   error and keeps following whoever leads). Half of the `u64` range is
//!   left unused as a margin: no sum below can wrap.
//! - [`MAX_TERM_JUMP`] (2^32): no message may carry a term more than that
//!   far above this node's own. Honest terms grow by one per election; at
//!   one election every 150 ms (the minimum timeout, elections back to
//!   back) 2^32 elections take over 20 years, so no honest node is ever
//!   that far ahead of another member. Catching up by a smaller jump is
//!   still immediate, as Raft requires.
//!
//! So a faulty message can move the cluster's term up by at most 2^32,
//! and it takes 2^31 such messages, each heeded, to reach the ceiling.
//!
//! Refused messages are dropped whole (counted in `ignored-messages`, with
//! a log line): the sender learns nothing from this node. Every term this
//! crate computes goes through [`next`], never `+ 1`.

use core::fmt;

use crate::types::Term;
use crate::wire::Body;

/// No term above this is heeded, and a node at it does not campaign.
pub const TERM_CEILING: Term = 1 << 63;

/// The furthest a message's term may lie above this node's own.
pub const MAX_TERM_JUMP: Term = 1 << 32;

/// Why a message's term was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermRefusal {
    /// Above [`TERM_CEILING`].
    AboveCeiling(Term),
    /// More than [`MAX_TERM_JUMP`] above `own`.
    TooFarAhead { term: Term, own: Term },
}

impl fmt::Display for TermRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TermRefusal::AboveCeiling(term) => {
                write!(f, "term {term} is above the ceiling {TERM_CEILING}")
            }
            TermRefusal::TooFarAhead { term, own } => write!(
                f,
                "term {term} is more than {MAX_TERM_JUMP} above this node's {own}"
            ),
        }
    }
}

/// Whether a message term `term` may be heeded by a node at term `own`.
pub fn admissible(own: Term, term: Term) -> Result<(), TermRefusal> {
    if term > TERM_CEILING {
        Err(TermRefusal::AboveCeiling(term))
    } else if term > own.saturating_add(MAX_TERM_JUMP) {
        Err(TermRefusal::TooFarAhead { term, own })
    } else {
        Ok(())
    }
}

/// Every term a message body carries: all must be admissible.
pub fn terms_of(body: &Body) -> [Option<Term>; 2] {
    match body {
        Body::RequestVote { term, .. }
        | Body::Vote { term, .. }
        | Body::Heartbeat { term, .. }
        | Body::HeartbeatAck { term, .. }
        | Body::Welcome { term, .. }
        | Body::RequestPreVote { term, .. }
        | Body::TimeoutNow { term, .. } => [Some(*term), None],
        Body::PreVote { term, current, .. } | Body::PreVoteLater { term, current, .. } => {
            [Some(*term), Some(*current)]
        }
        Body::Join { .. } | Body::Removed { .. } | Body::Identify { .. } => [None, None],
    }
}

/// The term after `own`, if a node at `own` may still campaign.
pub fn next(own: Term) -> Option<Term> {
    if own >= TERM_CEILING {
        None
    } else {
        Some(own + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(admissible(0, MAX_TERM_JUMP), Ok(()));
        assert!(admissible(0, MAX_TERM_JUMP + 1).is_err());
        assert_eq!(admissible(TERM_CEILING, TERM_CEILING), Ok(()));
        assert!(admissible(TERM_CEILING, TERM_CEILING + 1).is_err());
        assert!(
            admissible(u64::MAX, u64::MAX).is_err(),
            "no wrap on own + jump"
        );
        assert_eq!(next(0), Some(1));
        assert_eq!(next(TERM_CEILING - 1), Some(TERM_CEILING));
        assert_eq!(next(TERM_CEILING), None);
        assert_eq!(next(u64::MAX), None);
    }
}
