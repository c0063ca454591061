//! One protocol event on the native core: a follower handed a leader's
//! heartbeat, answering with an acknowledgement (message in, messages out).
//! `cargo bench -p tenure-election-core`; compare with the same event
//! through the compiled component in `host/benches/dispatch.rs`.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tenure_election_core::{Action, Election, Environment, Options, Timings};

/// A clock that moves forward a microsecond per read, and xorshift bits.
struct Env {
    now_ns: u64,
    seed: u64,
}

impl Environment for Env {
    fn now_ns(&mut self) -> u64 {
        self.now_ns += 1_000;
        self.now_ns
    }

    fn random_u64(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }
}

const IDS: [&str; 3] = ["n1", "n2", "n3"];

/// Delivers every queued message, in order, until none is left (at most
/// 1,000). Returns the last payload n1 sent n2, if any.
fn deliver_all(nodes: &mut [Election], env: &mut Env) -> Option<Vec<u8>> {
    let mut queue: VecDeque<(usize, usize, Vec<u8>)> = VecDeque::new();
    let mut to_n2 = None;
    for _ in 0..1_000 {
        for (from, node) in nodes.iter_mut().enumerate() {
            for action in node.take_actions() {
                if let Action::Send { to, payload } = action
                    && let Some(to) = IDS.iter().position(|id| *id == to)
                {
                    if from == 0 && to == 1 {
                        to_n2 = Some(payload.clone());
                    }
                    queue.push_back((from, to, payload));
                }
            }
        }
        let Some((from, to, payload)) = queue.pop_front() else {
            break;
        };
        nodes[to].on_message(IDS[from], &payload, env);
    }
    to_n2
}

/// Three started nodes; once their data ids are confirmed (a fresh node
/// may not stand before a majority confirmed its data id), n1 campaigns
/// and every message is delivered until none is left. Returns the nodes
/// and the last payload n1 sent n2 (a heartbeat from the new leader).
fn elected() -> (Vec<Election>, Env, Vec<u8>) {
    let mut env = Env {
        now_ns: 0,
        seed: 0x9e37_79b9_7f4a_7c15,
    };
    let mut nodes: Vec<Election> = IDS
        .iter()
        .map(|id| {
            let options = Options {
                node_id: id.to_string(),
                cluster_id: "bench".into(),
                bootstrap: IDS.iter().map(|s| s.to_string()).collect(),
                timings: Timings::default(),
                pre_vote: true,
                priority: 0,
                voter: true,
                joining: false,
            };
            Election::start(options, None, &mut env).expect("valid options")
        })
        .collect();
    // The start-up identity exchange: each node asks its peers to confirm
    // its data id.
    deliver_all(&mut nodes, &mut env);
    nodes[0]
        .campaign(&mut env)
        .expect("a node whose data id its peers confirmed may stand");
    let heartbeat = deliver_all(&mut nodes, &mut env).expect("n1 never sent n2 anything");
    assert_eq!(
        nodes[1].status().leader.as_deref(),
        Some("n1"),
        "n1 was not elected"
    );
    (nodes, env, heartbeat)
}

fn heartbeat_to_follower(c: &mut Criterion) {
    let (mut nodes, mut env, heartbeat) = elected();
    let follower = &mut nodes[1];
    c.bench_function("native core: follower handles a heartbeat", |b| {
        b.iter(|| {
            follower.on_message("n1", black_box(&heartbeat), &mut env);
            black_box(follower.take_actions())
        })
    });
}

criterion_group!(benches, heartbeat_to_follower);
criterion_main!(benches);
