//! Native tests of the state machine: one node poked message by message, and
//! a small instant-delivery network for whole elections. The compiled
//! component is tested under faults by the simulator in `tests/`.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::election::Election;
use crate::options::{Options, Timings};
use crate::types::{Action, Environment, Event, PersistedState, Role, TimerId};
use crate::wire::{Body, Message, Standing};

const MS: u64 = 1_000_000;

/// The view the hand-made vote and pre-vote requests of the tests of
/// other topics claim: the newest, so they behave as before membership
/// epochs (`tests::membership_epochs` tests the comparison itself).
const NEWEST_VIEW: crate::types::Term = crate::types::Term::MAX;

/// A clock the test moves by hand and a SplitMix64 generator.
struct TestEnv {
    now: u64,
    seed: u64,
}

impl TestEnv {
    fn new(seed: u64) -> Self {
        TestEnv { now: 0, seed }
    }
}

impl Environment for TestEnv {
    fn now_ns(&mut self) -> u64 {
        self.now
    }
    fn random_u64(&mut self) -> u64 {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Options without pre-vote: most tests here exercise the election itself;
/// the pre-vote tests turn it on with [`pre_vote_options`].
fn options(id: &str, bootstrap: &[&str]) -> Options {
    Options {
        node_id: id.into(),
        cluster_id: "test".into(),
        bootstrap: bootstrap.iter().map(|s| s.to_string()).collect(),
        timings: Timings::default(),
        pre_vote: false,
        priority: 0,
        voter: true,
        joining: false,
    }
}

fn pre_vote_options(id: &str, bootstrap: &[&str]) -> Options {
    Options {
        pre_vote: true,
        ..options(id, bootstrap)
    }
}

/// The data id a hand-made message from `from` carries: one per name, so
/// a node under test records it once and it always matches.
fn data_id_of(from: &str) -> u64 {
    from.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A message from `from` that names no recipient's data id.
fn msg_from(from: &str, body: Body, recipient_data_id: Option<u64>) -> Vec<u8> {
    Message {
        cluster_id: "test".into(),
        sender: Standing::default(),
        sender_data_id: data_id_of(from),
        recipient_data_id,
        body,
    }
    .encode()
}

/// A node under test with its environment and the actions it produced.
struct Node {
    e: Election,
    env: TestEnv,
}

impl Node {
    fn start(id: &str, bootstrap: &[&str]) -> (Node, Vec<Action>) {
        Self::restart(id, bootstrap, None)
    }

    fn restart(id: &str, bootstrap: &[&str], state: Option<PersistedState>) -> (Node, Vec<Action>) {
        Self::with_options(options(id, bootstrap), state)
    }

    /// Starts a node as if its peers had confirmed its data id already
    /// (as their first messages do): the tests of other topics poke one
    /// node by hand, and [`tests::identity`] tests confirmation itself.
    fn with_options(options: Options, state: Option<PersistedState>) -> (Node, Vec<Action>) {
        let (mut n, actions) = Self::unconfirmed(options, state, 7);
        n.e.assume_confirmed();
        (n, actions)
    }

    /// Starts a node exactly as a host would.
    fn unconfirmed(
        options: Options,
        state: Option<PersistedState>,
        seed: u64,
    ) -> (Node, Vec<Action>) {
        let mut env = TestEnv::new(seed);
        let mut e = Election::start(options, state, &mut env).expect("valid options");
        let actions = e.take_actions();
        (Node { e, env }, actions)
    }

    /// Delivers `body` from `from`, naming this node by its data id.
    fn deliver(&mut self, from: &str, body: Body) -> Vec<Action> {
        let me = Some(self.e.status().data_id);
        self.e
            .on_message(from, &msg_from(from, body, me), &mut self.env);
        self.e.take_actions()
    }

    /// Fires the election timer (the latest armed one that is not the
    /// heartbeat timer) as if it expired.
    fn fire(&mut self, id: TimerId) -> Vec<Action> {
        self.e.on_timer(id, &mut self.env);
        self.e.take_actions()
    }
}

/// The messages sent, but for the identity questions and answers of
/// [`crate::identity`] (see [`sent_all`]).
fn sent(actions: &[Action]) -> Vec<(String, Body)> {
    sent_all(actions)
        .into_iter()
        .filter(|(_, body)| !matches!(body, Body::Identify { .. }))
        .collect()
}

fn sent_all(actions: &[Action]) -> Vec<(String, Body)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, payload } => {
                Some((to.clone(), Message::decode(payload).expect("decodes").body))
            }
            _ => None,
        })
        .collect()
}

