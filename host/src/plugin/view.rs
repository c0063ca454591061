//! The node's state as a plugin sees it: what `leader-api` answers from,
//! and what the host's fencing decides on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::bindings::types::{NodeStatus, Role};

/// The protocol's clock, as the plugin side reads it to tell how much of a
/// lease is left: the same origin as the protocol's `now`.
#[derive(Clone, Debug)]
pub enum ViewClock {
    /// Real time since the node's protocol clock origin.
    Since(std::time::Instant),
    /// A clock someone else sets: the simulator's virtual time for a node.
    Manual(Arc<AtomicU64>),
}

impl ViewClock {
    /// A manual clock at 0 and the handle that moves it.
    pub fn manual() -> (ViewClock, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(0));
        (ViewClock::Manual(now.clone()), now)
    }

    /// Now, in the protocol's nanoseconds.
    pub fn now_ns(&self) -> u64 {
        match self {
            ViewClock::Since(origin) => {
                u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
            ViewClock::Manual(now) => now.load(Ordering::Relaxed),
        }
    }
}

/// The node's state as a plugin sees it through `leader-api`. The node task
/// updates it; the plugin thread reads it.
#[derive(Clone, Debug)]
pub struct LeaderView {
    pub node_id: String,
    pub cluster_id: String,
    pub role: Role,
    pub term: u64,
    pub leader: Option<String>,
    /// Members heard from lately, self excluded.
    pub peers: Vec<String>,
    /// Voting members, self included.
    pub members: Vec<String>,
    /// Until when (protocol clock) this node's lease as leader holds.
    pub lease_expires_ns: Option<u64>,
    /// The protocol's clock, to measure the lease against.
    pub clock: ViewClock,
}

impl LeaderView {
    /// The view of a node whose protocol reports `status`, on `clock`.
    pub fn from_status(status: &NodeStatus, clock: ViewClock) -> LeaderView {
        LeaderView {
            node_id: status.node_id.clone(),
            cluster_id: status.cluster_id.clone(),
            role: status.role,
            term: status.term,
            leader: status.leader.clone(),
            peers: status.alive_peers.clone(),
            members: status.members.clone(),
            lease_expires_ns: status.lease_expires_ns,
            clock,
        }
    }

    /// Brings the view up to date with the protocol's `status`.
    pub fn update(&mut self, status: &NodeStatus) {
        self.role = status.role;
        self.term = status.term;
        self.leader = status.leader.clone();
        self.peers = status.alive_peers.clone();
        self.members = status.members.clone();
        self.lease_expires_ns = status.lease_expires_ns;
    }

    /// Nanoseconds of lease left now, if this node leads and holds one.
    pub fn lease_remaining_ns(&self) -> Option<u64> {
        if self.role != Role::Leader {
            return None;
        }
        let remaining = self.lease_expires_ns?.checked_sub(self.clock.now_ns())?;
        (remaining > 0).then_some(remaining)
    }
}

/// A shared, updatable [`LeaderView`].
pub type SharedView = Arc<Mutex<LeaderView>>;
