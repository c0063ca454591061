//! Heartbeats carry the leader's lists only when they changed (see
//! [`crate::lists`]): what a leader leaves out, what a follower fills in,
//! and how both recover when what one side kept is gone.

use super::*;
use crate::tests::cluster::Cluster;

/// The heartbeats in `actions`, by recipient: (full, generation).
fn heartbeats(actions: &[Action]) -> Vec<(String, bool, u64)> {
    sent(actions)
        .into_iter()
        .filter_map(|(to, body)| match body {
            Body::Heartbeat {
                full, generation, ..
            } => Some((to, full, generation)),
            _ => None,
        })
        .collect()
}

fn next_round(n: &mut Node) -> Vec<(String, bool, u64)> {
    n.env.now += 50 * MS;
    let timer =
        n.e.heartbeat_timer_id()
            .expect("a leader's heartbeat timer");
    heartbeats(&n.fire(timer))
}

#[test]
fn a_leader_leaves_the_lists_out_only_for_peers_that_hold_them() {
    let (mut n, elected) = leader();
    // The first round goes out in full to everyone.
    let first = heartbeats(&elected);
    assert!(
        !first.is_empty() && first.iter().all(|(_, full, _)| *full),
        "{first:?}"
    );
    // The acks make n2 and n3 alive: the lists changed, a new generation.
    ack_holding(&mut n, "n2", 1, Some(first[0].2));
    ack_holding(&mut n, "n3", 1, Some(first[0].2));
    let round = next_round(&mut n);
    let generation = round[0].2;
    assert!(
        generation > first[0].2 && round.iter().all(|(_, full, _)| *full),
        "{round:?}"
    );
    ack_holding(&mut n, "n2", 2, Some(generation));
    ack_holding(&mut n, "n3", 2, None);
    let round = next_round(&mut n);
    assert!(
        round.contains(&("n2".into(), false, generation)),
        "{round:?}"
    );
    assert!(
        round.contains(&("n3".into(), true, generation)),
        "n3 could not resolve them: {round:?}"
    );
    // A change of view is a new generation, in full to everyone until
    // each holds it.
    ack_holding(&mut n, "n3", 3, Some(generation));
    n.e.leave("n3", &mut n.env).expect("n3 may be removed");
    let removal = heartbeats(&n.e.take_actions());
    assert!(
        removal
            .iter()
            .all(|(_, full, g)| *full && *g == generation + 1),
        "{removal:?}"
    );
    let round = next_round(&mut n);
    assert!(
        round.contains(&("n2".into(), true, generation + 1)),
        "{round:?}"
    );
}

#[test]
fn a_follower_handles_a_heartbeat_without_lists_as_the_one_it_kept() {
    let (mut n, _) = Node::start("n2", &["n1", "n2", "n3"]);
    let hb = |round, members: Vec<&str>, alive: Vec<&str>, generation, full| Body::Heartbeat {
        term: 1,
        round,
        epoch: 1,
        members: members.into_iter().map(String::from).collect(),
        alive: alive.into_iter().map(String::from).collect(),
        removed: vec![],
        transfer_to: None,
        generation,
        full,
    };
    let acks = |actions: &[Action]| -> Vec<Option<u64>> {
        sent(actions)
            .into_iter()
            .filter_map(|(_, b)| match b {
                Body::HeartbeatAck { holds, .. } => Some(holds),
                _ => None,
            })
            .collect()
    };
    let view = vec!["n1", "n2", "n3", "n4"];
    let a = n.deliver("n1", hb(1, view.clone(), vec!["n1", "n3"], 1, true));
    assert_eq!(acks(&a), vec![Some(1)]);
    assert_eq!(n.e.status().members, view);
    // Without lists, generation 1: the kept lists, liveness included.
    n.env.now += 2_000 * MS;
    let a = n.deliver("n1", hb(2, vec![], vec![], 1, false));
    assert_eq!(acks(&a), vec![Some(1)]);
    assert_eq!(n.e.status().members, view);
    assert!(
        n.e.status().alive_peers.contains(&"n3".to_string()),
        "refreshed from the kept list"
    );
    // A generation it never got: followed, nothing taken, and the ack
    // asks for the lists.
    let a = n.deliver("n1", hb(3, vec![], vec![], 2, false));
    assert_eq!(acks(&a), vec![None]);
    assert_eq!(n.e.status().members, view);
    assert_eq!(n.e.status().leader.as_deref(), Some("n1"));
    // Another leader's lists are never filled in with n1's.
    let mut other = hb(1, vec![], vec![], 1, false);
    if let Body::Heartbeat { term, .. } = &mut other {
        *term = 2;
    }
    let a = n.deliver("n3", other);
    assert_eq!(acks(&a), vec![None]);
    assert_eq!(n.e.status().members, view, "no view taken from nothing");
}

/// Drops every heartbeat that carries the lists, at random, and loses
/// everything a follower kept on restarts: the cluster still agrees on
/// one view, and heartbeats shrink once every peer holds the lists.
#[test]
fn lost_full_heartbeats_and_restarts_cost_only_a_round() {
    fn drop_half_the_full_heartbeats(_: &str, to: &str, body: &Body) -> bool {
        matches!(body, Body::Heartbeat { full: true, round, .. } if (round + to.len() as u64).is_multiple_of(2))
    }
    let ids = ["n1", "n2", "n3", "n4", "n5"];
    let mut c = Cluster::new(ids.iter().map(|id| options(id, &ids)).collect(), 3);
    c.drop = drop_half_the_full_heartbeats;
    c.run_for(3_000 * MS);
    let (leader, term) = c.leader().expect("a leader despite the drops");
    c.drop = |_, _, _| false;
    let follower = ids.iter().find(|id| **id != leader).expect("a follower");
    c.crash(follower);
    c.run_for(100 * MS);
    let saved = c.saved.get(*follower).cloned();
    c.restart(follower, saved);
    c.run_for(1_000 * MS);
    assert_eq!(
        c.leader(),
        Some((leader.clone(), term)),
        "the restart cost no election"
    );
    for id in ids {
        assert_eq!(
            c.status(id).members.len(),
            5,
            "{id}: {:?}",
            c.status(id).members
        );
    }
    c.with(&leader, |e, env| {
        let timer = e.heartbeat_timer_id().expect("leads");
        e.on_timer(timer, env);
        let round = heartbeats(&e.take_actions());
        assert_eq!(round.len(), 4);
        assert!(
            round.iter().all(|(_, full, _)| !full),
            "every peer holds the lists: {round:?}"
        );
    });
    assert!(c.split_terms().is_empty() && c.overlaps.is_empty());
}
