//! A whole cluster on the native core, in virtual time: how much of the
//! simulator's cost per call is the protocol itself.
//!
//! ```text
//! cargo bench -p tenure-election-core --bench cluster -- [NODES] [SECONDS]
//! ```
//!
//! Starts `NODES` voters (51 by default), lets them elect a leader and runs
//! `SECONDS` (60) of virtual time with every message delivered after
//! 50–200 µs, then prints simulated seconds per wall second and the wall
//! time per call, and how many host imports each call made (each is one
//! crossing of the component boundary in the real guest). The simulator
//! (`tenure sim bench`) runs the same cluster through the compiled
//! component; the difference between the two is the
//! wasm crossing and the simulator's own bookkeeping. Profile it with
//! `perf record target/release/deps/cluster-*`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::time::Instant;

use tenure_election_core::{Action, Election, Environment, Options, Role, Timings};

/// A timer id, as the core picks them.
type TimerId = u64;

/// Virtual time, read by every node, and a SplitMix64 generator.
struct Env {
    now_ns: u64,
    seed: u64,
    /// Reads of the clock and draws of randomness: each is one import
    /// crossing in the component.
    clock_reads: u64,
    random_draws: u64,
}

impl Environment for Env {
    fn now_ns(&mut self) -> u64 {
        self.clock_reads += 1;
        self.now_ns
    }

    fn random_u64(&mut self) -> u64 {
        self.random_draws += 1;
        self.draw()
    }
}

impl Env {
    /// The next SplitMix64 value, uncounted (the network's own draws).
    fn draw(&mut self) -> u64 {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// What happens at an instant: a timer fires, or a message arrives.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Happening {
    Timer {
        node: usize,
        id: TimerId,
    },
    Message {
        from: usize,
        to: usize,
        payload: Vec<u8>,
    },
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-') && a.parse::<u64>().is_ok());
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(51);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let ids: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
    let mut env = Env {
        now_ns: 0,
        seed: 0x5eed,
        clock_reads: 0,
        random_draws: 0,
    };
    let mut cluster: Vec<Election> = ids
        .iter()
        .map(|id| {
            let options = Options {
                node_id: id.clone(),
                cluster_id: "bench".into(),
                bootstrap: ids.clone(),
                timings: Timings::default(),
                pre_vote: true,
                priority: 0,
                voter: true,
                joining: false,
            };
            Election::start(options, None, &mut env).expect("valid options")
        })
        .collect();
    let mut net = Network {
        queue: BinaryHeap::new(),
        armed: vec![HashSet::new(); nodes],
        order: 0,
        imports: Imports::default(),
    };
    let mut calls = 0u64;
    let end_ns = seconds * 1_000_000_000;
    let started = Instant::now();
    for (node, election) in cluster.iter_mut().enumerate() {
        net.collect(node, election, &ids, &mut env);
    }
    while let Some(Reverse((at, _, happening))) = net.queue.pop() {
        if at > end_ns {
            break;
        }
        env.now_ns = at;
        let node = match happening {
            Happening::Timer { node, id } => {
                if !net.armed[node].remove(&id) {
                    continue;
                }
                cluster[node].on_timer(id, &mut env);
                node
            }
            Happening::Message { from, to, payload } => {
                cluster[to].on_message(&ids[from], &payload, &mut env);
                to
            }
        };
        calls += 1;
        net.collect(node, &mut cluster[node], &ids, &mut env);
    }
    let wall = started.elapsed().as_secs_f64();
    let leaders = cluster
        .iter()
        .filter(|n| n.status().role == Role::Leader)
        .count();
    println!(
        "{nodes} nodes, {seconds} simulated s in {wall:.3} s wall: {:.0} simulated s per wall s; \
         {calls} calls ({:.0} per simulated s, {:.2} us each); {leaders} leader(s) at the end",
        seconds as f64 / wall,
        calls as f64 / seconds as f64,
        wall * 1e6 / calls.max(1) as f64,
    );
    let per_call = |n: u64| n as f64 / calls.max(1) as f64;
    let i = &net.imports;
    let total = i.sends + i.set_timers + i.cancel_timers + i.others + i.status_changes;
    let total = total + env.clock_reads + env.random_draws;
    println!(
        "imports per call (each one crossing in the component): {:.2} in all; \
         send {:.2}, set-timer {:.2}, cancel-timer {:.2}, status-changed {:.2}, \
         now {:.2}, random {:.2}, emit/persist/log {:.3}",
        per_call(total),
        per_call(i.sends),
        per_call(i.set_timers),
        per_call(i.cancel_timers),
        per_call(i.status_changes),
        per_call(env.clock_reads),
        per_call(env.random_draws),
        per_call(i.others),
    );
}

/// How many of each host import the nodes' calls made.
#[derive(Default)]
struct Imports {
    sends: u64,
    set_timers: u64,
    cancel_timers: u64,
    status_changes: u64,
    /// `emit`, `persist` and `log`: rare in a steady cluster.
    others: u64,
}

/// The virtual network: what happens next, in time order, and each
/// node's armed timers.
struct Network {
    queue: BinaryHeap<Reverse<(u64, u64, Happening)>>,
    armed: Vec<HashSet<TimerId>>,
    /// Breaks ties between happenings at one instant: first made, first.
    order: u64,
    imports: Imports,
}

impl Network {
    /// Takes `node`'s actions: sends become deliveries 50–200 µs later,
    /// timers are armed or disarmed; the status is read as a host would.
    fn collect(&mut self, node: usize, election: &mut Election, ids: &[String], env: &mut Env) {
        let now = env.now_ns;
        for action in election.take_actions() {
            self.order += 1;
            match action {
                Action::Send { to, payload } => {
                    self.imports.sends += 1;
                    if let Some(to) = ids.iter().position(|id| *id == to) {
                        let delay = 50_000 + env.draw() % 150_000;
                        let message = Happening::Message {
                            from: node,
                            to,
                            payload,
                        };
                        self.queue.push(Reverse((now + delay, self.order, message)));
                    }
                }
                Action::SetTimer { id, after_ns } => {
                    self.imports.set_timers += 1;
                    self.armed[node].insert(id);
                    let timer = Happening::Timer { node, id };
                    self.queue
                        .push(Reverse((now + after_ns, self.order, timer)));
                }
                Action::CancelTimer { id } => {
                    self.imports.cancel_timers += 1;
                    self.armed[node].remove(&id);
                }
                Action::Emit(_) | Action::Persist(_) | Action::Log { .. } => {
                    self.imports.others += 1;
                }
            }
        }
        if std::hint::black_box(election.status_change()).is_some() {
            self.imports.status_changes += 1;
        }
    }
}
