//! Heartbeats carry the leader's lists only when they changed.
//!
//! A leader's heartbeat says three things besides its term and round: its
//! voting membership (the view), the members it heard from lately (for
//! liveness and fast-failover turns) and its tombstones. Until wire
//! version 4 every heartbeat carried all three in full, to every member
//! and observer, and every ack carried the follower's view and tombstones
//! back: a heartbeat grew with the cluster, and a round cost the leader
//! O(n²) bytes. In a steady cluster the lists do not change between
//! rounds, so they now travel only when they did.
//!
//! # How
//!
//! - The leader numbers the contents of its lists within its term: the
//!   **generation** goes up by one whenever a round's lists differ from
//!   the previous round's ([`Sent::round`]).
//! - Every heartbeat names the generation. It carries the lists (`full`)
//!   unless the recipient's newest ack said it **holds** that very
//!   generation ([`Sent::needs_lists`]).
//! - A follower keeps the lists of the last full heartbeat it handled,
//!   with whom they came from: leader, the leader's data id, term and
//!   generation ([`Kept`]). A heartbeat without lists that names the kept
//!   lists is **handled as if it carried them** ([`Kept::resolve`]): every
//!   rule of [`crate::membership`] and [`crate::liveness`] sees what it saw
//!   when every heartbeat was full.
//! - One that names anything else (the follower restarted or swapped its
//!   protocol and lost what it kept, a full heartbeat was dropped, the
//!   leader's state was replaced) is handled with empty lists: the node
//!   follows its leader, as it must, but takes no view from it. Its ack
//!   holds nothing, so the next round carries the lists again.
//! - An ack carries the follower's view and tombstones only when they say
//!   something the heartbeat did not: a view other than the leader's, or a
//!   tombstone the leader's lists lack ([`ack_lists`]). That is the one
//!   case in which the leader needed them (a member it does not know, a
//!   node that removed itself).
//!
//! # Why the guarantees are unchanged
//!
//! - A follower never handles lists other than those its leader sent: it
//!   expands a heartbeat only with lists that came, in full, from the same
//!   leader (same id and data id) in the same term under the same
//!   generation, and a generation names one content within one leader's
//!   term. A node leads a term at most once (it votes once per term, for
//!   itself, persisted), and a process that lost its state has a new data
//!   id.
//! - The leader leaves the lists out only for a peer whose ack, in this
//!   term, said it holds the current generation, and an ack holds a
//!   generation only after the follower handled those lists. So after a
//!   change of view, every heartbeat that reaches a peer before its ack of
//!   the new generation carries the new view, as before. A later heartbeat
//!   that the peer cannot expand (it restarted in between) finds the view
//!   already taken and persisted: the rule that a majority holds a change
//!   before the next one ([`crate::lease::Lease::change_settled`]) still
//!   holds.
//! - The one new case, a heartbeat followed without its lists, is a
//!   heartbeat whose view the follower does not take: what a follower did
//!   already with a view that does not list its leader. Loyalty and the
//!   lease do not depend on the view.
//!
//! # Limits
//!
//! A follower answers a leader it holds as removed with a `Removed`
//! notice, not an ack; the leader then forgets what that peer holds
//! ([`Sent::forget`]), so a removal undone later is not met with lists
//! left out forever.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::types::{NodeId, Term};
use crate::versioned::Versioned;

/// The three lists a leader's heartbeat stands for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lists {
    /// The leader's voting membership, sorted.
    pub members: Vec<NodeId>,
    /// The members the leader heard from lately, sorted.
    pub alive: Vec<NodeId>,
    /// The leader's tombstones, sorted.
    pub removed: Vec<NodeId>,
}

/// The leader's side: the generation of its lists and what each peer
/// holds. Reset when the term changes.
#[derive(Clone, Debug, Default)]
pub struct Sent {
    term: Term,
    generation: u64,
    last: Option<Lists>,
    /// Per peer: the round of its newest ack and the generation it held.
    holds: BTreeMap<NodeId, (u64, Option<u64>)>,
}

