//! Elections: timers, candidacies, votes and their durability.

use super::*;

#[test]
fn starts_as_follower_with_a_randomized_timer_in_range() {
    let (n, actions) = Node::start("n1", &["n1", "n2", "n3"]);
    let s = n.e.status();
    assert_eq!((s.role, s.term, s.leader), (Role::Follower, 0, None));
    assert_eq!(s.quorum, 2);
    let (_, after) = timers(&actions)[0];
    assert!((150 * MS..=300 * MS).contains(&after), "{after}");
}

#[test]
fn election_timeouts_are_drawn_continuously_from_min_to_max() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    let mut id = last_timer(&start);
    let mut draws = Vec::new();
    for _ in 0..200 {
        let actions = n.fire(id);
        let (next, after) = *timers(&actions).last().expect("re-armed");
        draws.push(after);
        id = next;
    }
    assert!(draws.iter().all(|d| (150 * MS..=300 * MS).contains(d)));
    // Not ticks: almost no draw falls on a whole millisecond.
    let whole_ms = draws.iter().filter(|d| *d % MS == 0).count();
    assert!(
        whole_ms <= 2,
        "{whole_ms} of 200 draws on whole milliseconds"
    );
    // And they spread over the range.
    let low = draws.iter().filter(|d| **d < 225 * MS).count();
    assert!((60..=140).contains(&low), "{low} of 200 in the lower half");
}

#[test]
fn events_never_get_ahead_of_durable_state() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    for actions in [
        n.fire(last_timer(&start)),
        n.deliver(
            "n2",
            Body::RequestVote {
                epoch_term: NEWEST_VIEW,
                epoch: 0,
                term: 5,
                transfer: false,
            },
        ),
        n.deliver(
            "n3",
            Body::Heartbeat {
                epoch: 0,
                term: 7,
                round: 0,
                members: vec![],
                alive: vec![],
                removed: vec![],
                transfer_to: None,
                generation: 1,
                full: true,
            },
        ),
    ] {
        let term_event = actions
            .iter()
            .position(|a| matches!(a, Action::Emit(Event::TermChanged { .. })))
            .expect("term changed");
        let persist = actions
            .iter()
            .position(|a| matches!(a, Action::Persist(_)))
            .expect("persisted");
        assert!(persist < term_event, "{actions:?}");
    }
}

#[test]
fn candidacy_bumps_term_votes_for_self_and_persists_before_asking() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    let actions = n.fire(last_timer(&start));
    assert_eq!(
        events(&actions),
        vec![Event::TermChanged { old: 0, new: 1 }],
        "term-changed is emitted for the node's own candidacy"
    );
    let persist_at = actions
        .iter()
        .position(|a| matches!(a, Action::Persist(_)))
        .expect("persists its vote");
    let first_send = actions
        .iter()
        .position(|a| matches!(a, Action::Send { .. }))
        .expect("asks for votes");
    assert!(
        persist_at < first_send,
        "vote must be durable before any send"
    );
    let state = persisted(&actions).expect("persisted");
    assert_eq!((state.term, state.voted_for.as_deref()), (1, Some("n1")));
    let asked: Vec<_> = sent(&actions).into_iter().map(|(to, _)| to).collect();
    assert_eq!(asked, vec!["n2", "n3"]);
    assert!(sent(&actions).iter().all(|(_, b)| matches!(
        b,
        Body::RequestVote {
            epoch: 0,
            term: 1,
            transfer: false,
            ..
        }
    )));
}

#[test]
fn wins_with_a_majority_and_heartbeats_at_once() {
    let (n, actions) = leader();
    assert_eq!(role_events(&actions), vec![Event::BecameLeader(1)]);
    let hb: Vec<_> = sent(&actions).into_iter().map(|(to, _)| to).collect();
    assert_eq!(hb, vec!["n2", "n3"]);
    let (_, after) = *timers(&actions).last().expect("heartbeat timer");
    assert_eq!(after, 50 * MS);
    assert_eq!(n.e.status().leader.as_deref(), Some("n1"));
}

