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
            generation: 1,
            full: true,
        },
    )
}

fn vote_of(actions: &[Action]) -> Option<(u64, bool)> {
    sent(actions).into_iter().find_map(|(_, b)| match b {
        Body::Vote { term, granted } => Some((term, granted)),
        _ => None,
    })
}

fn ack(n: &mut Node, from: &str, round: u64) {
    ack_holding(n, from, round, None);
}

/// An ok ack of `round` from `from` that says which generation of the
/// leader's lists it holds (see [`crate::lists`]).
fn ack_holding(n: &mut Node, from: &str, round: u64, holds: Option<u64>) {
    n.deliver(
        from,
        Body::HeartbeatAck {
            term: n.e.status().term,
            ok: true,
            round,
            members: vec![],
            removed: vec![],
            holds,
        },
    );
}

// Tests, one file per topic, sharing the helpers above.
mod aside;
mod cluster;
mod failover;
mod identity;
mod identity_peers;
mod joining;
mod leases;
mod leave;
mod lists;
mod loyalty;
mod membership;
mod membership_epochs;
mod pre_vote;
mod removals;
mod roles;
mod swap;
mod terms;
mod timeout_turns;
mod transfer;
mod voting;