fn events(actions: &[Action]) -> Vec<Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Events other than peer liveness.
fn role_events(actions: &[Action]) -> Vec<Event> {
    events(actions)
        .into_iter()
        .filter(|e| !matches!(e, Event::PeerJoined(_) | Event::PeerLeft(_)))
        .collect()
}

fn timers(actions: &[Action]) -> Vec<(TimerId, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTimer { id, after_ns } => Some((*id, *after_ns)),
            _ => None,
        })
        .collect()
}

fn last_timer(actions: &[Action]) -> TimerId {
    timers(actions).last().expect("a timer was armed").0
}

fn persisted(actions: &[Action]) -> Option<PersistedState> {
    actions.iter().rev().find_map(|a| match a {
        Action::Persist(s) => Some(s.clone()),
        _ => None,
    })
}

/// Makes `n1` of {n1, n2, n3} a candidate at term 1; returns the timer.
fn candidate() -> (Node, TimerId) {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    let actions = n.fire(last_timer(&start));
    assert_eq!(n.e.status().role, Role::Candidate);
    (n, last_timer(&actions))
}

/// Makes `n1` of {n1, n2, n3} leader at term 1.
fn leader() -> (Node, Vec<Action>) {
    let (mut n, _) = candidate();
    let actions = n.deliver(
        "n2",
        Body::Vote {
            term: 1,
            granted: true,
        },
    );
    assert_eq!(n.e.status().role, Role::Leader);
    (n, actions)
}

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
        },
        Body::Heartbeat {
            epoch: 0,
            term: 2,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
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
    // It shares what it knows in its ack.
    assert!(matches!(&sent(&actions)[..],
        [(_, Body::HeartbeatAck { members, .. })] if members.len() == 4));
    // An older epoch changes nothing.
    n.deliver("n2", hb(0, &["n1", "n2", "n9"]));
    assert_eq!(n.e.status().members, vec!["n1", "n2", "n4", "n5"]);
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
fn joining_a_cluster_from_an_empty_bootstrap() {
    let (mut j, start) = Node::start("j", &[]);
    j.fire(last_timer(&start));
    assert_eq!(j.e.status().role, Role::Leader, "alone, it leads itself");
    j.e.join("a", &mut j.env);
    let actions = j.e.take_actions();
    let s = j.e.status();
    // Asking adds no one: only the leader's heartbeat admits j.
    assert_eq!(
        (s.role, s.members.clone()),
        (Role::Follower, vec!["j".into()])
    );
    assert!(matches!(&sent(&actions)[..], [(to, Body::Join { .. })] if to == "a"));
    // The welcome names the cluster's leader; j follows it.
    j.deliver(
        "a",
        Body::Welcome {
            term: 4,
            leader: Some("b".into()),
            members: vec!["a".into(), "b".into(), "c".into()],
        },
    );
    // The welcome's list adds no one: b's heartbeat of a later epoch,
    // listing j, admits it.
    let s = j.e.status();
    assert_eq!(
        (s.term, s.leader.as_deref(), s.members.len()),
        (4, Some("b"), 1)
    );
    j.deliver(
        "b",
        Body::Heartbeat {
            epoch: 3,
            term: 4,
            round: 1,
            members: vec!["a".into(), "b".into(), "c".into(), "j".into()],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
        },
    );
    assert_eq!(j.e.status().members.len(), 4);
}

#[test]
fn a_joiner_told_of_the_leader_introduces_itself_to_it() {
    let (mut j, _) = Node::start("j", &[]);
    j.e.join("a", &mut j.env);
    j.e.take_actions();
    let actions = j.deliver(
        "a",
        Body::Welcome {
            term: 2,
            leader: Some("b".into()),
            members: vec!["a".into(), "b".into()],
        },
    );
    assert!(matches!(&sent(&actions)[..], [(to, Body::Join { .. })] if to == "b"));
}

#[test]
fn a_leader_welcomes_a_joiner_with_a_heartbeat() {
    let (mut n, _) = leader();
    let join = Body::Join {
        members: vec!["n9".into()],
    };
    // A new leader admits no one before a majority acknowledged it.
    n.deliver("n9", join.clone());
    assert_eq!(n.e.status().members.len(), 3);
    n.env.now = 10 * MS;
    ack(&mut n, "n2", 1);
    let actions = n.deliver("n9", join);
    let to_n9: Vec<_> = sent(&actions)
        .into_iter()
        .filter(|(to, _)| to == "n9")
        .map(|(_, b)| b)
        .collect();
    assert!(matches!(
        &to_n9[..],
        [
            Body::Heartbeat {
                term: 1,
                epoch: 1,
                ..
            },
            Body::Welcome { term: 1, .. },
            Body::Heartbeat { term: 1, .. }
        ]
    ));
    let s = n.e.status();
    assert_eq!((s.members.len(), s.epoch), (4, 1));
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

/// Whole elections over an instant, lossless network: deliver everything,
/// then fire the timer due first, until `steps` run out.
struct Net {
    nodes: BTreeMap<String, (Election, TestEnv)>,
    timers: BTreeMap<String, BTreeMap<TimerId, u64>>,
    queue: Vec<(String, String, Vec<u8>)>,
    now: u64,
}

impl Net {
    fn new(ids: &[&str], seed: u64) -> Net {
        let mut net = Net {
            nodes: BTreeMap::new(),
            timers: BTreeMap::new(),
            queue: Vec::new(),
            now: 0,
        };
        for (i, id) in ids.iter().enumerate() {
            let mut env = TestEnv::new(seed * 100 + i as u64);
            let mut e = Election::start(options(id, ids), None, &mut env).expect("valid");
            let actions = e.take_actions();
            net.nodes.insert(id.to_string(), (e, env));
            net.apply(id, actions);
        }
        net
    }

    fn apply(&mut self, id: &str, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, payload } => self.queue.push((id.into(), to, payload)),
                Action::SetTimer { id: t, after_ns } => {
                    self.timers
                        .entry(id.into())
                        .or_default()
                        .insert(t, self.now + after_ns);
                }
                Action::CancelTimer { id: t } => {
                    self.timers.entry(id.into()).or_default().remove(&t);
                }
                _ => {}
            }
        }
    }

    fn step(&mut self) {
        if !self.queue.is_empty() {
            let (from, to, payload) = self.queue.remove(0);
            if let Some((e, env)) = self.nodes.get_mut(&to) {
                env.now = self.now;
                e.on_message(&from, &payload, env);
                let actions = e.take_actions();
                self.apply(&to, actions);
            }
            return;
        }
        let due = self
            .timers
            .iter()
            .flat_map(|(n, ts)| ts.iter().map(move |(t, at)| (*at, n.clone(), *t)))
            .min();
        if let Some((at, node, t)) = due {
            self.now = at;
            self.timers.entry(node.clone()).or_default().remove(&t);
            let (e, env) = self.nodes.get_mut(&node).expect("node exists");
            env.now = at;
            e.on_timer(t, env);
            let actions = e.take_actions();
            self.apply(&node, actions);
        }
    }

    fn leaders(&self) -> Vec<(String, u64)> {
        self.nodes
            .values()
            .map(|(e, _)| e.status())
            .filter(|s| s.role == Role::Leader)
            .map(|s| (s.node_id, s.term))
            .collect()
    }
}

