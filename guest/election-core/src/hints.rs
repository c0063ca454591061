//! Whom a leader contacts because another member mentioned it.
//!
//! # How a node enters the voting membership
//!
//! Only two ways (see [`crate::membership`]), because every member raises
//! the quorum, and a member that does not exist raises it for good:
//!
//! 1. this node's bootstrap config names it (epoch 0);
//! 2. the leader this node follows lists it in a heartbeat of a later
//!    epoch: the leader admitted it, one change at a time, after it spoke
//!    to the leader itself (the host authenticated it).
//!
//! Speaking to a follower makes no one a member, and member lists in
//! `Join`, `Welcome` and `HeartbeatAck` add no one: a joiner's mistyped
//! peer list would otherwise spread phantom members to the whole cluster.
//! Those lists are hints instead: a leader sends one heartbeat to an id a
//! follower's ack mentions that it has never heard of. If the id is real,
//! it follows the leader and acknowledges, which asks the leader to admit
//! it; if it is a phantom, the heartbeat goes nowhere and nothing changes.
//! [`Hints`] keeps that traffic small.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::types::NodeId;

/// At most this many ids are remembered as contacted; mentions beyond it
/// wait until older ones expire.
pub const MAX_HINTS: usize = 32;

/// When each mentioned id was last contacted.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    contacted: BTreeMap<NodeId, u64>,
}

impl Hints {
    /// The ids among `mentioned` to contact at `now_ns`: those not
    /// contacted within `retry_ns`, as long as room remains. Marks them
    /// contacted.
    pub fn due<'a>(
        &mut self,
        mentioned: impl Iterator<Item = &'a NodeId>,
        now_ns: u64,
        retry_ns: u64,
    ) -> Vec<NodeId> {
        self.contacted
            .retain(|_, at| now_ns.saturating_sub(*at) < retry_ns);
        let mut due = Vec::new();
        for id in mentioned {
            if self.contacted.contains_key(id) || self.contacted.len() >= MAX_HINTS {
                continue;
            }
            self.contacted.insert(id.clone(), now_ns);
            due.push(id.clone());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn each_id_is_contacted_once_per_retry_and_the_list_is_bounded() {
        let mut h = Hints::default();
        let a: NodeId = "a".into();
        assert_eq!(h.due([&a].into_iter(), 0, 100), vec![a.clone()]);
        assert!(h.due([&a].into_iter(), 50, 100).is_empty());
        assert_eq!(h.due([&a].into_iter(), 100, 100), vec![a.clone()]);
        let many: Vec<NodeId> = (0..100).map(|i| alloc::format!("x{i}")).collect();
        assert_eq!(h.due(many.iter(), 100, 100).len(), MAX_HINTS - 1);
    }
}
