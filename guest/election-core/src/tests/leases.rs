//! Leases and the loyalty they rest on.

use super::*;

#[test]
fn a_follower_that_heard_its_leader_lately_neither_votes_nor_adopts_the_term() {
    let (mut n, _) = Node::start("n2", &["n1", "n2", "n3"]);
    n.env.now = 1_000 * MS;
    heartbeat_from(&mut n, "n1", 1, 1);
    n.env.now += 100 * MS; // within the 150 ms minimum timeout
    let refused = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
            transfer: false,
        },
    );
    assert_eq!(vote_of(&refused), Some((1, false)));
    assert_eq!(n.e.status().term, 1, "the term is not adopted");
    // Nothing but n3's data id, heard for the first time, is saved.
    assert!(persisted(&refused).is_none_or(|s| s.term == 1 && s.voted_for.is_none()));
    // Once the window has passed, the leader may be gone: the vote is free.
    n.env.now += 60 * MS;
    let granted = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
            transfer: false,
        },
    );
    assert_eq!(vote_of(&granted), Some((2, true)));
}

#[test]
fn a_restarted_node_stays_loyal_for_one_window_and_a_dead_leader_releases_it() {
    let state = PersistedState {
        term: 3,
        voted_for: Some("n1".into()),
        members: vec!["n1".into(), "n2".into(), "n3".into()],
        removed: vec![],
        ..PersistedState::default()
    };
    let (mut n, _) = Node::restart("n2", &["n1", "n2", "n3"], Some(state));
    // It may have acknowledged n1's heartbeat just before going down.
    let refused = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 4,
            transfer: false,
        },
    );
    assert_eq!(vote_of(&refused), Some((3, false)));
    // The host reports the leader's process dead: loyalty ends at once.
    heartbeat_from(&mut n, "n1", 3, 1);
    n.e.peer_unreachable("n1", &mut n.env);
    n.e.take_actions();
    let granted = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 4,
            transfer: false,
        },
    );
    assert_eq!(vote_of(&granted), Some((4, true)));
}

#[test]
fn the_lease_runs_from_the_send_time_of_the_newest_majority_acknowledged_round() {
    let (mut n, _) = leader(); // sent round 1 at t = 0 on winning
    assert_eq!(n.e.lease_expires_ns(), None, "nobody acknowledged yet");
    n.env.now = 5 * MS;
    n.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 1,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    // Round 1 left at 0: the lease is 150 ms less the 15 ms drift margin.
    assert_eq!(n.e.lease_expires_ns(), Some(135 * MS));
    // The next round, sent at 50 ms and acknowledged, extends it.
    n.env.now = 50 * MS;
    let timer =
        n.e.heartbeat_timer_id()
            .expect("a leader has a heartbeat timer");
    n.fire(timer);
    n.env.now = 52 * MS;
    n.deliver(
        "n3",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 2,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    assert_eq!(n.e.lease_expires_ns(), Some(185 * MS));
    // A refusing ack (stale term on the follower's side) extends nothing,
    // and a leader that steps down holds no lease.
    n.e.step_down(&mut n.env);
    assert_eq!(n.e.lease_expires_ns(), None);
}
