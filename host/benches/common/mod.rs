//! What the host's benchmarks share: the compiled election component and a
//! small cluster of its instances with an elected leader.

#![allow(dead_code)] // each bench uses part of this

use std::collections::VecDeque;
use std::sync::Arc;

use tenure_host::bindings::types::{Options, Timings};
use tenure_host::{Effect, ElectionComponent, Environment, ProtocolInstance};
use wasmtime::Engine;

/// A clock that moves forward a microsecond per read, and xorshift bits:
/// the same environment the native core's benchmark uses.
pub struct Env {
    now_ns: u64,
    seed: u64,
}

impl Env {
    pub fn new() -> Env {
        Env {
            now_ns: 0,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
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

/// The election component embedded in `tenure` (or, if this build has
/// none, the one `scripts/build-guests.sh` built), compiled once.
pub fn component() -> Arc<ElectionComponent> {
    match tenure_host::builtin::ELECTION {
        Some(bytes) => Arc::new(
            ElectionComponent::from_bytes(&Engine::default(), bytes)
                .expect("the embedded component compiles"),
        ),
        None => tenure_host::component_path::load_election(None)
            .expect("build the guests first: scripts/build-guests.sh"),
    }
}

pub const IDS: [&str; 3] = ["n1", "n2", "n3"];

/// Three started instances; n1 campaigns and every message is delivered
/// until none is left. Returns the instances and the last payload n1 sent
/// n2 (a heartbeat from the new leader).
pub fn elected(component: &ElectionComponent) -> (Vec<ProtocolInstance>, Vec<u8>) {
    let mut nodes = Vec::new();
    let mut queue: VecDeque<(usize, usize, Vec<u8>)> = VecDeque::new();
    let mut heartbeat = Vec::new();
    let mut route = |from: usize, effects: Vec<Effect>, queue: &mut VecDeque<_>| {
        for effect in effects {
            if let Effect::Send { to, payload } = effect
                && let Some(to) = IDS.iter().position(|id| *id == to)
            {
                if from == 0 && to == 1 {
                    heartbeat = payload.clone();
                }
                queue.push_back((from, to, payload));
            }
        }
    };
    for (i, id) in IDS.iter().enumerate() {
        let mut node = component
            .instantiate(id, Box::new(Env::new()))
            .expect("instantiates");
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
        let effects = node.start(&options, None).expect("starts");
        route(i, effects, &mut queue);
        nodes.push(node);
    }
    macro_rules! deliver {
        () => {
            for _ in 0..1_000 {
                let Some((from, to, payload)) = queue.pop_front() else {
                    break;
                };
                let effects = nodes[to].on_message(IDS[from], &payload).expect("handles");
                route(to, effects, &mut queue);
            }
        };
    }
    // A fresh node stands only once a majority confirmed its new data id:
    // let the start-up exchange finish first.
    deliver!();
    let (effects, answer) = nodes[0].campaign().expect("campaigns");
    answer.expect("a fresh node stands");
    route(0, effects, &mut queue);
    deliver!();
    let status = nodes[1].status();
    assert_eq!(status.leader.as_deref(), Some("n1"), "n1 was not elected");
    assert!(!heartbeat.is_empty(), "n1 never sent n2 anything");
    (nodes, heartbeat)
}