impl Sent {
    /// A new round of `term` with these `lists`: returns their generation,
    /// one more than the last round's if they changed.
    pub fn round(&mut self, term: Term, lists: &Lists) -> u64 {
        if term != self.term {
            *self = Sent {
                term,
                ..Sent::default()
            };
        }
        if self.last.as_ref() != Some(lists) {
            self.generation += 1;
            self.last = Some(lists.clone());
        }
        self.generation
    }

    /// The generation of this term's latest round (0 before any round).
    pub fn generation(&self, term: Term) -> u64 {
        if term == self.term {
            self.generation
        } else {
            0
        }
    }

    /// Whether `peer`'s heartbeat of this round must carry the lists: its
    /// newest ack did not hold the current generation.
    pub fn needs_lists(&self, term: Term, peer: &str) -> bool {
        term != self.term
            || self.holds.get(peer).and_then(|(_, held)| *held) != Some(self.generation)
    }

    /// `peer` acknowledged `round` of `term` holding generation `held`.
    /// An older ack than one already counted is ignored: acks that cross
    /// a reconnect may arrive out of order.
    pub fn acked(&mut self, term: Term, peer: &str, round: u64, held: Option<u64>) {
        if term != self.term {
            return;
        }
        // Looked up first: the entry API would copy `peer` on every ack.
        match self.holds.get_mut(peer) {
            Some(entry) if round >= entry.0 => *entry = (round, held),
            Some(_) => {}
            None => {
                self.holds.insert(peer.into(), (round, held));
            }
        }
    }

    /// `peer` holds nothing of this leader's any more (it answered with
    /// something other than an ack).
    pub fn forget(&mut self, peer: &str) {
        self.holds.remove(peer);
    }
}

/// The follower's side: the lists of the last full heartbeat it handled.
#[derive(Clone, Debug, Default)]
pub struct Kept {
    from: Option<(NodeId, u64, Term, u64)>,
    lists: Lists,
    /// Moves on whenever a full heartbeat's lists are taken: while it does
    /// not, [`Kept::resolve`] hands out one and the same content (see
    /// [`Kept::version`]).
    version: u64,
    /// [`Kept::lists_members_match`]'s last answer, and the versions of
    /// these lists and of the membership it was given.
    members_match: Option<((u64, u64), bool)>,
}

/// What a heartbeat says of its lists, as received.
pub struct Received<'a> {
    /// The leader (the sender) and its data id.
    pub leader: &'a str,
    pub data_id: u64,
    /// The heartbeat's term and generation.
    pub term: Term,
    pub generation: u64,
    /// Whether the lists are in the message.
    pub full: bool,
}

impl<'a> Received<'a> {
    /// What `message` from `from` says of its lists, if it is a heartbeat.
    pub fn of(from: &'a str, message: &crate::wire::Message) -> Option<Self> {
        match message.body {
            crate::wire::Body::Heartbeat {
                term,
                generation,
                full,
                ..
            } => Some(Received {
                leader: from,
                data_id: message.sender_data_id,
                term,
                generation,
                full,
            }),
            _ => None,
        }
    }
}

impl Kept {
    /// The lists a heartbeat is handled with, taken out of this keeper
    /// (give them back with [`Kept::keep`]): those it `carried` if it was
    /// full, the kept ones if it names them, none otherwise. Returns the
    /// generation they are of (`None`: none, and the ack says so).
    pub fn resolve(&mut self, received: Received<'_>, carried: Lists) -> (Option<u64>, Lists) {
        if received.full {
            self.from = Some(Self::key(&received));
            self.version += 1;
            return (Some(received.generation), carried);
        }
        if self.names(&received) {
            return (Some(received.generation), core::mem::take(&mut self.lists));
        }
        (None, Lists::default())
    }

