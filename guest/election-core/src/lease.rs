//! The leader's lease: until when it may act alone, from which of its
//! heartbeat rounds a majority acknowledged.
//!
//! A leader numbers its heartbeat rounds and remembers when it sent each
//! of the last [`ROUNDS_KEPT`]; followers echo the round in their acks.
//! The lease starts at the send time of the newest round that a majority
//! (the leader included) acknowledged — never at the time the ack arrived,
//! which would count the round trip as lease. See
//! [`crate::Election::lease_expires_ns`] for why that is sound.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::quorum;
use crate::types::NodeId;
use crate::versioned::Versioned;

/// Raises `peer`'s entry in `map` to `value` (inserting it if new),
/// copying `peer` only when it is new. Returns what changed: `None` when
/// the entry already held `value` or more, else `Some` of the value it
/// replaced (`Some(None)` for a new entry).
fn newest(map: &mut BTreeMap<NodeId, u64>, peer: &str, value: u64) -> Option<Option<u64>> {
    match map.get_mut(peer) {
        Some(newest) if *newest >= value => None,
        Some(newest) => Some(Some(core::mem::replace(newest, value))),
        None => {
            map.insert(peer.into(), value);
            Some(None)
        }
    }
}

/// How many rounds' send times a leader remembers. An ack for an older
/// round is ignored; at the default timings that is over three seconds.
pub const ROUNDS_KEPT: usize = 64;

/// One leader's lease bookkeeping for its current term.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lease {
    /// The latest heartbeat round started. Only grows, across terms too.
    pub round: u64,
    /// (round, send time) of the latest rounds, oldest first.
    sent: VecDeque<(u64, u64)>,
    /// Per peer: the send time of the newest round it acknowledged.
    acked: BTreeMap<NodeId, u64>,
    /// The leader began a transfer and it is under way: no lease until it
    /// is abandoned (see [`Lease::abandon`] and [`crate::transfer`]).
    pub given_up: bool,
    /// When this leader last changed the membership (an admission or a
    /// removal). The next change waits until a majority of the new
    /// membership acknowledged a round sent after it (see
    /// [`Lease::change_settled`]), so changes go one at a time.
    pub last_change_ns: Option<u64>,
    /// The first round sent after the last change. Not handed to another
    /// build (`serde(skip)`, like `acked_round`): after a swap the time
    /// above decides, more strictly.
    #[serde(skip)]
    pub change_round: Option<u64>,
    /// Per peer: the newest round number it acknowledged.
    #[serde(skip)]
    acked_round: BTreeMap<NodeId, u64>,
    /// The entries of `acked` that count for the lease: those of the
    /// members other than the leader, for the version of the membership
    /// they were sorted out for (see [`Lease::acked_by`]). A leader's
    /// status reads the lease after every ack, and sorting the members'
    /// acks out of all of them on each read walked the whole membership
    /// by name. Not handed over: rebuilt on the next ack.
    #[serde(skip)]
    counted: Option<Counted>,
}

/// The acks that count for the lease, for one version of the membership:
/// by peer, and as a multiset of send times, so the lease's start (the
/// majority's newest round) is read off the few distinct times of the
/// latest rounds instead of by sorting every member's ack after each ack.
#[derive(Clone, Debug, Default)]
struct Counted {
    version: u64,
    by_peer: BTreeMap<NodeId, u64>,
    /// How many of `by_peer` acknowledged each send time.
    times: BTreeMap<u64, usize>,
}

impl Counted {
    fn new<'a>(version: u64, acks: impl Iterator<Item = (&'a NodeId, u64)>) -> Counted {
        let mut counted = Counted {
            version,
            ..Counted::default()
        };
        for (peer, sent) in acks {
            counted.raise(peer, sent);
        }
        counted
    }

    /// Raises `peer`'s ack to the round sent at `sent`, if newer.
    fn raise(&mut self, peer: &str, sent: u64) {
        let Some(old) = newest(&mut self.by_peer, peer, sent) else {
            return;
        };
        if let Some(old) = old
            && let Some(count) = self.times.get_mut(&old)
        {
            *count -= 1;
            if *count == 0 {
                self.times.remove(&old);
            }
        }
        *self.times.entry(sent).or_insert(0) += 1;
    }

    /// The `nth` newest send time (1 for the newest), counting each peer
    /// once; none if fewer peers acknowledged anything.
    fn nth_newest(&self, nth: usize) -> Option<u64> {
        let mut seen = 0;
        for (&sent, &count) in self.times.iter().rev() {
            seen += count;
            if seen >= nth {
                return Some(sent);
            }
        }
        None
    }
}