#[test]
fn three_nodes_elect_exactly_one_leader_that_all_follow() {
    for seed in 0..50 {
        let mut net = Net::new(&["n1", "n2", "n3"], seed);
        for _ in 0..200 {
            net.step();
        }
        let leaders = net.leaders();
        assert_eq!(leaders.len(), 1, "seed {seed}: {leaders:?}");
        let (leader, term) = leaders[0].clone();
        for (e, _) in net.nodes.values() {
            let s = e.status();
            assert_eq!(
                (s.leader.as_deref(), s.term),
                (Some(leader.as_str()), term),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn a_pre_candidate_asks_without_bumping_its_term_and_forgets_its_leader() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    let heard = n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 0,
            term: 3,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
        },
    );
    n.env.now += 400 * MS;
    let timer = last_timer(&heard);
    let actions = n.fire(timer);
    let s = n.e.status();
    assert_eq!(
        (s.role, s.term, s.leader),
        (Role::Follower, 3, None),
        "term untouched, leader forgotten"
    );
    assert!(sent(&actions).iter().all(|(_, b)| matches!(
        b,
        Body::RequestPreVote {
            epoch: 0,
            term: 4,
            ..
        }
    )));
    assert!(events(&actions).contains(&Event::BecameFollower {
        leader: None,
        term: 3
    }));
    // A majority of pre-votes starts the real election.
    let actions = n.deliver(
        "n3",
        Body::PreVote {
            term: 4,
            granted: true,
            current: 3,
        },
    );
    assert_eq!((n.e.status().role, n.e.status().term), (Role::Candidate, 4));
    assert!(sent(&actions).iter().all(|(_, b)| matches!(
        b,
        Body::RequestVote {
            epoch: 0,
            term: 4,
            transfer: false,
            ..
        }
    )));
}

#[test]
fn a_cut_off_node_never_bumps_its_term_with_pre_vote() {
    let (mut n, start) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    let mut id = last_timer(&start);
    for _ in 0..100 {
        n.env.now += 300 * MS;
        let actions = n.fire(id);
        id = last_timer(&actions);
    }
    assert_eq!(n.e.status().term, 0);
}

#[test]
fn pre_votes_are_refused_while_the_leader_is_heard_from() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 0,
            term: 2,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
        },
    );
    n.env.now += 100 * MS;
    let a = n.deliver(
        "n3",
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 3,
        },
    );
    assert_eq!(
        sent(&a),
        vec![(
            "n3".into(),
            Body::PreVote {
                term: 3,
                granted: false,
                current: 2
            }
        )]
    );
    assert_eq!(n.e.status().term, 2, "a pre-vote changes nothing");
    // Once the leader has been silent for a minimum election timeout, the
    // pre-vote is granted; a stale one never is.
    n.env.now += 100 * MS;
    let b = n.deliver(
        "n3",
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 3,
        },
    );
    assert_eq!(
        sent(&b),
        vec![(
            "n3".into(),
            Body::PreVote {
                term: 3,
                granted: true,
                current: 2
            }
        )]
    );
    let c = n.deliver(
        "n3",
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
        },
    );
    assert_eq!(
        sent(&c),
        vec![(
            "n3".into(),
            Body::PreVote {
                term: 2,
                granted: false,
                current: 2
            }
        )]
    );
    assert_eq!(n.e.status().voted_for, None, "no vote was cast");
}