#[test]
fn quorum_needs_three_of_four() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3", "n4"]);
    n.fire(last_timer(&start));
    n.deliver(
        "n2",
        Body::Vote {
            term: 1,
            granted: true,
        },
    );
    assert_eq!(
        n.e.status().role,
        Role::Candidate,
        "2 of 4 is not a majority"
    );
    n.deliver(
        "n3",
        Body::Vote {
            term: 1,
            granted: true,
        },
    );
    assert_eq!(n.e.status().role, Role::Leader);
}

#[test]
fn duplicate_votes_count_once() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3", "n4", "n5"]);
    n.fire(last_timer(&start));
    for _ in 0..3 {
        n.deliver(
            "n2",
            Body::Vote {
                term: 1,
                granted: true,
            },
        );
    }
    assert_eq!(n.e.status().role, Role::Candidate);
}

#[test]
fn a_node_knowing_only_itself_of_three_never_elects_itself() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    let mut id = last_timer(&start);
    for _ in 0..100 {
        let actions = n.fire(id);
        assert!(
            !events(&actions)
                .iter()
                .any(|e| matches!(e, Event::BecameLeader(_)))
        );
        id = last_timer(&actions);
    }
    assert_eq!(n.e.status().role, Role::Candidate);
}

#[test]
fn a_lone_node_with_empty_bootstrap_leads_itself() {
    let (mut n, start) = Node::start("solo", &[]);
    let actions = n.fire(last_timer(&start));
    assert_eq!(
        events(&actions),
        vec![
            Event::TermChanged { old: 0, new: 1 },
            Event::BecameLeader(1)
        ]
    );
}

#[test]
fn one_vote_per_term() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    let a = n.deliver(
        "n2",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 1,
            transfer: false,
        },
    );
    assert_eq!(
        sent(&a),
        vec![(
            "n2".into(),
            Body::Vote {
                term: 1,
                granted: true
            }
        )]
    );
    let b = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 1,
            transfer: false,
        },
    );
    assert_eq!(
        sent(&b),
        vec![(
            "n3".into(),
            Body::Vote {
                term: 1,
                granted: false
            }
        )]
    );
    // A retransmitted request from the same candidate is granted again.
    let c = n.deliver(
        "n2",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 1,
            transfer: false,
        },
    );
    assert_eq!(
        sent(&c),
        vec![(
            "n2".into(),
            Body::Vote {
                term: 1,
                granted: true
            }
        )]
    );
    // A new term frees the vote.
    let d = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
            transfer: false,
        },
    );
    assert_eq!(
        sent(&d),
        vec![(
            "n3".into(),
            Body::Vote {
                term: 2,
                granted: true
            }
        )]
    );
}

#[test]
fn the_vote_is_persisted_before_it_is_sent() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    let a = n.deliver(
        "n2",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 4,
            transfer: false,
        },
    );
    // The state saved last before the first send holds the vote (an
    // earlier save may hold only n2's data id, recorded on arrival).
    let first_send = a
        .iter()
        .position(|a| matches!(a, Action::Send { .. }))
        .expect("an answer");
    assert!(matches!(persisted(&a[..first_send]),
        Some(s) if s.term == 4 && s.voted_for.as_deref() == Some("n2")));
}

#[test]
fn a_restarted_node_remembers_its_vote() {
    let state = PersistedState {
        term: 3,
        voted_for: Some("n2".into()),
        members: vec!["n1".into(), "n2".into(), "n3".into()],
        removed: vec![],
        data_id: 42,
        ..PersistedState::default()
    };
    let (mut n, start) = Node::restart("n1", &["n1", "n2", "n3"], Some(state));
    assert_eq!(persisted(&start), None, "nothing new to persist");
    assert_eq!(n.e.status().term, 3);
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
                term: 3,
                granted: false
            }
        )]
    );
}

#[test]
fn persisted_members_survive_an_empty_bootstrap() {
    let state = PersistedState {
        term: 2,
        voted_for: None,
        members: vec!["a".into(), "b".into(), "c".into()],
        removed: vec![],
        ..PersistedState::default()
    };
    let (n, _) = Node::restart("a", &[], Some(state));
    assert_eq!(n.e.status().quorum, 2);
}