impl Lease {
    /// Fresh bookkeeping for a new term, continuing the round numbers of
    /// `previous` so a late ack of an old round can never match a new one.
    pub fn starting_after(previous: &Lease) -> Lease {
        Lease {
            round: previous.round,
            ..Lease::default()
        }
    }

    /// Starts a round at `now_ns`.
    pub fn new_round(&mut self, now_ns: u64) {
        self.round += 1;
        self.sent.push_back((self.round, now_ns));
        while self.sent.len() > ROUNDS_KEPT {
            self.sent.pop_front();
        }
    }

    /// Whether the last membership change reached a majority of the
    /// (new) membership: the lease starts from a round sent strictly
    /// after it (a round sent at the same instant may have left before
    /// the change). With no change yet in this term, whether a majority
    /// acknowledged this leader at all. See [`crate::membership`] for why
    /// changes wait for this.
    pub fn change_settled(&self, members: &BTreeSet<NodeId>, me: &str) -> bool {
        let Some(start) = self.start(members, me) else {
            return false;
        };
        match (self.change_round, self.last_change_ns) {
            (Some(round), _) => {
                let others_needed = quorum::majority(members.len()).saturating_sub(1);
                let others = self
                    .acked_round
                    .iter()
                    .filter(|(peer, acked)| {
                        peer.as_str() != me && members.contains(peer.as_str()) && **acked >= round
                    })
                    .count();
                self.round >= round && others >= others_needed
            }
            (None, Some(changed)) => start > changed,
            (None, None) => true,
        }
    }

    /// The membership changed at `now_ns`; the next round is the first
    /// sent after it.
    pub fn mark_change(&mut self, now_ns: u64) {
        self.last_change_ns = Some(now_ns);
        self.change_round = Some(self.round + 1);
    }

    /// A transfer was abandoned: the lease may start again, but only from
    /// a round sent from now on, so every round sent while the transfer
    /// was under way (and every ack of one) is forgotten. The next
    /// round's number still follows on.
    pub fn abandon(&mut self) {
        self.given_up = false;
        self.sent.clear();
        self.acked.clear();
        self.acked_round.clear();
        self.counted = None;
    }

    /// `peer` acknowledged `round`.
    pub fn acked(&mut self, peer: &str, round: u64) {
        self.record(peer, round);
        self.counted = None;
    }

    /// `peer`, perhaps one of `members`, acknowledged `round`: as
    /// [`Lease::acked`], and keeps the members' acks sorted out for
    /// [`Lease::start_of`].
    pub fn acked_by(
        &mut self,
        peer: &str,
        round: u64,
        members: &Versioned<BTreeSet<NodeId>>,
        me: &str,
    ) {
        let Some(sent) = self.record(peer, round) else {
            return;
        };
        match &mut self.counted {
            Some(counted) if counted.version == members.version() => {
                if peer != me && members.contains(peer) {
                    counted.raise(peer, sent);
                }
            }
            _ => {
                let acks = self
                    .acked
                    .iter()
                    .filter(|(peer, _)| peer.as_str() != me && members.contains(peer.as_str()))
                    .map(|(peer, sent)| (peer, *sent));
                self.counted = Some(Counted::new(members.version(), acks));
            }
        }
    }

    /// Records an ack of `round` by `peer`; the round's send time, if it
    /// is one of the rounds kept.
    fn record(&mut self, peer: &str, round: u64) -> Option<u64> {
        let &(_, sent) = self.sent.iter().find(|(r, _)| *r == round)?;
        newest(&mut self.acked_round, peer, round);
        newest(&mut self.acked, peer, sent);
        Some(sent)
    }

    /// Whether a majority of `members` (`me` included, who acknowledges
    /// every round it sends) acknowledged `round` or a later one.
    pub fn majority_acked(&self, members: &BTreeSet<NodeId>, me: &str, round: u64) -> bool {
        let Some(&(_, sent)) = self.sent.iter().find(|(r, _)| *r == round) else {
            return false;
        };
        let others_needed = quorum::majority(members.len()).saturating_sub(1);
        let others = self
            .acked
            .iter()
            .filter(|(peer, acked)| {
                peer.as_str() != me && members.contains(peer.as_str()) && **acked >= sent
            })
            .count();
        others >= others_needed
    }

    /// When the lease started: the send time of the newest round a
    /// majority of `members` (`me` included, who acknowledges every round
    /// it sends) acknowledged; none if no such round or after a transfer.
    pub fn start(&self, members: &BTreeSet<NodeId>, me: &str) -> Option<u64> {
        self.start_among(members, me, None)
    }