    /// Which content the lists [`Kept::resolve`] last handed out with a
    /// generation are: equal versions of one keeper, equal lists.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether `heard`, the lists [`Kept::resolve`] last handed out with
    /// a generation, name exactly `members`: compared once per version of
    /// each, since a follower asks on every heartbeat and, at 51 members,
    /// the walk by name was a tenth of the protocol's time.
    pub fn lists_members_match(
        &mut self,
        heard: &Lists,
        members: &Versioned<BTreeSet<NodeId>>,
    ) -> bool {
        let key = (self.version, members.version());
        let same = match self.members_match {
            Some((known, same)) if known == key => same,
            _ => heard.members.iter().eq(members.iter()),
        };
        // Every test build checks the answer against the walk.
        debug_assert_eq!(same, heard.members.iter().eq(members.iter()));
        self.members_match = Some((key, same));
        same
    }

    /// Whether `received` names the kept lists (compared in place: this
    /// runs on every heartbeat).
    fn names(&self, received: &Received<'_>) -> bool {
        self.from
            .as_ref()
            .is_some_and(|(leader, data_id, term, generation)| {
                *data_id == received.data_id
                    && *term == received.term
                    && *generation == received.generation
                    && leader == received.leader
            })
    }

    /// Keeps the lists a heartbeat was handled with, if they were its
    /// leader's (`held`, from [`Kept::resolve`]).
    pub fn keep(&mut self, held: Option<u64>, lists: Lists) {
        if held.is_some() {
            self.lists = lists;
        }
    }

    /// The kept lists, if a heartbeat without lists names them.
    pub fn named_by(&self, received: &Received<'_>) -> Option<&Lists> {
        self.names(received).then_some(&self.lists)
    }

    fn key(received: &Received<'_>) -> (NodeId, u64, Term, u64) {
        (
            NodeId::from(received.leader),
            received.data_id,
            received.term,
            received.generation,
        )
    }
}

/// What a follower's ack to a heartbeat with `heard` lists carries of its
/// own `members` and `removed` (sorted): nothing, when its view is the
/// leader's and the leader has every tombstone it has; both in full
/// otherwise, or when it could not resolve the heartbeat's lists.
pub fn ack_lists<'a>(
    heard: Option<&Lists>,
    members: impl Iterator<Item = &'a NodeId> + Clone,
    removed: impl Iterator<Item = &'a NodeId> + Clone,
) -> (Vec<NodeId>, Vec<NodeId>) {
    let same_members = |heard: &Lists| heard.members.iter().eq(members.clone());
    ack_lists_with(heard, same_members, members.clone(), removed)
}

