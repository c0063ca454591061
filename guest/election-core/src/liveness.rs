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

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Peer {
    last_news_ns: u64,
    alive: bool,
}

/// Per-peer liveness, keyed by id. Self is never tracked.
///
/// The peers are kept in a vector sorted by id (handed over as a map, as
/// before), so that a follower that relays the same leader's list heartbeat
/// after heartbeat can remember where in it each relayed peer sits and
/// skip comparing names ([`Liveness::heard_relayed`]).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Liveness {
    #[serde(with = "as_map")]
    peers: Vec<(NodeId, Peer)>,
    /// Moves on whenever the set of live peers may have changed (see
    /// [`Liveness::version`]). Not exported: an imported state starts
    /// at 0 with nothing derived from it cached.
    #[serde(skip)]
    version: u64,
    /// Moves on whenever a peer is added, so positions in `peers` stay
    /// valid while it does not.
    #[serde(skip)]
    keys_version: u64,
    /// The last relayed list, by key, and where its peers sit in `peers`.
    #[serde(skip)]
    relay: Option<Relay>,
}

/// Where the peers of one relayed list sit (see [`Liveness::heard_relayed`]).
#[derive(Clone, Debug)]
struct Relay {
    key: (u64, u64),
    keys_version: u64,
    at: Vec<usize>,
}

