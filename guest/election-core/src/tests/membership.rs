//! Item 4: only the bootstrap config or the leader this node follows can
//! put a node in its voting membership (see [`crate::membership`]).

use alloc::vec;
use alloc::vec::Vec;

use super::cluster::Cluster;
use super::*;

const IDS: [&str; 3] = ["n1", "n2", "n3"];

#[test]
fn a_joiners_phantom_peers_cannot_raise_anyones_quorum() {
    for seed in 0..5 {
        let mut all: Vec<Options> = IDS.iter().map(|id| pre_vote_options(id, &IDS)).collect();
        // The joiner's peer list was mistyped: two ids that no node has.
        all.push(pre_vote_options("j", &["j", "ghost1", "ghost2"]));
        let mut c = Cluster::new(all, seed);
        c.run_for(2_000 * MS);
        c.with("j", |e, env| e.join("n1", env));
        c.run_for(2_000 * MS);
        for id in IDS {
            let s = c.status(id);
            assert!(
                !s.members.iter().any(|m| m.starts_with("ghost")),
                "seed {seed}: {id} has {:?}",
                s.members
            );
            assert_eq!(s.members, vec!["j", "n1", "n2", "n3"], "seed {seed}: {id}");
            assert_eq!(s.quorum, 3, "seed {seed}: {id}");
        }
        // The cluster keeps electing: three of its four members remain.
        let (leader, term) = c.leader().expect("a leader");
        c.crash(&leader);
        c.run_for(3_000 * MS);
        let (_, new_term) = c
            .leader()
            .unwrap_or_else(|| panic!("seed {seed}: no leader"));
        assert!(new_term > term, "seed {seed}");
        assert!(c.overlaps.is_empty(), "seed {seed}: {:?}", c.overlaps);
    }
}

#[test]
fn join_ack_and_welcome_lists_add_no_one_who_has_not_spoken() {
    let (mut l, _) = leader();
    // Acknowledged by a majority, the leader may admit.
    l.env.now = 10 * MS;
    ack(&mut l, "n2", 1);
    l.deliver(
        "j",
        Body::Join {
            members: vec!["j".into(), "x".into(), "y".into()],
        },
    );
    assert_eq!(l.e.status().members, vec!["j", "n1", "n2", "n3"]);
    l.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 1,
            members: vec!["z".into()],
            removed: vec![],
            holds: None,
        },
    );
    assert_eq!(l.e.status().members, vec!["j", "n1", "n2", "n3"]);
    let (mut j, _) = Node::start("j", &[]);
    j.e.join("a", &mut j.env);
    j.e.take_actions();
    j.deliver(
        "a",
        Body::Welcome {
            term: 2,
            leader: None,
            members: vec!["a".into(), "b".into(), "c".into()],
        },
    );
    // Not even the welcomer: only a leader's heartbeat changes j's view
    // (a joiner that never had a leader is in none, not even its own).
    assert!(j.e.status().members.is_empty(), "{:?}", j.e.status());
}

/// The convergence that the host's `an_empty_bootstrap_plus_join_forms_a_
/// working_cluster` checks, natively: joins through a follower still bring
/// everyone into one membership.
#[test]
fn an_empty_bootstrap_plus_joins_still_converges() {
    for seed in 0..10 {
        let mut c = Cluster::new(
            IDS.iter().map(|id| pre_vote_options(id, &[])).collect(),
            seed,
        );
        c.run_for(1_000 * MS);
        assert_eq!(c.leaders().len(), 3, "seed {seed}");
        c.with("n2", |e, env| e.join("n1", env));
        c.with("n3", |e, env| e.join("n2", env));
        c.run_for(2_000 * MS);
        for id in IDS {
            let s = c.status(id);
            assert_eq!(s.members, vec!["n1", "n2", "n3"], "seed {seed}: {id}");
            assert_eq!(s.quorum, 2, "seed {seed}: {id}");
        }
        let (leader, term) = c.leader().expect("a leader");
        c.crash(&leader);
        c.run_for(3_000 * MS);
        let (_, new_term) = c
            .leader()
            .unwrap_or_else(|| panic!("seed {seed}: no leader"));
        assert!(new_term > term, "seed {seed}");
    }
}