#[test]
fn a_leader_refuses_pre_votes_and_a_pre_candidate_behind_catches_up() {
    let (mut n, _) = leader();
    let a = n.deliver(
        "n3",
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
        },
    );
    assert!(matches!(
        &sent(&a)[..],
        [(
            _,
            Body::PreVote {
                granted: false,
                current: 1,
                ..
            }
        )]
    ));
    assert_eq!(
        n.e.status().role,
        Role::Leader,
        "a pre-vote does not depose"
    );
    let (mut p, start) = Node::with_options(pre_vote_options("p", &["p", "q", "r"]), None);
    p.fire(last_timer(&start));
    p.deliver(
        "q",
        Body::PreVote {
            term: 1,
            granted: false,
            current: 7,
        },
    );
    assert_eq!(p.e.status().term, 7);
}

#[test]
fn a_leader_hands_its_whole_state_to_another_build() {
    let (n, actions) = leader();
    let heartbeat_timer = last_timer(&actions);
    let state = n.e.export_state();
    let mut env = TestEnv::new(99);
    let mut next = Election::import_state(options("n1", &["n1", "n2", "n3"]), &state, &mut env)
        .expect("imports");
    assert_eq!(next.status(), n.e.status());
    assert!(
        sent(&next.take_actions()).is_empty(),
        "importing sends nothing"
    );
    // The timer the old build armed fires into the new one.
    next.on_timer(heartbeat_timer, &mut env);
    let beats = sent(&next.take_actions());
    assert_eq!(beats.len(), 2);
    assert!(
        beats
            .iter()
            .all(|(_, b)| matches!(b, Body::Heartbeat { term: 1, .. }))
    );
}

#[test]
fn a_leaders_lease_survives_a_swap_and_a_format_1_state_still_imports() {
    let (mut n, _) = leader();
    n.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 1,
            members: vec![],
            removed: vec![],
        },
    );
    let lease = n.e.lease_expires_ns();
    assert!(lease.is_some());
    let state = n.e.export_state();
    let mut env = TestEnv::new(5);
    let next = Election::import_state(options("n1", &["n1", "n2", "n3"]), &state, &mut env)
        .expect("imports");
    assert_eq!(next.lease_expires_ns(), lease);

    // A build from before leases wrote format 1: the bare state.
    let (&format, rest) = state.split_first().expect("not empty");
    assert_eq!(format, crate::handover::HANDOVER_FORMAT);
    let (with_lease, _): (crate::handover::HandoverWithLease, _) =
        postcard::take_from_bytes(rest).expect("decodes");
    let mut old = vec![1u8];
    old.extend(postcard::to_allocvec(&with_lease.core).expect("encodes"));
    let from_old = Election::import_state(options("n1", &["n1", "n2", "n3"]), &old, &mut env)
        .expect("format 1 imports");
    assert_eq!(from_old.status().role, Role::Leader);
    assert_eq!(
        from_old.lease_expires_ns(),
        None,
        "no lease until the next acknowledged round"
    );
}

