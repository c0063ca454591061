//! Terms and roles: stale terms, stepping down, heartbeats, check-quorum, bad input.

use super::*;

#[test]
fn stale_terms_are_rejected_with_the_current_term() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    n.deliver(
        "n2",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 5,
            transfer: false,
        },
    );
    let a = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 3,
            transfer: false,
        },
    );
    assert_eq!(
        sent(&a),
        vec![(
            "n3".into(),
            Body::Vote {
                term: 5,
                granted: false
            }
        )]
    );
    let b = n.deliver(
        "n3",
        Body::Heartbeat {
            epoch: 0,
            term: 4,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    assert!(
        matches!(&sent(&b)[..], [(to, Body::HeartbeatAck { term: 5, ok: false, .. })] if to == "n3")
    );
    assert_eq!(n.e.status().leader, None, "a stale leader is not followed");
}

#[test]
fn a_leader_steps_down_on_a_higher_term() {
    for body in [
        // Only the vote request of the leader's own transfer target: any
        // other is refused by a loyal node, which a leader always is (see
        // the next test and tests/transfer.rs).
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
            transfer: true,
        },
        Body::Vote {
            term: 2,
            granted: false,
        },
        Body::HeartbeatAck {
            term: 2,
            ok: false,
            round: 0,
            members: vec![],
            removed: vec![],
            holds: None,
        },
        Body::Heartbeat {
            epoch: 0,
            term: 2,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    ] {
        let (mut n, _) = leader();
        if matches!(body, Body::RequestVote { .. }) {
            ack(&mut n, "n3", 1);
            n.e.transfer_leadership("n3", &mut n.env)
                .expect("n3 was heard from");
            n.e.take_actions();
        }
        let actions = n.deliver("n3", body.clone());
        let s = n.e.status();
        assert_eq!((s.role, s.term), (Role::Follower, 2), "after {body:?}");
        let ev = role_events(&actions);
        assert_eq!(
            ev[0],
            Event::TermChanged { old: 1, new: 2 },
            "after {body:?}"
        );
        assert!(
            matches!(ev[1], Event::BecameFollower { term: 2, .. }),
            "after {body:?}"
        );
        // It stops heartbeating: the heartbeat timer is cancelled.
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::CancelTimer { .. }))
        );
    }
}

#[test]
fn a_candidate_yields_to_a_leader_of_its_own_term() {
    let (mut n, _) = candidate();
    let actions = n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    let s = n.e.status();
    assert_eq!(
        (s.role, s.term, s.leader.as_deref()),
        (Role::Follower, 1, Some("n2"))
    );
    assert_eq!(
        events(&actions),
        vec![
            Event::PeerJoined("n2".into()),
            Event::BecameFollower {
                leader: Some("n2".into()),
                term: 1
            }
        ]
    );
    assert!(matches!(
        &sent(&actions)[..],
        [(
            _,
            Body::HeartbeatAck {
                term: 1,
                ok: true,
                round: 0,
                ..
            }
        )]
    ));
}

#[test]
fn a_candidate_rearms_after_a_failed_or_split_election() {
    let (mut n, timer) = candidate();
    n.deliver(
        "n2",
        Body::Vote {
            term: 1,
            granted: false,
        },
    );
    n.deliver(
        "n3",
        Body::Vote {
            term: 1,
            granted: false,
        },
    );
    assert_eq!(
        n.e.status().role,
        Role::Candidate,
        "lost, waits for its timer"
    );
    let actions = n.fire(timer);
    assert_eq!(n.e.status().term, 2);
    let (_, after) = *timers(&actions).last().expect("re-armed");
    assert!((150 * MS..=300 * MS).contains(&after));
    assert_eq!(sent(&actions).len(), 2, "asks again");
    // The old timer is dead: firing it again changes nothing.
    let stale = n.fire(timer);
    assert_eq!(n.e.status().term, 2);
    assert!(sent(&stale).is_empty());
}