    /// [`Lease::start`], from the acks [`Lease::acked_by`] sorted out if
    /// `members` did not change since (no walk of the members by name).
    pub fn start_of(&self, members: &Versioned<BTreeSet<NodeId>>, me: &str) -> Option<u64> {
        let counted = match &self.counted {
            Some(counted) if counted.version == members.version() => Some(counted),
            _ => None,
        };
        let start = self.start_among(members, me, counted);
        debug_assert_eq!(start, self.start(members, me), "stale counted acks");
        start
    }

    /// [`Lease::start`] over `counted` (the acks of the members other than
    /// `me`) if given, else over all acks sorted out now.
    fn start_among(
        &self,
        members: &BTreeSet<NodeId>,
        me: &str,
        counted: Option<&Counted>,
    ) -> Option<u64> {
        if self.given_up {
            return None;
        }
        let others_needed = quorum::majority(members.len()).saturating_sub(1);
        if others_needed == 0 {
            return self.sent.back().map(|&(_, sent)| sent);
        }
        if let Some(counted) = counted {
            return counted.nth_newest(others_needed);
        }
        // Acks and members are both sorted by id: one merged pass.
        let mut members = members.iter().peekable();
        let mut times: Vec<u64> = self
            .acked
            .iter()
            .filter(|(peer, _)| {
                while members.next_if(|m| m < peer).is_some() {}
                peer.as_str() != me && members.peek() == Some(peer)
            })
            .map(|(_, &sent)| sent)
            .collect();
        if times.len() < others_needed {
            return None;
        }
        // The others_needed-th newest send time.
        let (_, nth, _) = times.select_nth_unstable_by(others_needed - 1, |a, b| b.cmp(a));
        Some(*nth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn members(ids: &[&str]) -> BTreeSet<NodeId> {
        ids.iter().map(|id| String::from(*id)).collect()
    }

    #[test]
    fn no_lease_until_a_majority_acknowledged() {
        let five = members(&["a", "b", "c", "d", "e"]);
        let mut lease = Lease::default();
        lease.new_round(100);
        assert_eq!(lease.start(&five, "a"), None);
        lease.acked("b", 1);
        assert_eq!(lease.start(&five, "a"), None, "2 of 5 is no majority");
        lease.acked("c", 1);
        assert_eq!(lease.start(&five, "a"), Some(100));
    }

    #[test]
    fn the_lease_starts_at_the_newest_round_a_majority_acknowledged() {
        let three = members(&["a", "b", "c"]);
        let mut lease = Lease::default();
        lease.new_round(100);
        lease.new_round(200);
        lease.new_round(300);
        lease.acked("b", 1);
        lease.acked("c", 3);
        // a (itself) and c acknowledged round 3: a majority of three.
        assert_eq!(lease.start(&three, "a"), Some(300));
        // An old round acknowledged late never moves the lease back.
        lease.acked("c", 2);
        assert_eq!(lease.start(&three, "a"), Some(300));
    }

    #[test]
    fn acks_of_unknown_or_forgotten_rounds_and_of_non_members_count_for_nothing() {
        let three = members(&["a", "b", "c"]);
        let mut lease = Lease::default();
        for t in 0..(ROUNDS_KEPT as u64 + 5) {
            lease.new_round(t * 10);
        }
        lease.acked("b", 1); // forgotten
        lease.acked("c", 999); // never sent
        lease.acked("x", lease.round); // not a member
        assert_eq!(lease.start(&three, "a"), None);
    }

    #[test]
    fn a_single_node_leases_from_its_latest_round_and_a_transfer_gives_it_up() {
        let one = members(&["a"]);
        let mut lease = Lease::default();
        assert_eq!(lease.start(&one, "a"), None);
        lease.new_round(50);
        assert_eq!(lease.start(&one, "a"), Some(50));
        lease.given_up = true;
        assert_eq!(lease.start(&one, "a"), None);
        // Abandoning the transfer leases again, from the next round only.
        lease.abandon();
        assert_eq!(lease.start(&one, "a"), None);
        lease.new_round(60);
        assert_eq!(lease.start(&one, "a"), Some(60));
    }

    #[test]
    fn after_an_abandoned_transfer_only_rounds_sent_since_count() {
        let three = members(&["a", "b", "c"]);
        let mut lease = Lease::default();
        lease.new_round(10);
        lease.given_up = true;
        lease.new_round(20);
        lease.abandon();
        lease.acked("b", 1);
        lease.acked("b", 2);
        assert_eq!(
            lease.start(&three, "a"),
            None,
            "old rounds count for nothing"
        );
        lease.new_round(30);
        lease.acked("b", 3);
        assert_eq!(lease.start(&three, "a"), Some(30));
    }

    #[test]
    fn a_change_settles_only_with_a_majority_ack_of_a_later_round() {
        let three = members(&["a", "b", "c"]);
        let mut lease = Lease::default();
        assert!(
            !lease.change_settled(&three, "a"),
            "no ack in this term yet"
        );
        lease.new_round(10);
        lease.acked("b", 1);
        assert!(lease.change_settled(&three, "a"));
        lease.last_change_ns = Some(10);
        assert!(
            !lease.change_settled(&three, "a"),
            "by time alone, a round sent at the same instant may predate the change"
        );
        lease.mark_change(10);
        assert!(!lease.change_settled(&three, "a"));
        lease.new_round(10);
        assert!(!lease.change_settled(&three, "a"), "not acknowledged yet");
        lease.acked("b", 2);
        assert!(lease.change_settled(&three, "a"), "by round, at once");
        lease.mark_change(10);
        lease.new_round(20);
        assert!(!lease.change_settled(&three, "a"));
        lease.acked("c", 3);
        assert!(lease.change_settled(&three, "a"));
    }

    #[test]
    fn a_new_term_forgets_acks_but_keeps_counting_rounds() {
        let three = members(&["a", "b", "c"]);
        let mut lease = Lease::default();
        lease.new_round(10);
        lease.acked("b", 1);
        let next = Lease::starting_after(&lease);
        assert_eq!(next.round, 1);
        assert_eq!(next.start(&three, "a"), None);
    }

    #[test]
    fn the_members_acks_sorted_out_follow_every_change_of_membership() {
        // Acks by members, by a non-member, by the leader itself, and a
        // membership that loses and regains a peer between acks: the
        // start read from the sorted-out acks is the one read from all
        // of them, every step of the way (`start_of` also checks itself
        // in test builds).
        let mut view = Versioned::new(members(&["a", "b", "c", "d", "e"]));
        let mut lease = Lease::default();
        let check = |lease: &Lease, view: &Versioned<BTreeSet<NodeId>>| {
            assert_eq!(lease.start_of(view, "a"), lease.start(view, "a"));
        };
        for round in 1..=4u64 {
            lease.new_round(round * 100);
        }
        lease.acked_by("b", 1, &view, "a");
        lease.acked_by("x", 4, &view, "a");
        lease.acked_by("a", 4, &view, "a");
        check(&lease, &view);
        lease.acked_by("c", 2, &view, "a");
        assert_eq!(lease.start_of(&view, "a"), Some(100), "a, b and c: round 1");
        view.edit().remove("b");
        check(&lease, &view);
        assert_eq!(lease.start_of(&view, "a"), None, "a and c of four");
        lease.acked_by("d", 3, &view, "a");
        assert_eq!(lease.start_of(&view, "a"), Some(200), "a, c and d: round 2");
        view.edit().insert("x".into());
        check(&lease, &view);
        lease.acked_by("e", 4, &view, "a");
        assert_eq!(
            lease.start_of(&view, "a"),
            Some(400),
            "x's ack counts once it is a member"
        );
        view.edit().remove("x");
        lease.acked("c", 4);
        check(&lease, &view);
        assert_eq!(lease.start_of(&view, "a"), Some(400), "e and c: round 4");
        lease.abandon();
        check(&lease, &view);
        assert_eq!(lease.start_of(&view, "a"), None);
    }

    #[test]
    fn counted_times_give_the_nth_newest_ack_once_per_peer() {
        let ids: Vec<NodeId> = ["b", "c", "d", "e"].iter().map(|id| (*id).into()).collect();
        let mut counted = Counted::new(0, ids.iter().zip([10, 10, 20, 30]));
        assert_eq!(counted.nth_newest(1), Some(30));
        assert_eq!(counted.nth_newest(2), Some(20));
        assert_eq!(counted.nth_newest(3), Some(10), "two peers at 10");
        assert_eq!(counted.nth_newest(4), Some(10));
        assert_eq!(counted.nth_newest(5), None, "only four peers");
        // An older or equal ack changes nothing; a newer one moves the
        // peer, not adds to it.
        counted.raise("e", 5);
        counted.raise("b", 30);
        assert_eq!(counted.times.values().sum::<usize>(), 4);
        assert_eq!(counted.nth_newest(2), Some(30));
        assert_eq!(counted.nth_newest(4), Some(10));
        counted.raise("c", 40);
        assert_eq!(counted.nth_newest(4), Some(20));
        assert!(
            !counted.times.contains_key(&10),
            "emptied times are dropped"
        );
    }
}