#[test]
fn a_foreign_or_unknown_state_is_refused_with_the_reason() {
    let (n, _) = leader();
    let state = n.e.export_state();
    let mut env = TestEnv::new(1);
    let other = Election::import_state(options("n2", &["n1", "n2", "n3"]), &state, &mut env)
        .expect_err("another node's state");
    assert!(other.contains("state of node n1"), "{other}");
    let mut future = state.clone();
    future[0] = 9;
    let err = Election::import_state(options("n1", &["n1", "n2", "n3"]), &future, &mut env)
        .expect_err("unknown format");
    assert!(err.contains("format 9"), "{err}");
    let err = Election::import_state(options("n1", &["n1"]), &state[..state.len() / 2], &mut env)
        .expect_err("truncated");
    assert!(err.contains("malformed"), "{err}");
}

#[test]
fn a_follower_told_its_leader_died_campaigns_after_a_short_jitter() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 0,
            term: 2,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
        },
    );
    // Another peer's death changes nothing.
    n.e.peer_unreachable("n3", &mut n.env);
    assert!(n.e.take_actions().is_empty());
    n.e.peer_unreachable("n2", &mut n.env);
    let actions = n.e.take_actions();
    let s = n.e.status();
    assert_eq!((s.role, s.term, s.leader), (Role::Follower, 2, None));
    let (timer, after) = *timers(&actions).last().expect("re-armed");
    // n1 is first in line (n3 is not heard from, so not in line): its
    // turn is now, give or take half a slot of 10 ms.
    assert!(
        after <= 5 * MS,
        "first in line waits at most half a slot: {after}"
    );
    // When it fires, the pre-vote goes out at once; the other survivor,
    // which also saw the death, grants it.
    let pre = n.fire(timer);
    assert!(sent(&pre).iter().all(|(_, b)| matches!(
        b,
        Body::RequestPreVote {
            epoch: 0,
            term: 3,
            ..
        }
    )));
}

#[test]
fn survivors_of_a_dead_leader_take_turns_by_priority_then_id() {
    let turn = |id: &str, priority: u8| {
        let mut options = pre_vote_options(id, &["n1", "n2", "n3", "n4"]);
        options.priority = priority;
        let (mut n, _) = Node::with_options(options, None);
        // The leader n1 vouches for everyone, so all are heard from.
        n.e.on_message(
            "n1",
            &Message {
                cluster_id: "test".into(),
                sender: Standing::default(),
                sender_data_id: data_id_of("n1"),
                recipient_data_id: None,
                body: Body::Heartbeat {
                    epoch: 0,
                    term: 1,
                    round: 1,
                    members: vec![],
                    alive: vec!["n2".into(), "n3".into(), "n4".into()],
                    removed: vec![],
                    transfer_to: None,
                },
            }
            .encode(),
            &mut n.env,
        );
        // n4 says it has priority 3.
        n.e.on_message(
            "n4",
            &Message {
                cluster_id: "test".into(),
                sender: Standing {
                    voter: true,
                    priority: 3,
                },
                sender_data_id: data_id_of("n4"),
                recipient_data_id: None,
                body: Body::Join { members: vec![] },
            }
            .encode(),
            &mut n.env,
        );
        n.e.take_actions();
        n.e.peer_unreachable("n1", &mut n.env);
        timers(&n.e.take_actions()).last().expect("re-armed").1
    };
    // Slots are 10 ms (a fifth of the 50 ms heartbeat), jitter up to 5 ms.
    let n4 = turn("n4", 3);
    let n2 = turn("n2", 0);
    let n3 = turn("n3", 0);
    assert!(n4 <= 5 * MS, "n4, of top priority, goes first: {n4}");
    assert!((10 * MS..=15 * MS).contains(&n2), "n2 second: {n2}");
    assert!((20 * MS..=25 * MS).contains(&n3), "n3 third: {n3}");
}

