//! Which peers are alive, for the `peer-joined` and `peer-left` events.
//!
//! A peer is alive while this node has news of it no older than the peer
//! timeout. News is either a message from the peer itself, or a leader's
//! heartbeat listing the peer among those the leader hears from (followers
//! only talk to the leader, so they learn of each other through it).
//!
//! Liveness is information, never membership: a silent peer stays a voting
//! member, because shrinking the quorum on silence would let both sides of a
//! partition elect a leader.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::types::NodeId;

/// What changed when news arrived or time passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The peer is alive again (or for the first time).
    Joined(NodeId),
    /// The peer fell silent.
    Left(NodeId),
}

fn change_id(change: &Change) -> &NodeId {
    match change {
        Change::Joined(id) | Change::Left(id) => id,
    }
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Peer {
    last_news_ns: u64,
    alive: bool,
}

/// Per-peer liveness, keyed by id. Self is never tracked.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Liveness {
    peers: BTreeMap<NodeId, Peer>,
}

impl Liveness {
    /// Records news of `peer` at `now_ns`; returns `Joined` if it was not
    /// alive before.
    pub fn heard(&mut self, peer: &str, now_ns: u64) -> Option<Change> {
        match self.peers.get_mut(peer) {
            Some(p) => {
                p.last_news_ns = p.last_news_ns.max(now_ns);
                if p.alive {
                    None
                } else {
                    p.alive = true;
                    Some(Change::Joined(peer.into()))
                }
            }
            None => {
                self.peers.insert(
                    peer.into(),
                    Peer {
                        last_news_ns: now_ns,
                        alive: true,
                    },
                );
                Some(Change::Joined(peer.into()))
            }
        }
    }

    /// Records news at `now_ns` of every peer `sorted` names (in id
    /// order, as [`Liveness::alive`] gives them: a leader's heartbeat
    /// relays its list) in one merged pass; returns `Joined` for those not
    /// alive before, in id order. Names out of order are taken one by one.
    pub fn heard_all<'a>(
        &mut self,
        sorted: impl Iterator<Item = &'a NodeId> + Clone,
        now_ns: u64,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        if !sorted.clone().is_sorted() {
            changes.extend(sorted.filter_map(|peer| self.heard(peer, now_ns)));
            return changes;
        }
        let mut new_peers = Vec::new();
        let mut known = self.peers.iter_mut().peekable();
        for peer in sorted {
            while known.next_if(|(id, _)| *id < peer).is_some() {}
            match known.peek_mut() {
                Some((id, p)) if *id == peer => {
                    p.last_news_ns = p.last_news_ns.max(now_ns);
                    if !p.alive {
                        p.alive = true;
                        changes.push(Change::Joined(peer.clone()));
                    }
                }
                _ => new_peers.push(peer),
            }
        }
        for peer in new_peers {
            if let Some(change) = self.heard(peer, now_ns) {
                changes.push(change);
            }
        }
        changes.sort_by(|a, b| change_id(a).cmp(change_id(b)));
        changes
    }

    /// Marks peers without news for more than `timeout_ns` as gone and
    /// returns them, in id order.
    pub fn expire(&mut self, now_ns: u64, timeout_ns: u64) -> Vec<Change> {
        let mut gone = Vec::new();
        for (id, p) in self.peers.iter_mut() {
            if p.alive && now_ns.saturating_sub(p.last_news_ns) > timeout_ns {
                p.alive = false;
                gone.push(Change::Left(id.clone()));
            }
        }
        gone
    }

    /// Whether there was news of `peer` at or after `since_ns`.
    pub fn heard_since(&self, peer: &str, since_ns: u64) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| p.last_news_ns >= since_ns)
    }

    /// Ids of the peers alive now, sorted.
    pub fn alive(&self) -> Vec<NodeId> {
        self.alive_ids().cloned().collect()
    }

    /// The peers alive now, sorted, without copying them.
    pub fn alive_ids(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.iter().filter(|(_, p)| p.alive).map(|(id, _)| id)
    }

    /// Whether `peer` is alive now.
    pub fn is_alive(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|p| p.alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn news_of_many_at_once_is_news_of_each() {
        let ids = |names: &[&str]| -> Vec<NodeId> { names.iter().map(|n| (*n).into()).collect() };
        // The same history told peer by peer and in one pass, sorted or
        // not, ends in the same state and the same changes.
        for relayed in [ids(&["a", "c", "d", "f"]), ids(&["f", "a", "d", "c"])] {
            let (mut one, mut all) = (Liveness::default(), Liveness::default());
            for l in [&mut one, &mut all] {
                l.heard("c", 5);
                l.heard("e", 5);
                l.expire(200, 100);
            }
            let mut each: Vec<Change> = relayed.iter().filter_map(|p| one.heard(p, 300)).collect();
            each.sort_by(|a, b| change_id(a).cmp(change_id(b)));
            let mut together = all.heard_all(relayed.iter(), 300);
            together.sort_by(|a, b| change_id(a).cmp(change_id(b)));
            assert_eq!(together, each);
            assert_eq!(all.alive(), one.alive());
            assert_eq!(all.alive(), ids(&["a", "c", "d", "f"]));
            assert_eq!(all.expire(401, 100), one.expire(401, 100));
        }
    }

    #[test]
    fn first_news_joins_and_silence_leaves_once() {
        let mut l = Liveness::default();
        assert_eq!(l.heard("b", 10), Some(Change::Joined("b".into())));
        assert_eq!(l.heard("b", 20), None);
        assert_eq!(l.expire(120, 100), vec![]);
        assert_eq!(l.expire(121, 100), vec![Change::Left("b".into())]);
        assert_eq!(l.expire(500, 100), vec![], "left is reported once");
        assert_eq!(l.alive(), Vec::<NodeId>::new());
        assert_eq!(l.heard("b", 600), Some(Change::Joined("b".into())));
        assert_eq!(l.alive(), vec!["b".to_string()]);
    }

    #[test]
    fn old_news_does_not_turn_back_the_clock() {
        let mut l = Liveness::default();
        l.heard("b", 100);
        l.heard("b", 50);
        assert_eq!(l.expire(180, 100), vec![]);
    }
}
