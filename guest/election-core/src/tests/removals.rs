//! Removals that never settled (see [`crate::membership`]): a later view
//! undoes them, a stale view cannot remove a leader, and a node outside a
//! view is pointed to the leader that can admit it. Each test is a chaos
//! seed of the first 100,000-seed run with joins and live removals.

use alloc::string::{String, ToString};

use super::*;

fn heartbeat(term: u64, epoch: u64, members: &[&str], removed: &[&str]) -> Body {
    Body::Heartbeat {
        term,
        round: 1,
        epoch,
        members: members.iter().map(|m| m.to_string()).collect(),
        alive: vec![],
        removed: removed.iter().map(|m| m.to_string()).collect(),
        transfer_to: None,
        generation: 1,
        full: true,
    }
}

fn removed_of(n: &Node) -> Vec<String> {
    n.e.persisted_state().removed
}

/// Seed 54943: n3 removed n1 while leading term 1, but the removal never
/// settled and n1 went on to lead term 3. n3, restarted with its
/// tombstone, told the leader it was removed, and the leader quit: with a
/// second removal on the other side, no majority was left. A tombstone of
/// the receiver counts only from a view at least as recent as its own,
/// and never from an ack.
#[test]
fn a_stale_view_cannot_tell_a_leader_it_was_removed() {
    let (mut l, _) = leader();
    l.env.now = 10 * MS;
    // l leads term 1: its view is confirmed at (1, 0).
    l.deliver(
        "n3",
        Body::Removed {
            removed: vec!["n1".into()],
            epoch: 1,
            epoch_term: 0,
        },
    );
    l.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 1,
            members: vec![],
            removed: vec!["n1".into()],
            holds: None,
        },
    );
    let s = l.e.status();
    assert_eq!(s.role, Role::Leader, "{s:?}");
    assert!(removed_of(&l).is_empty());
    // From a view as recent as its own, the removal counts.
    l.deliver(
        "n3",
        Body::Removed {
            removed: vec!["n1".into()],
            epoch: 0,
            epoch_term: 1,
        },
    );
    assert_ne!(l.e.status().role, Role::Leader);
    assert_eq!(removed_of(&l), vec!["n1".to_string()]);
}

/// The other half of seed 54943: a later leader's view that lists a node
/// undoes a tombstone of it (that removal never settled: a settled one is
/// in every later view), and a tombstoned node that asks for a vote from
/// a later view is heard again instead of ignored for good.
#[test]
fn a_later_view_undoes_an_unsettled_removal() {
    let ids = ["n1", "n2", "n3"];
    // n2 follows n1 of term 1, which removed n3 (epoch 1).
    let (mut f, _) = Node::start("n2", &ids);
    f.deliver("n1", heartbeat(1, 1, &["n1", "n2"], &["n3"]));
    assert_eq!(removed_of(&f), vec!["n3".to_string()]);
    // The leader of term 2 never heard of it: its view lists n3.
    f.deliver("n1", heartbeat(2, 1, &["n1", "n2", "n3"], &[]));
    assert!(removed_of(&f).is_empty());
    assert_eq!(f.e.status().members, vec!["n1", "n2", "n3"]);

    // Again, but n3 itself speaks first, standing in a later view.
    let (mut g, _) = Node::start("n2", &ids);
    g.deliver("n1", heartbeat(1, 1, &["n1", "n2"], &["n3"]));
    g.env.now = 10_000 * MS;
    let a = g.deliver(
        "n3",
        Body::RequestVote {
            term: 4,
            transfer: false,
            epoch: 1,
            epoch_term: 3,
        },
    );
    assert!(removed_of(&g).is_empty());
    assert_eq!(
        sent(&a),
        vec![(
            "n3".to_string(),
            Body::Vote {
                term: 4,
                granted: true
            }
        )]
    );
}

/// Seed 16423: without pre-votes, the nodes of an older view kept raising
/// the term; the one node of the newer view adopted each term (rightly),
/// but also restarted its election timer each time, so it never stood and
/// no one ever won. Adopting a refused candidate's term now leaves a
/// follower's running timer alone, as Raft does.
#[test]
fn adopting_a_stale_candidates_term_keeps_the_running_timer() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    n.deliver("n2", heartbeat(1, 1, &["n1", "n2", "n3"], &[]));
    n.env.now = 10_000 * MS;
    let stale = |term| Body::RequestVote {
        term,
        transfer: false,
        epoch: 0,
        epoch_term: 0,
    };
    // Its leader long silent, it first becomes a follower of no one...
    n.deliver("n3", stale(5));
    assert_eq!((n.e.status().term, n.e.status().leader), (5, None));
    // ...and then keeps its timer through every further stale candidacy.
    let a = n.deliver("n3", stale(6));
    assert_eq!(n.e.status().term, 6);
    assert!(timers(&a).is_empty(), "re-armed: {:?}", timers(&a));
    assert_eq!(
        sent(&a),
        vec![(
            "n3".to_string(),
            Body::Vote {
                term: 6,
                granted: false
            }
        )]
    );
}

/// Seed 25322: a joiner admitted in an epoch that the next leader
/// overwrote believed itself a member and only ever spoke to the members
/// of that view — never to the new leader, which alone could admit it. A
/// follower that hears from a voter outside its view names its leader.
#[test]
fn a_follower_points_a_voter_outside_its_view_to_its_leader() {
    let (mut f, _) = Node::start("n2", &["n1", "n2", "n3"]);
    f.deliver("n1", heartbeat(2, 1, &["n1", "n2", "n3"], &[]));
    let a = f.deliver("j9", Body::Identify { ask: true });
    assert!(
        sent(&a).contains(&(
            "j9".to_string(),
            Body::Welcome {
                term: 2,
                leader: Some("n1".into()),
                members: vec!["n1".into(), "n2".into(), "n3".into()],
            }
        )),
        "{:?}",
        sent(&a)
    );
    assert_eq!(f.e.status().members, vec!["n1", "n2", "n3"]);
}