#[test]
fn campaign_starts_a_pre_vote_now_and_a_leader_ignores_it() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    n.e.campaign(&mut n.env).expect("a fresh node may stand");
    let actions = n.e.take_actions();
    assert!(sent(&actions).iter().all(|(_, b)| matches!(
        b,
        Body::RequestPreVote {
            epoch: 0,
            term: 1,
            ..
        }
    )));
    assert_eq!(sent(&actions).len(), 2);
    let (mut l, _) = leader();
    assert_eq!(
        l.e.campaign(&mut l.env),
        Err(crate::Refusal::Leading { term: 1 })
    );
    assert!(sent(&l.e.take_actions()).is_empty());
    assert_eq!(l.e.status().role, Role::Leader);
}

#[test]
fn a_leader_hands_leadership_over_and_refuses_bad_targets() {
    let (mut n, _) = leader();
    assert!(
        n.e.transfer_leadership("n1", &mut n.env)
            .unwrap_err()
            .contains("already leads")
    );
    assert!(
        n.e.transfer_leadership("n9", &mut n.env)
            .unwrap_err()
            .contains("not a member")
    );
    assert!(
        n.e.transfer_leadership("n3", &mut n.env)
            .unwrap_err()
            .contains("not been heard")
    );
    n.deliver(
        "n3",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 0,
            members: vec![],
            removed: vec![],
        },
    );
    n.e.take_actions();
    n.e.transfer_leadership("n3", &mut n.env)
        .expect("transfers");
    let actions = n.e.take_actions();
    // A heartbeat round naming the target goes out first...
    let out = sent(&actions);
    assert!(out.iter().all(|(_, b)| matches!(b,
        Body::Heartbeat { round: 2, transfer_to: Some(t), .. } if t == "n3")));
    assert_eq!(out.len(), 2, "{out:?}");
    // ...and once a majority acknowledged it (n2 and the leader), the
    // TimeoutNow.
    let actions = n.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 2,
            members: vec![],
            removed: vec![],
        },
    );
    assert_eq!(
        sent(&actions),
        vec![("n3".into(), Body::TimeoutNow { term: 1, round: 2 })]
    );
    // The target campaigns at once, skipping the pre-vote.
    let (mut t, _) = Node::with_options(pre_vote_options("n3", &["n1", "n2", "n3"]), None);
    t.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
        },
    );
    let actions = t.deliver("n1", Body::TimeoutNow { term: 1, round: 2 });
    assert_eq!((t.e.status().role, t.e.status().term), (Role::Candidate, 2));
    assert!(sent(&actions).iter().all(|(_, b)| matches!(
        b,
        Body::RequestVote {
            epoch: 0,
            term: 2,
            transfer: true,
            ..
        }
    )));
    // The others grant it although they heard from the leader just now,
    // since the leader's heartbeat named it...
    let (mut f, _) = Node::with_options(pre_vote_options("n2", &["n1", "n2", "n3"]), None);
    f.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 1,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: Some("n3".into()),
        },
    );
    let vote = f.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
            transfer: true,
        },
    );
    assert_eq!(
        sent(&vote),
        vec![(
            "n3".into(),
            Body::Vote {
                term: 2,
                granted: true
            }
        )]
    );
    // ...and the old leader gave its lease up when it handed over.
    assert_eq!(n.e.lease_expires_ns(), None);
    // A hand-over from a node that is not its leader is ignored.
    let stale = t.deliver("n2", Body::TimeoutNow { term: 2, round: 2 });
    assert!(sent(&stale).is_empty());
    let (mut f, _) = Node::start("n2", &["n1", "n2", "n3"]);
    f.e.transfer_leadership("n1", &mut f.env)
        .expect_err("a follower cannot transfer");
}

// ---- leases and loyalty ----

fn heartbeat_from(n: &mut Node, leader: &str, term: u64, round: u64) -> Vec<Action> {
    n.deliver(
        leader,
        Body::Heartbeat {
            epoch: 0,
            term,
            round,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
        },
    )
}

fn vote_of(actions: &[Action]) -> Option<(u64, bool)> {
    sent(actions).into_iter().find_map(|(_, b)| match b {
        Body::Vote { term, granted } => Some((term, granted)),
        _ => None,
    })
}

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
        },
    );
    assert_eq!(n.e.lease_expires_ns(), Some(185 * MS));
    // A refusing ack (stale term on the follower's side) extends nothing,
    // and a leader that steps down holds no lease.
    n.e.step_down(&mut n.env);
    assert_eq!(n.e.lease_expires_ns(), None);
}

