//! Item: data ids across processes, builds and roles — a second process
//! with a running node's id, states of older builds and hand-overs,
//! observers and failover with identities, and removing a node that lost
//! its state (see [`crate::identity`]).

use alloc::collections::BTreeSet;
use alloc::string::ToString;
use alloc::vec;

use super::cluster::Cluster;
use super::identity::{IDS, deliver_as, logs, request_vote};
use super::*;
use crate::handover::{Handover, HandoverWithLease, HandoverWithTransfer};
use crate::types::LogLevel;

#[test]
fn a_second_process_with_the_same_id_is_refused_by_peers_that_recorded_the_first() {
    let (mut n, _) = Node::start("n2", &IDS);
    let me = n.e.status().data_id;
    // The first n1 is heard, and recorded.
    deliver_as(&mut n, "n1", 100, Some(me), Body::Identify { ask: false });
    // A second process runs as n1, with a data id of its own: its vote
    // requests count for nothing, and it is told which n1 is recorded.
    n.env.now = 1_000 * MS;
    let a = deliver_as(&mut n, "n1", 200, Some(me), request_vote(1));
    assert_eq!(n.e.status().term, 0);
    assert_eq!(n.e.status().voted_for, None);
    let warnings = logs(&a, LogLevel::Warn);
    assert_eq!(warnings.len(), 1, "{a:?}");
    assert!(
        warnings[0].contains("n1")
            && warnings[0].contains("0x00000000000000c8")
            && warnings[0].contains("0x0000000000000064"),
        "names the node and both ids: {warnings:?}"
    );
    let answer = a
        .iter()
        .find_map(|a| match a {
            Action::Send { to, payload } => Some((to.clone(), Message::decode(payload))),
            _ => None,
        })
        .expect("an answer");
    assert_eq!(answer.0, "n1");
    let answer = answer.1.expect("decodes");
    assert_eq!(answer.recipient_data_id, Some(100), "names the recorded n1");
    assert_eq!(answer.body, Body::Identify { ask: false });
    // More of the same: no more warnings, and answers at most once per
    // maximum election timeout.
    n.env.now += 10 * MS;
    let a = deliver_as(
        &mut n,
        "n1",
        200,
        Some(me),
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 1,
        },
    );
    assert!(
        logs(&a, LogLevel::Warn).is_empty() && sent_all(&a).is_empty(),
        "{a:?}"
    );
    n.env.now += 300 * MS;
    let a = deliver_as(
        &mut n,
        "n1",
        200,
        Some(me),
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 1,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    assert_eq!(sent_all(&a).len(), 1, "answered again: {a:?}");
    assert_eq!(
        n.e.status().leader,
        None,
        "its heartbeats count for nothing"
    );
    assert_eq!(n.e.status().term, 0);
    // The recorded n1 still counts.
    let a = deliver_as(&mut n, "n1", 100, Some(me), request_vote(1));
    assert_eq!(vote_of(&a), Some((1, true)));
}

#[test]
fn a_state_of_an_older_build_keeps_its_vote_and_draws_a_data_id() {
    let legacy = PersistedState {
        term: 3,
        voted_for: Some("n2".into()),
        members: IDS.iter().map(|s| s.to_string()).collect(),
        ..PersistedState::default()
    };
    let (mut n, start) = Node::unconfirmed(options("n1", &IDS), Some(legacy), 5);
    let s = n.e.persisted_state();
    assert!(s.data_id != 0);
    assert_eq!((s.term, s.voted_for.as_deref()), (3, Some("n2")));
    let first_send = start
        .iter()
        .position(|a| matches!(a, Action::Send { .. }))
        .expect("asks");
    assert_eq!(persisted(&start[..first_send]), Some(s.clone()));
    // Once confirmed it still remembers whom it voted for in term 3.
    n.e.assume_confirmed();
    let a = n.deliver("n3", request_vote(3));
    assert_eq!(vote_of(&a), Some((3, false)));
}

#[test]
fn the_handover_carries_the_identity_and_older_formats_draw_one() {
    let (mut n, _) = Node::start("n1", &IDS);
    let me = n.e.status().data_id;
    deliver_as(&mut n, "n2", 20, Some(me), Body::Identify { ask: false });
    let before = n.e.persisted_state();
    let mut env = TestEnv::new(99);
    let mut next = Election::import_state(options("n1", &IDS), &n.e.export_state(), &mut env)
        .expect("imports");
    assert_eq!(next.persisted_state(), before, "format 4 carries it all");
    assert!(
        next.take_actions()
            .iter()
            .all(|a| !matches!(a, Action::Send { .. } | Action::Persist(_)))
    );
    // A format 3 state (no data ids) draws one and saves it at once.
    let v3 = HandoverWithTransfer {
        v2: HandoverWithLease {
            core: Handover {
                node_id: "n1".into(),
                cluster_id: "test".into(),
                term: 4,
                voted_for: Some("n3".into()),
                members: IDS.iter().map(|s| s.to_string()).collect(),
                role: 0,
                leader: None,
                granted: BTreeSet::new(),
                rejected: BTreeSet::new(),
                pre_campaign: false,
                leader_heard_ns: None,
                leader_since_ns: 0,
                liveness: Default::default(),
                election_timer: Some(1),
                heartbeat_timer: None,
                next_timer_id: 2,
                ignored_messages: 0,
            },
            lease: Default::default(),
            removed: BTreeSet::new(),
        },
        handing: None,
        named: Default::default(),
    };
    let mut bytes = vec![3u8];
    bytes.extend(postcard::to_allocvec(&v3).expect("encodes"));
    let mut old = Election::import_state(options("n1", &IDS), &bytes, &mut env).expect("imports");
    let actions = old.take_actions();
    let s = old.status();
    assert!(s.data_id != 0 && !s.confirmed && !s.abstaining);
    assert_eq!((s.term, s.voted_for.as_deref()), (4, Some("n3")));
    let first_send = actions
        .iter()
        .position(|a| matches!(a, Action::Send { .. }))
        .expect("asks for confirmations");
    assert_eq!(
        persisted(&actions[..first_send]).map(|p| p.data_id),
        Some(s.data_id)
    );
}