#[test]
fn followers_reset_their_timer_on_heartbeats() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    let first = last_timer(&start);
    let hb = || Body::Heartbeat {
        epoch: 0,
        term: 1,
        round: 0,
        members: vec!["n1".into(), "n2".into(), "n3".into()],
        alive: vec!["n3".into()],
        removed: vec![],
        transfer_to: None,
        generation: 1,
        full: true,
    };
    let actions = n.deliver("n2", hb());
    assert!(actions.contains(&Action::CancelTimer { id: first }));
    assert_eq!(
        n.e.status().alive_peers,
        vec!["n2", "n3"],
        "n3 vouched for by the leader"
    );
    let again = n.deliver("n2", hb());
    assert!(
        !events(&again)
            .iter()
            .any(|e| matches!(e, Event::BecameFollower { .. })),
        "the same leader is not announced twice"
    );
    // The stale first timer does nothing.
    n.fire(first);
    assert_eq!(n.e.status().role, Role::Follower);
}

#[test]
fn another_cluster_is_ignored() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    let foreign = Message {
        cluster_id: "other".into(),
        sender: Standing::default(),
        sender_data_id: data_id_of("n2"),
        recipient_data_id: None,
        body: Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 9,
            transfer: false,
        },
    };
    n.e.on_message("n2", &foreign.encode(), &mut n.env);
    let actions = n.e.take_actions();
    assert!(sent(&actions).is_empty() && events(&actions).is_empty());
    let s = n.e.status();
    assert_eq!((s.term, s.ignored_messages), (0, 1));
}

#[test]
fn garbage_is_counted_and_ignored() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    for bytes in [&[][..], &[1, 2, 3], &[200, 0], &[1; 100]] {
        n.e.on_message("n2", bytes, &mut n.env);
    }
    assert_eq!(n.e.status().ignored_messages, 4);
    assert!(sent(&n.e.take_actions()).is_empty());
}

#[test]
fn a_follower_takes_its_leaders_later_epoch_wholesale_and_speaking_adds_no_one() {
    // (Before epochs, speaking and heartbeats merged peers in: see
    // crate::membership for why only the leader's later epoch counts.)
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    let hb = |epoch, members: &[&str]| Body::Heartbeat {
        epoch,
        term: 1,
        round: 0,
        members: members.iter().map(|m| m.to_string()).collect(),
        alive: vec![],
        removed: vec![],
        transfer_to: None,
        generation: 1,
        full: true,
    };
    n.deliver(
        "n4",
        Body::Join {
            members: vec!["n4".into(), "n5".into()],
        },
    );
    assert_eq!(
        n.e.status().members,
        vec!["n1", "n2", "n3"],
        "speaking adds no one"
    );
    n.deliver("n2", hb(0, &["n1", "n2", "n3"]));
    assert_eq!(n.e.status().members, vec!["n1", "n2", "n3"]);
    let actions = n.deliver("n2", hb(1, &["n1", "n2", "n4", "n5"]));
    let s = n.e.status();
    assert_eq!(
        s.members,
        vec!["n1", "n2", "n4", "n5"],
        "replaced, not merged"
    );
    assert_eq!((s.quorum, s.epoch), (3, 1));
    let saved = persisted(&actions).expect("members persisted");
    assert_eq!((saved.members.len(), saved.epoch), (4, 1));
    // Its view is now the leader's: the ack carries none of it back, and
    // says which lists it holds.
    assert!(matches!(&sent(&actions)[..],
        [(_, Body::HeartbeatAck { members, removed, holds: Some(1), .. })]
            if members.is_empty() && removed.is_empty()));
    // An older epoch changes nothing, and the ack shares what the leader's
    // lists lack: this node's own view.
    let actions = n.deliver("n2", hb(0, &["n1", "n2", "n9"]));
    assert_eq!(n.e.status().members, vec!["n1", "n2", "n4", "n5"]);
    assert!(matches!(&sent(&actions)[..],
        [(_, Body::HeartbeatAck { members, .. })] if members.len() == 4));
}