// ---- leave ----

fn ack(n: &mut Node, from: &str, round: u64) {
    n.deliver(
        from,
        Body::HeartbeatAck {
            term: n.e.status().term,
            ok: true,
            round,
            members: vec![],
            removed: vec![],
        },
    );
}

#[test]
fn the_leader_removes_silent_members_one_at_a_time() {
    let five = ["n1", "n2", "n3", "n4", "n5"];
    let (mut n, start) = Node::start("n1", &five);
    n.fire(last_timer(&start));
    for voter in ["n2", "n3"] {
        n.deliver(
            voter,
            Body::Vote {
                term: 1,
                granted: true,
            },
        );
    }
    assert_eq!(n.e.status().role, Role::Leader);
    n.env.now = 10 * MS;
    ack(&mut n, "n2", 1);
    ack(&mut n, "n3", 1);
    // (A member heard from lately was refused before epochs; it is
    // removable now: see tests::membership_epochs.)
    let unknown = n.e.leave("n9", &mut n.env).expect_err("not a member");
    assert!(unknown.contains("not a member"), "{unknown}");
    n.e.take_actions();
    n.e.leave("n5", &mut n.env)
        .expect("n5 was never heard from");
    let actions = n.e.take_actions();
    let saved = persisted(&actions).expect("the removal is persisted");
    assert_eq!(saved.removed, vec!["n5".to_string()]);
    assert!(
        sent(&actions)
            .iter()
            .any(|(_, b)| matches!(b, Body::Heartbeat { removed, .. } if removed == &["n5"])),
        "the removal goes out at once"
    );
    assert_eq!((n.e.status().members.len(), n.e.status().quorum), (4, 3));
    n.e.leave("n5", &mut n.env).expect("idempotent");
    // The next removal waits until a majority of the new membership has
    // acknowledged a round that carried this one.
    let early = n.e.leave("n4", &mut n.env).expect_err("one at a time");
    assert!(early.contains("try again"), "{early}");
    ack(&mut n, "n2", 2);
    ack(&mut n, "n3", 2);
    n.e.leave("n4", &mut n.env)
        .expect("the first removal settled");
    assert_eq!((n.e.status().members.len(), n.e.status().quorum), (3, 2));
    assert_eq!(n.e.status().epoch, 2, "one epoch per removal");
}

#[test]
fn a_tombstone_outlasts_messages_in_flight_and_restarts() {
    let five = ["n1", "n2", "n3", "n4", "n5"];
    let (mut f, _) = Node::start("n2", &five);
    let refused = f.e.leave("n5", &mut f.env).expect_err("a follower");
    assert!(refused.contains("does not lead"), "{refused}");
    // The leader's removal is a new epoch of its view.
    f.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 1,
            term: 1,
            round: 3,
            members: five[..4].iter().map(|s| s.to_string()).collect(),
            alive: vec![],
            removed: vec!["n5".into()],
            transfer_to: None,
        },
    );
    assert!(!f.e.status().members.contains(&"n5".to_string()));
    // A heartbeat the leader sent before the removal, arriving late, and
    // n5's own messages, do not bring it back; nor does join.
    f.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 2,
            members: five.iter().map(|s| s.to_string()).collect(),
            alive: vec!["n5".into()],
            removed: vec![],
            transfer_to: None,
        },
    );
    f.deliver(
        "n5",
        Body::Join {
            members: vec!["n5".into()],
        },
    );
    f.e.join("n5", &mut f.env);
    assert!(!f.e.status().members.contains(&"n5".to_string()));
    let (r, _) = Node::restart("n2", &five, Some(f.e.persisted_state()));
    assert!(!r.e.status().members.contains(&"n5".to_string()));
    assert_eq!(r.e.persisted_state().removed, vec!["n5".to_string()]);
}