#[test]
fn an_observer_that_lost_its_disk_still_follows() {
    let (mut n, _) = Node::start("n1", &IDS);
    let me = n.e.status().data_id;
    let observer = |voter| Standing { voter, priority: 0 };
    let from_o = |n: &mut Node, sender: u64| {
        let payload = Message {
            cluster_id: "test".into(),
            sender: observer(false),
            sender_data_id: sender,
            recipient_data_id: Some(me),
            body: Body::Join { members: vec![] },
        }
        .encode();
        n.e.on_message("o", &payload, &mut n.env);
        n.e.take_actions()
    };
    from_o(&mut n, 1);
    // Back with no disk: its Join is still welcomed, without a warning.
    let a = from_o(&mut n, 2);
    assert!(logs(&a, LogLevel::Warn).is_empty(), "{a:?}");
    assert!(
        sent(&a)
            .iter()
            .any(|(to, b)| to == "o" && matches!(b, Body::Welcome { .. }))
    );
    // As a voter with that new id it would not count.
    let payload = Message {
        cluster_id: "test".into(),
        sender: observer(true),
        sender_data_id: 2,
        recipient_data_id: Some(me),
        body: request_vote(1),
    }
    .encode();
    n.e.on_message("o", &payload, &mut n.env);
    assert_eq!(n.e.status().voted_for, None);
}

/// The time from a leader's death (reported by the host to both
/// survivors) to the next leader, worst and mean over seeds.
fn failover_ns(seeds: u64) -> (u64, u64) {
    let (mut worst, mut sum) = (0, 0);
    for seed in 0..seeds {
        let mut c = Cluster::new(
            IDS.iter().map(|id| pre_vote_options(id, &IDS)).collect(),
            seed,
        );
        c.run_for(1_000 * MS);
        let (dead, term) = c.leader().expect("a leader");
        c.crash(&dead);
        let since = c.now;
        for id in IDS.iter().filter(|id| **id != dead) {
            c.with(id, |e, env| e.peer_unreachable(&dead, env));
        }
        loop {
            c.deliver_all();
            if c.leader().is_some_and(|(_, t)| t > term) {
                break;
            }
            c.run_for(MS / 10);
            assert!(c.now - since < 2_000 * MS, "seed {seed}: no new leader");
        }
        let ns = c.now - since;
        worst = worst.max(ns);
        sum += ns;
    }
    (worst, sum / seeds)
}

#[test]
fn fast_failover_is_no_slower() {
    let (worst, mean) = failover_ns(200);
    std::println!(
        "fast failover, 3 nodes, pre-vote: new leader {} us after the death on average, {} us at worst",
        mean / 1_000,
        worst / 1_000
    );
    // The first in line waits at most half a 10 ms slot.
    assert!(worst <= 5 * MS + MS / 10, "{} us", worst / 1_000);
}

/// The cure the error log names: `leave` on the leader, which works while
/// the abstaining node still runs (its messages count for nothing, so it
/// looks silent), and the cluster goes on with one member fewer.
#[test]
fn an_abstaining_node_is_removed_with_leave_on_the_leader() {
    for seed in 0..10 {
        let mut c = Cluster::new(
            IDS.iter().map(|id| pre_vote_options(id, &IDS)).collect(),
            seed,
        );
        c.run_for(1_000 * MS);
        let (leader, term) = c.leader().expect("a leader");
        let lost = IDS
            .iter()
            .find(|id| **id != leader)
            .expect("a follower")
            .to_string();
        c.restart(&lost, None);
        c.run_for(1_000 * MS);
        assert!(c.status(&lost).abstaining, "seed {seed}");
        assert_eq!(c.leader(), Some((leader.clone(), term)), "seed {seed}");
        c.with(&leader, |e, env| e.leave(&lost, env))
            .expect("removable while it runs");
        c.run_for(1_000 * MS);
        assert_eq!(c.status(&leader).members.len(), 2, "seed {seed}");
        assert!(!c.status(&lost).members.contains(&lost), "it knows it left");
        assert_eq!(c.leader(), Some((leader.clone(), term)), "seed {seed}");
        assert!(c.double_votes.is_empty() && c.split_terms().is_empty());
    }
}