#[test]
fn invalid_ids_in_messages_never_become_members() {
    let (mut n, _) = Node::start("n1", &["n1", "n2"]);
    n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 1,
            term: 1,
            round: 0,
            members: vec![
                String::new(),
                "a b".into(),
                "ok".into(),
                "n1".into(),
                "n2".into(),
            ],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    assert_eq!(n.e.status().members, vec!["n1", "n2", "ok"]);
}

#[test]
fn a_silent_peer_leaves_but_stays_a_voter() {
    let (mut n, actions) = leader();
    let mut hb = last_timer(&actions);
    n.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 0,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    n.deliver(
        "n3",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 0,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    // n2 keeps answering, n3 goes silent for more than 10 heartbeats.
    let mut left = Vec::new();
    for _ in 0..12 {
        n.env.now += 50 * MS;
        n.deliver(
            "n2",
            Body::HeartbeatAck {
                term: 1,
                ok: true,
                round: 0,
                members: vec![],
                removed: vec![],
                holds: None,
            },
        );
        let actions = n.fire(hb);
        hb = last_timer(&actions);
        left.extend(events(&actions));
    }
    assert_eq!(left, vec![Event::PeerLeft("n3".into())]);
    let s = n.e.status();
    assert_eq!(s.alive_peers, vec!["n2"]);
    assert_eq!(
        (s.members.len(), s.quorum),
        (3, 2),
        "liveness never shrinks the quorum"
    );
    let back = n.deliver(
        "n3",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 0,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    assert_eq!(events(&back), vec![Event::PeerJoined("n3".into())]);
}

#[test]
fn a_leader_cut_off_from_the_majority_steps_down_within_an_election_timeout() {
    let (mut n, actions) = leader();
    let mut hb = last_timer(&actions);
    let mut elapsed = 0;
    while n.e.status().role == Role::Leader {
        assert!(
            elapsed <= 200 * MS,
            "still leading after {elapsed} ns of silence"
        );
        n.env.now += 50 * MS;
        elapsed += 50 * MS;
        let actions = n.fire(hb);
        if let Some((id, _)) = timers(&actions).last() {
            hb = *id;
        }
    }
    let s = n.e.status();
    assert_eq!((s.role, s.term, s.leader), (Role::Follower, 1, None));
    assert!(
        elapsed >= 150 * MS,
        "judged before a full window: {elapsed}"
    );
}

#[test]
fn a_leader_hearing_from_a_majority_keeps_leading() {
    let (mut n, actions) = leader();
    let mut hb = last_timer(&actions);
    for _ in 0..40 {
        n.env.now += 50 * MS;
        n.deliver(
            "n3",
            Body::HeartbeatAck {
                term: 1,
                ok: true,
                round: 0,
                members: vec![],
                removed: vec![],
                holds: None,
            },
        );
        let actions = n.fire(hb);
        hb = last_timer(&actions);
    }
    assert_eq!(n.e.status().role, Role::Leader);
}

#[test]
fn step_down_hands_over_and_holds_off() {
    let (mut n, _) = leader();
    n.e.step_down(&mut n.env);
    let actions = n.e.take_actions();
    let s = n.e.status();
    assert_eq!((s.role, s.term, s.leader), (Role::Follower, 1, None));
    let (_, after) = *timers(&actions).last().expect("timer");
    assert!(
        after >= 450 * MS,
        "waits beyond any peer's timeout: {after}"
    );
}

#[test]
fn two_leaders_of_one_term_both_step_down() {
    let (mut n, _) = leader();
    n.deliver(
        "x",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 0,
            members: vec!["x".into()],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    assert_eq!(n.e.status().role, Role::Follower);
    assert_eq!(n.e.status().leader, None);
}

#[test]
fn bad_options_are_refused_by_start() {
    let mut o = options("n1", &[]);
    o.timings.heartbeat_interval_ms = 100;
    let err = Election::start(o, None, &mut TestEnv::new(1)).expect_err("refused");
    assert_eq!(err.field, "timings.heartbeat-interval-ms");
}