/// `peers` crosses a handover as the map it was before it became a sorted
/// vector: the same bytes, so builds on either side read each other.
mod as_map {
    use super::{NodeId, Peer};
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        peers: &[(NodeId, Peer)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(peers.iter().map(|(id, peer)| (id, peer)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(NodeId, Peer)>, D::Error> {
        Ok(BTreeMap::<NodeId, Peer>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

impl Liveness {
    fn find(&self, peer: &str) -> Result<usize, usize> {
        self.peers.binary_search_by(|(id, _)| id.as_str().cmp(peer))
    }

    /// Records news of `peer` at `now_ns`; returns `Joined` if it was not
    /// alive before.
    pub fn heard(&mut self, peer: &str, now_ns: u64) -> Option<Change> {
        match self.find(peer) {
            Ok(at) => self.heard_at(at, now_ns),
            Err(at) => {
                self.version += 1;
                self.keys_version += 1;
                self.peers.insert(
                    at,
                    (
                        peer.into(),
                        Peer {
                            last_news_ns: now_ns,
                            alive: true,
                        },
                    ),
                );
                Some(Change::Joined(peer.into()))
            }
        }
    }

    /// News, at `now_ns`, of the known peer at position `at`.
    fn heard_at(&mut self, at: usize, now_ns: u64) -> Option<Change> {
        let (id, p) = &mut self.peers[at];
        p.last_news_ns = p.last_news_ns.max(now_ns);
        if p.alive {
            return None;
        }
        p.alive = true;
        self.version += 1;
        Some(Change::Joined(id.clone()))
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
        let mut at = 0;
        for peer in sorted {
            while at < self.peers.len() && self.peers[at].0 < *peer {
                at += 1;
            }
            if at < self.peers.len() && self.peers[at].0 == *peer {
                changes.extend(self.heard_at(at, now_ns));
            } else {
                new_peers.push(peer);
            }
        }
        for peer in new_peers {
            changes.extend(self.heard(peer, now_ns));
        }
        changes.sort_by(|a, b| change_id(a).cmp(change_id(b)));
        changes
    }

    /// [`Liveness::heard_all`] for a relayed list that `key` names, if it
    /// has a name: a follower relays its leader's list of live peers on
    /// every heartbeat, and in a steady cluster it is the same list each
    /// time. The caller promises that one key always stands for one list;
    /// `relayed` gives the list (sorted) and is called only when `key` is
    /// not the one of the last relayed list, or a peer was added since.
    pub fn heard_relayed<'a, I>(
        &mut self,
        key: Option<(u64, u64)>,
        now_ns: u64,
        relayed: impl FnOnce() -> I,
    ) -> Vec<Change>
    where
        I: Iterator<Item = &'a NodeId> + Clone,
    {
        let hit = key.is_some_and(|key| {
            self.relay
                .as_ref()
                .is_some_and(|r| r.key == key && r.keys_version == self.keys_version)
        });
        if hit && let Some(relay) = &mut self.relay {
            // No peer was added since, so the positions still hold; the
            // list is sorted, so the changes come in id order.
            let at = core::mem::take(&mut relay.at);
            #[cfg(debug_assertions)]
            let mut walked = self.clone();
            let changes: Vec<Change> = at
                .iter()
                .filter_map(|&i| self.heard_at(i, now_ns))
                .collect();
            if let Some(relay) = &mut self.relay {
                relay.at = at;
            }
            // Every test build checks the shortcut against the walk.
            #[cfg(debug_assertions)]
            {
                let expected = walked.heard_all(relayed(), now_ns);
                debug_assert_eq!(changes, expected, "stale relay positions");
                debug_assert_eq!(self.peers, walked.peers, "stale relay positions");
            }
            return changes;
        }
        let list = relayed();
        let changes = self.heard_all(list.clone(), now_ns);
        self.relay = key.map(|key| Relay {
            key,
            keys_version: self.keys_version,
            at: list.filter_map(|peer| self.find(peer).ok()).collect(),
        });
        changes
    }

    /// Marks peers without news for more than `timeout_ns` as gone and
    /// returns them, in id order.
    pub fn expire(&mut self, now_ns: u64, timeout_ns: u64) -> Vec<Change> {
        let mut gone = Vec::new();
        for (id, p) in self.peers.iter_mut() {
            if p.alive && now_ns.saturating_sub(p.last_news_ns) > timeout_ns {
                p.alive = false;
                self.version += 1;
                gone.push(Change::Left(id.clone()));
            }
        }
        gone
    }

    /// Whether there was news of `peer` at or after `since_ns`.
    pub fn heard_since(&self, peer: &str, since_ns: u64) -> bool {
        self.find(peer)
            .is_ok_and(|at| self.peers[at].1.last_news_ns >= since_ns)
    }

    /// Ids of the peers alive now, sorted.
    pub fn alive(&self) -> Vec<NodeId> {
        self.alive_ids().cloned().collect()
    }

    /// The peers alive now, sorted, without copying them.
    pub fn alive_ids(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.iter().filter(|(_, p)| p.alive).map(|(id, _)| id)
    }

    /// Moves on whenever the peers [`Liveness::alive_ids`] lists may have
    /// changed: equal versions of one instance mean the same live peers.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether `peer` is alive now.
    pub fn is_alive(&self, peer: &str) -> bool {
        self.find(peer).is_ok_and(|at| self.peers[at].1.alive)
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

    #[test]
    fn a_relayed_list_named_by_a_key_is_news_of_each_peer_as_a_walk_is() {
        let ids = |names: &[&str]| -> Vec<NodeId> { names.iter().map(|n| (*n).into()).collect() };
        let (mut walked, mut relayed) = (Liveness::default(), Liveness::default());
        // (relayed list, time, the key naming it)
        type Step<'a> = (&'a [&'a str], u64, Option<(u64, u64)>);
        let history: [Step; 7] = [
            (&["b", "d"], 10, Some((1, 1))),
            (&["b", "d"], 20, Some((1, 1))),
            // Silence, then the same list again: both come back.
            (&["b", "d"], 500, Some((1, 1))),
            // A new list under a new key, with a peer never seen.
            (&["a", "b", "d"], 510, Some((2, 1))),
            (&["a", "b", "d"], 520, Some((2, 1))),
            // Lists without a name are walked every time.
            (&["c"], 530, None),
            (&["a", "b", "d"], 900, Some((2, 1))),
        ];
        for (list, now, key) in history {
            let list = ids(list);
            // A peer heard directly in between moves positions.
            walked.heard("e", now);
            relayed.heard("e", now);
            let expected = walked.heard_all(list.iter(), now);
            let got = relayed.heard_relayed(key, now, || list.iter());
            assert_eq!(got, expected, "at {now}");
            assert_eq!(relayed.peers, walked.peers, "at {now}");
            assert_eq!(
                relayed.expire(now + 150, 100),
                walked.expire(now + 150, 100)
            );
        }
    }

    #[test]
    fn liveness_crosses_a_handover_in_the_encoding_it_had_as_a_map() {
        // Builds before the sorted vector kept a map: they must read what
        // this build exports, and this build what they export.
        #[derive(serde::Serialize, serde::Deserialize)]
        struct AsMap {
            peers: alloc::collections::BTreeMap<NodeId, Peer>,
        }
        let mut l = Liveness::default();
        for (peer, at) in [("c", 5), ("a", 7), ("b", 9)] {
            l.heard(peer, at);
        }
        l.expire(108, 100);
        let old = AsMap {
            peers: l.peers.iter().cloned().collect(),
        };
        let ours = postcard::to_allocvec(&l).expect("encodes");
        assert_eq!(ours, postcard::to_allocvec(&old).expect("encodes"));
        let back: Liveness = postcard::from_bytes(&ours).expect("decodes");
        assert_eq!(back.peers, l.peers);
        assert_eq!(back.alive(), ids_of(&["b"]));
    }

    fn ids_of(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| (*n).into()).collect()
    }
}