/// [`ack_lists`], with whether the heard lists name exactly `members`
/// answered by `same_members` (a follower remembers that answer, see
/// [`Kept::lists_members_match`]).
pub fn ack_lists_with<'a>(
    heard: Option<&Lists>,
    same_members: impl FnOnce(&Lists) -> bool,
    members: impl Iterator<Item = &'a NodeId> + Clone,
    removed: impl Iterator<Item = &'a NodeId> + Clone,
) -> (Vec<NodeId>, Vec<NodeId>) {
    let says_nothing_new = heard.is_some_and(|heard| {
        same_members(heard)
            && removed
                .clone()
                .all(|tomb| heard.removed.binary_search(tomb).is_ok())
    });
    if says_nothing_new {
        (Vec::new(), Vec::new())
    } else {
        (members.cloned().collect(), removed.cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn lists(members: &[&str]) -> Lists {
        Lists {
            members: members.iter().map(|m| NodeId::from(*m)).collect(),
            alive: vec!["b".into()],
            removed: vec![],
        }
    }

    #[test]
    fn generations_count_changes_within_a_term() {
        let mut sent = Sent::default();
        assert_eq!(sent.round(3, &lists(&["a", "b"])), 1);
        assert_eq!(sent.round(3, &lists(&["a", "b"])), 1);
        assert_eq!(sent.round(3, &lists(&["a", "b", "c"])), 2);
        // A new term starts over, and every peer needs the lists again.
        sent.acked(3, "b", 5, Some(2));
        assert!(!sent.needs_lists(3, "b"));
        assert_eq!(sent.round(4, &lists(&["a", "b", "c"])), 1);
        assert!(sent.needs_lists(4, "b"));
    }

    #[test]
    fn lists_are_left_out_only_for_a_peer_that_holds_the_current_generation() {
        let mut sent = Sent::default();
        sent.round(1, &lists(&["a", "b"]));
        assert!(sent.needs_lists(1, "b"), "never acked");
        sent.acked(1, "b", 1, Some(1));
        assert!(!sent.needs_lists(1, "b"));
        // An older ack that crossed a reconnect changes nothing.
        sent.acked(1, "b", 0, None);
        assert!(!sent.needs_lists(1, "b"));
        // A change makes the lists travel again until the peer holds it.
        sent.round(1, &lists(&["a", "b", "c"]));
        assert!(sent.needs_lists(1, "b"));
        sent.acked(1, "b", 2, None);
        assert!(sent.needs_lists(1, "b"), "it could not resolve them");
        sent.acked(1, "b", 3, Some(2));
        assert!(!sent.needs_lists(1, "b"));
        sent.forget("b");
        assert!(sent.needs_lists(1, "b"));
    }

    #[test]
    fn a_follower_fills_in_only_the_lists_it_kept_from_that_very_leader() {
        let mut kept = Kept::default();
        let got = |leader, data_id, term, generation, full| Received {
            leader,
            data_id,
            term,
            generation,
            full,
        };
        let full = lists(&["a", "b"]);
        let (held, used) = kept.resolve(got("a", 9, 2, 1, true), full.clone());
        assert_eq!((held, &used), (Some(1), &full));
        kept.keep(held, used);
        assert_eq!(kept.named_by(&got("a", 9, 2, 1, false)), Some(&full));
        let (held, used) = kept.resolve(got("a", 9, 2, 1, false), Lists::default());
        assert_eq!((held, &used), (Some(1), &full));
        kept.keep(held, used);
        // Another generation, term, data id or leader: nothing to fill in,
        // and what was kept stays.
        for (leader, data_id, term, generation) in [
            ("a", 9, 2, 2),
            ("a", 9, 3, 1),
            ("a", 8, 2, 1),
            ("c", 9, 2, 1),
        ] {
            let received = got(leader, data_id, term, generation, false);
            assert_eq!(kept.named_by(&received), None);
            let (held, used) = kept.resolve(received, Lists::default());
            assert_eq!((held, &used), (None, &Lists::default()));
            kept.keep(held, used);
        }
        assert_eq!(kept.named_by(&got("a", 9, 2, 1, false)), Some(&full));
        let mut kept = Kept::default();
        let (held, _) = kept.resolve(got("a", 9, 2, 1, false), Lists::default());
        assert_eq!(held, None);
    }

    #[test]
    fn an_ack_carries_the_followers_lists_only_when_they_say_something_new() {
        let heard = Lists {
            removed: vec!["x".into()],
            ..lists(&["a", "b"])
        };
        let ab = [NodeId::from("a"), NodeId::from("b")];
        let (x, y) = (vec![NodeId::from("x")], vec![NodeId::from("y")]);
        let a = [NodeId::from("a")];
        let none: Vec<NodeId> = vec![];
        assert_eq!(
            ack_lists(Some(&heard), ab.iter(), x.iter()),
            (vec![], vec![])
        );
        assert_eq!(
            ack_lists(Some(&heard), ab.iter(), none.iter()),
            (vec![], vec![])
        );
        // A tombstone the leader lacks, a view of its own, or lists it
        // could not resolve: everything goes back.
        let (m, r) = ack_lists(Some(&heard), ab.iter(), y.iter());
        assert_eq!((m.len(), r.len()), (2, 1));
        let (m, _) = ack_lists(Some(&heard), a.iter(), none.iter());
        assert_eq!(m.len(), 1);
        let (m, _) = ack_lists(None, ab.iter(), none.iter());
        assert_eq!(m.len(), 2);
    }
}
