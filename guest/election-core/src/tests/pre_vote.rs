//! Pre-votes, on a small in-memory network.

use super::*;

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
            generation: 1,
            full: true,
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
            generation: 1,
            full: true,
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
    // Refused for loyalty alone: the answer says when the loyalty ends.
    assert_eq!(
        sent(&a),
        vec![(
            "n3".into(),
            Body::PreVoteLater {
                term: 3,
                current: 2,
                after_ms: 50
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