#[test]
fn a_removal_spreads_from_the_leader_and_the_removed_node_stops_voting() {
    let (mut l, _) = leader(); // n1 of {n1, n2, n3}, term 1
    l.env.now = 600 * MS; // nothing heard from n3 since the start
    l.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 1,
            members: vec![],
            removed: vec![],
        },
    );
    l.e.leave("n3", &mut l.env).expect("n3 is silent");
    let beats = sent(&l.e.take_actions());
    let removed_in_beat = beats.iter().find_map(|(to, b)| match b {
        Body::Heartbeat { removed, .. } if to == "n2" => Some(removed.clone()),
        _ => None,
    });
    assert_eq!(removed_in_beat, Some(vec!["n3".to_string()]));
    // A follower learns it from the heartbeat.
    let (mut f, _) = Node::start("n2", &["n1", "n2", "n3"]);
    let (_, beat) = beats.iter().find(|(to, _)| to == "n2").expect("sent");
    f.deliver("n1", beat.clone());
    assert_eq!(
        f.e.status().members,
        vec!["n1".to_string(), "n2".to_string()]
    );
    // The removed node learns it too, and no longer votes or stands.
    let (mut gone, start) = Node::start("n3", &["n1", "n2", "n3"]);
    gone.deliver("n1", beat.clone());
    let vote = gone.deliver(
        "n2",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 5,
            transfer: true,
        },
    );
    assert_eq!(vote_of(&vote), Some((1, false)));
    gone.env.now += 10_000 * MS;
    let fired = gone.fire(last_timer(&start));
    assert!(
        !sent(&fired)
            .iter()
            .any(|(_, b)| matches!(b, Body::RequestVote { .. } | Body::RequestPreVote { .. })),
        "a removed node never campaigns"
    );
    // A leader cannot remove itself.
    let own = l.e.leave("n1", &mut l.env).expect_err("leader");
    assert!(own.contains("transfer leadership"), "{own}");
}

#[test]
fn a_refused_pre_vote_while_replacing_a_dead_leader_is_retried_a_slot_later() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 1,
            members: vec![],
            alive: vec!["n3".into()],
            removed: vec![],
            transfer_to: None,
        },
    );
    n.e.peer_unreachable("n2", &mut n.env);
    let (timer, _) = *timers(&n.e.take_actions()).last().expect("re-armed");
    let pre = n.fire(timer);
    assert!(
        sent(&pre)
            .iter()
            .any(|(_, b)| matches!(b, Body::RequestPreVote { .. }))
    );
    // n3 has not seen n2 die yet and refuses.
    let refused = n.deliver(
        "n3",
        Body::PreVote {
            term: 2,
            granted: false,
            current: 1,
        },
    );
    let (retry, after) = *timers(&refused).last().expect("a retry is armed");
    // The line is n1 then n3 (10 ms slots): the retry comes after both
    // turns, so it cannot race n3's own turn and split the vote.
    assert!(
        (20 * MS..=25 * MS).contains(&after),
        "retried after everyone's turn: {after}"
    );
    // When it fires, the pre-vote goes out again.
    let again = n.fire(retry);
    assert!(
        sent(&again)
            .iter()
            .any(|(_, b)| matches!(b, Body::RequestPreVote { .. }))
    );
    // Outside a failover, a refusal re-arms nothing.
    let (mut m, start) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    m.fire(last_timer(&start));
    let plain = m.deliver(
        "n3",
        Body::PreVote {
            term: 1,
            granted: false,
            current: 0,
        },
    );
    assert!(timers(&plain).is_empty());
}

#[test]
fn granting_a_pre_vote_while_replacing_a_dead_leader_defers_this_nodes_turn() {
    let (mut n, _) = Node::with_options(pre_vote_options("n3", &["n1", "n2", "n3"]), None);
    n.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 1,
            members: vec![],
            alive: vec!["n2".into()],
            removed: vec![],
            transfer_to: None,
        },
    );
    n.e.peer_unreachable("n1", &mut n.env);
    let (_, turn) = *timers(&n.e.take_actions()).last().expect("armed");
    assert!((10 * MS..=15 * MS).contains(&turn), "n3 is second: {turn}");
    // n2, first in line, asks: n3 grants and steps back a whole line.
    let answer = n.deliver(
        "n2",
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
        },
    );
    assert!(
        sent(&answer)
            .iter()
            .any(|(_, b)| matches!(b, Body::PreVote { granted: true, .. }))
    );
    let (_, later) = *timers(&answer).last().expect("re-armed");
    assert!(
        (20 * MS..=25 * MS).contains(&later),
        "after the line: {later}"
    );
}

// Safety tests, one file per topic, sharing the helpers above.
mod cluster;
mod identity;
mod joining;
mod loyalty;
mod membership;
mod membership_epochs;
mod removals;
mod terms;
mod transfer;
