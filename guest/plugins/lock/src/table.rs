//! The lock table: where this instance stands with respect to leadership,
//! and the grants it made in its term.

use std::collections::BTreeMap;

use tenure_sdk::WakeupId;

/// Where this instance stands with respect to leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not leading: every request is refused.
    Following,
    /// Leading `term`, but grants made by earlier leaders may still be live
    /// until wake-up `grace` fires: requests are refused.
    WarmingUp {
        /// The term this node leads.
        term: u64,
        /// The `grace` wake-up.
        grace: WakeupId,
    },
    /// Leading `term` and answering requests.
    Serving {
        /// The term this node leads.
        term: u64,
    },
}

impl Phase {
    /// The term this node leads, if it leads.
    pub fn term(self) -> Option<u64> {
        match self {
            Phase::Following => None,
            Phase::WarmingUp { term, .. } | Phase::Serving { term } => Some(term),
        }
    }

    /// The phase's name, for `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Following => "following",
            Phase::WarmingUp { .. } => "warming-up",
            Phase::Serving { .. } => "serving",
        }
    }
}

/// One granted lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who holds it.
    pub holder: String,
    /// The grant's number in its term: the fencing token's minor part.
    pub seq: u64,
    /// How long the grant lasts, in milliseconds.
    pub ttl_ms: u64,
    /// The wake-up that expires it.
    pub wakeup: WakeupId,
}

/// Everything the lock service knows, and hands over on a hot swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Leading or not, and in which term.
    pub phase: Phase,
    /// The last SEQ issued in this term (0 before the first grant).
    pub seq: u64,
    /// Live grants by lock name. Only ever non-empty while serving.
    pub locks: BTreeMap<String, Grant>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            phase: Phase::Following,
            seq: 0,
            locks: BTreeMap::new(),
        }
    }
}

impl Table {
    /// Every wake-up the table is waiting for.
    pub fn wakeups(&self) -> Vec<WakeupId> {
        let grace = match self.phase {
            Phase::WarmingUp { grace, .. } => Some(grace),
            _ => None,
        };
        grace
            .into_iter()
            .chain(self.locks.values().map(|grant| grant.wakeup))
            .collect()
    }
}
