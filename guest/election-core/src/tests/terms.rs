//! Item 1: terms never wrap and never jump arbitrarily far on one message.

use alloc::vec;

use super::*;

/// The ceiling and jump bound, spelled out so these tests read alone.
const CEILING: u64 = 1 << 63;
const JUMP: u64 = 1 << 32;

fn heartbeat(term: u64) -> Body {
    Body::Heartbeat {
        epoch: 0,
        term,
        round: 0,
        members: vec![],
        alive: vec![],
        removed: vec![],
        transfer_to: None,
        generation: 1,
        full: true,
    }
}

#[test]
fn a_heartbeat_at_the_top_term_is_refused_and_elections_go_on() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    n.deliver("n2", heartbeat(u64::MAX));
    let s = n.e.status();
    assert_eq!(s.term, 0, "a term of 2^64-1 is not adopted");
    assert_eq!(s.ignored_messages, 1, "and the refusal is counted");
    assert_eq!(s.leader, None);
    // The node still campaigns, at term 1.
    n.env.now = 400 * MS;
    n.fire(last_timer(&start));
    assert_eq!((n.e.status().role, n.e.status().term), (Role::Candidate, 1));
}

#[test]
fn a_term_jump_beyond_the_bound_is_refused_and_one_within_it_accepted() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    n.deliver("n2", heartbeat(5));
    n.deliver("n2", heartbeat(5 + JUMP + 1));
    assert_eq!(n.e.status().term, 5, "more than 2^32 ahead: refused");
    assert_eq!(n.e.status().ignored_messages, 1);
    n.deliver("n2", heartbeat(5 + JUMP));
    assert_eq!(n.e.status().term, 5 + JUMP, "exactly 2^32 ahead: accepted");
    // Vote requests, acks and pre-vote answers are bounded the same way.
    let before = n.e.status().ignored_messages;
    n.deliver(
        "n3",
        Body::PreVote {
            term: 1,
            granted: false,
            current: u64::MAX,
        },
    );
    assert_eq!(n.e.status().term, 5 + JUMP);
    assert_eq!(n.e.status().ignored_messages, before + 1);
}

#[test]
fn a_node_at_the_term_ceiling_never_campaigns() {
    for term in [CEILING, u64::MAX] {
        let state = PersistedState {
            term,
            voted_for: None,
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            removed: vec![],
            ..PersistedState::default()
        };
        for pre_vote in [false, true] {
            let mut o = options("n1", &["n1", "n2", "n3"]);
            o.pre_vote = pre_vote;
            let (mut n, start) = Node::with_options(o, Some(state.clone()));
            n.env.now = 400 * MS;
            let actions = n.fire(last_timer(&start));
            let s = n.e.status();
            assert_eq!(
                (s.role, s.term),
                (Role::Follower, term),
                "term {term}, pre-vote {pre_vote}: the node does not stand"
            );
            assert!(sent(&actions).is_empty(), "{actions:?}");
            assert!(
                actions.iter().any(|a| matches!(a,
                    Action::Log { level: crate::types::LogLevel::Error, message }
                        if message.contains("ceiling"))),
                "an error is logged: {actions:?}"
            );
            // And its timer is re-armed: it keeps following whoever leads.
            assert!(!timers(&actions).is_empty());
        }
    }
}
