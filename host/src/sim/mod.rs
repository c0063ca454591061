//! A deterministic simulator for clusters of the real election component.
//!
//! Each simulated node runs the compiled `.wasm` in a store of its own,
//! through the same [`ProtocolInstance`](crate::ProtocolInstance) a real node uses. Time is virtual:
//! the simulation jumps from one scheduled event (a message delivery, a
//! timer) to the next. One seed drives everything random — network delays,
//! loss, each node's election timeouts — so a seed replays a run exactly.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use tenure_host::sim::{NodeSpec, Simulation};
//! # fn demo(component: Arc<tenure_host::ElectionComponent>) -> anyhow::Result<()> {
//! let mut sim = Simulation::new(component, 42);
//! for id in ["n1", "n2", "n3"] {
//!     sim.add_node(NodeSpec::new(id, "demo", &["n1", "n2", "n3"]))?;
//! }
//! let (leader, term, _elapsed) = sim.run_until_agreement("demo", 3_000_000_000)?;
//! println!("{leader} leads term {term}");
//! assert!(sim.violations().is_empty());
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`rng`]: the seeded generator.
//! - [`network`]: delay, loss, duplication, reordering, partitions.
//! - [`invariants`]: the safety checks run on every event.
//! - [`chaos`]: the randomized fault scenario and its many-seed runner.
//! - `plugins.rs`: behaviour plugins beside the protocol, through the same
//!   [`crate::plugin::driver::PluginDriver`] a real node uses.
//! - `engine.rs`: booting nodes, calling their components, carrying out
//!   their effects, the event queue's dispatch, the trace.
//! - `operators.rs`: join, transfer, leave, campaign, step-down, swap.
//! - `queries.rs`: statuses, leaders, agreement, trace and fingerprint.
//! - `faults.rs`, `clock.rs`: the faults beyond the network, and each
//!   node's drifting clock.

pub mod chaos;
mod clock;
mod engine;
mod faults;
pub mod invariants;
pub mod network;
mod operators;
mod plugins;
mod queries;
pub mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};

use crate::bindings::types::{
    CampaignRefusal, ChangeRefusal, Event, LogLevel, NodeStatus, Options, PersistedState, Role,
    Timings,
};
use crate::node::durability::Durability;
use crate::node_core::{CoreSettings, Lane, NodeCore, Output};
use crate::protocol::{ElectionComponent, Environment};
use clock::NodeClock;
use invariants::Checker;
pub use invariants::Violation;
pub use network::NetworkConfig;
use network::Partition;
pub use plugins::SimPlugin;
use rng::SimRng;

/// Index of a node in a [`Simulation`], in the order it was added.
pub type NodeIndex = usize;

const NS_PER_MS: u64 = 1_000_000;

/// How to start a simulated node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's id. Nodes of different clusters may share ids: a message
    /// to an id reaches every node with that id, which is how tests put two
    /// clusters on one network.
    pub id: String,
    /// The node's cluster id.
    pub cluster_id: String,
    /// Voting members known at start.
    pub bootstrap: Vec<String>,
    /// Election timings.
    pub timings: Timings,
    /// The behaviour plugin the node runs, if any.
    pub plugin: Option<SimPlugin>,
    /// Whether the protocol runs pre-votes (default on).
    pub pre_vote: bool,
    /// How fast this node's clock runs against true (virtual) time, in
    /// parts per million: 10_000 is 1 % fast, -10_000 1 % slow. Its
    /// protocol reads this clock and its timers run on it. Default 0.
    pub clock_drift_ppm: i32,
    /// Leadership priority (see `options.priority` in `wit/types.wit`).
    pub priority: u8,
    /// False for an observer: follows, never votes or stands.
    pub voter: bool,
    /// True to join the running cluster of `bootstrap` rather than
    /// bootstrap one with it (see `options.joining` in `wit/types.wit`).
    pub joining: bool,
}

impl NodeSpec {
    /// A node with default timings.
    pub fn new(id: &str, cluster_id: &str, bootstrap: &[&str]) -> Self {
        NodeSpec {
            id: id.into(),
            cluster_id: cluster_id.into(),
            bootstrap: bootstrap.iter().map(|s| s.to_string()).collect(),
            timings: Timings::default(),
            plugin: None,
            pre_vote: true,
            clock_drift_ppm: 0,
            priority: 0,
            voter: true,
            joining: false,
        }
    }

    /// The same node, running `plugin`.
    pub fn with_plugin(mut self, plugin: SimPlugin) -> Self {
        self.plugin = Some(plugin);
        self
    }

    fn options(&self) -> Options {
        Options {
            node_id: self.id.clone(),
            cluster_id: self.cluster_id.clone(),
            bootstrap: self.bootstrap.clone(),
            timings: self.timings,
            pre_vote: self.pre_vote,
            priority: self.priority,
            voter: self.voter,
            joining: self.joining,
        }
    }
}

/// State every node's environment shares with the simulation.
#[derive(Default)]
struct Shared {
    /// Virtual time, in nanoseconds.
    now_ns: AtomicU64,
    /// When set, every node draws this value instead of a random one: all
    /// election timers then expire together, forcing split votes.
    fixed_random: Mutex<Option<u64>>,
}

/// A node's view of time and randomness: virtual, and seeded.
struct SimEnvironment {
    shared: Arc<Shared>,
    rng: SimRng,
    clock: Arc<Mutex<NodeClock>>,
}

/// Reads a node's clock (a poisoned lock still holds a valid clock).
fn read_clock(clock: &Mutex<NodeClock>) -> NodeClock {
    *clock.lock().unwrap_or_else(|e| e.into_inner())
}

impl Environment for SimEnvironment {
    fn now_ns(&mut self) -> u64 {
        read_clock(&self.clock).local(self.shared.now_ns.load(Ordering::Relaxed))
    }

    fn random_u64(&mut self) -> u64 {
        let fixed = match self.shared.fixed_random.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        };
        fixed.unwrap_or_else(|| self.rng.next_u64())
    }
}

struct SimNode {
    spec: NodeSpec,
    /// The node's protocol and policy (the same [`NodeCore`] a real node
    /// runs); `None` while crashed.
    core: Option<NodeCore>,
    /// Bumped on every crash, so timers of a previous life never fire.
    incarnation: u64,
    /// What the node persisted: survives crashes, like a disk.
    disk: Option<PersistedState>,
    /// Timers armed and not yet fired or cancelled.
    timers: BTreeSet<u64>,
    /// The term this node leads, if it does (from its events).
    leading: Option<u64>,
    /// The node's plugin and its view; see `plugins.rs`.
    plugin: Option<plugins::NodePlugin>,
    /// Until when the node's process is frozen (see `faults.rs`): what
    /// arrives for it meanwhile waits, as in a socket buffer.
    paused_until_ns: u64,
    /// The state it persisted before the latest write, for a lost fsync.
    previous_disk: Option<PersistedState>,
    /// Whether its disk is full (see `fill_disk`): every save fails.
    disk_full: bool,
    /// What the node does while it cannot save: the real node's policy
    /// (`node::durability`), in virtual time.
    durability: Durability,
    /// Its clock, shared with its protocol's environment (see `clock.rs`).
    clock: Arc<Mutex<NodeClock>>,
}

#[derive(Debug)]
enum Pending {
    Deliver {
        to: NodeIndex,
        from: NodeIndex,
        lane: Lane,
        payload: Vec<u8>,
    },
    /// The plugin of `node` has a wake-up due.
    PluginWake { node: NodeIndex, incarnation: u64 },
    /// `node`, quiet since a save failed, tries to save again.
    PersistRetry { node: NodeIndex, incarnation: u64 },
    /// `node`'s host saw `peer`'s process die (connection closed, reconnect
    /// refused); see [`Simulation::set_crash_detection`].
    Unreachable {
        node: NodeIndex,
        incarnation: u64,
        peer: NodeIndex,
        peer_incarnation: u64,
    },
    Timer {
        node: NodeIndex,
        incarnation: u64,
        id: u64,
    },
}

impl Pending {
    /// The node that handles this event.
    fn node(&self) -> NodeIndex {
        match self {
            Pending::Deliver { to, .. } => *to,
            Pending::PluginWake { node, .. }
            | Pending::PersistRetry { node, .. }
            | Pending::Unreachable { node, .. }
            | Pending::Timer { node, .. } => *node,
        }
    }
}

/// An entry of the event queue, ordered by time, then by scheduling order,
/// so simultaneous events run in a reproducible order.
#[derive(Debug)]
struct Scheduled {
    at_ns: u64,
    seq: u64,
    what: Pending,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ns, self.seq) == (other.at_ns, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_ns, self.seq).cmp(&(other.at_ns, other.seq))
    }
}

/// Counters of a run, for reports and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered to a running node.
    pub delivered: u64,
    /// Messages lost: by the loss rate, a partition, or a crashed receiver.
    pub dropped: u64,
    /// Timers that fired.
    pub timers_fired: u64,
    /// Calls into components (start, message, timer, join, step-down).
    pub calls: u64,
    /// Crashes injected right before or after a persist.
    pub mid_call_crashes: u64,
}

/// A simulated cluster (or several) of election components. See the
/// module docs for an example.
pub struct Simulation {
    component: Arc<ElectionComponent>,
    seed: u64,
    shared: Arc<Shared>,
    /// Drives the network; nodes have their own generators.
    rng: SimRng,
    nodes: Vec<SimNode>,
    /// Node indices by id.
    routes: BTreeMap<String, Vec<NodeIndex>>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    network: NetworkConfig,
    partition: Partition,
    /// Probability that a node crashes right before or right after
    /// persisting (see [`Simulation::set_crash_mid_call`]).
    crash_mid_call: f64,
    /// How long after a crash the other hosts see it, if they do.
    crash_detection_ns: Option<u64>,
    /// Up to how much later than that each survivor sees it (see
    /// [`Simulation::set_crash_detection_spread`]).
    crash_detection_spread_ns: u64,
    /// Draws each survivor's share of that spread: a stream of its own, so
    /// a run without spread makes the draws it always made.
    detection_rng: SimRng,
    /// Disks wiped so far (see `faults.rs`).
    wiped_disks: usize,
    /// Members removed with a successful `leave` so far (a removal asked
    /// again is no new one).
    removed: BTreeSet<String>,
    checker: Checker,
    trace: Vec<String>,
    /// FNV-1a over every effect and fault: equal for equal runs.
    fingerprint: u64,
    stats: Stats,
}

impl Simulation {
    /// The election component nodes boot with (and a swap to the same
    /// build takes): `sim.swap_protocol(node, &sim.component().clone())`.
    pub fn component(&self) -> &Arc<ElectionComponent> {
        &self.component
    }

    /// An empty simulation at virtual time zero, driven by `seed`.
    pub fn new(component: Arc<ElectionComponent>, seed: u64) -> Self {
        Simulation {
            component,
            seed,
            shared: Arc::new(Shared::default()),
            rng: SimRng::derive(seed, u64::MAX),
            nodes: Vec::new(),
            routes: BTreeMap::new(),
            queue: BinaryHeap::new(),
            next_seq: 0,
            network: NetworkConfig::default(),
            partition: Partition::default(),
            crash_mid_call: 0.0,
            crash_detection_ns: None,
            crash_detection_spread_ns: 0,
            detection_rng: SimRng::derive(seed, 0xde7ec7),
            wiped_disks: 0,
            removed: BTreeSet::new(),
            checker: Checker::default(),
            trace: Vec::new(),
            fingerprint: 0xcbf2_9ce4_8422_2325,
            stats: Stats::default(),
        }
    }

    /// The seed this run was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time now, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns.load(Ordering::Relaxed)
    }

    /// Node `node`'s own clock now, in nanoseconds: what its protocol and
    /// plugin read as the time.
    pub fn node_now_ns(&self, node: NodeIndex) -> u64 {
        self.nodes
            .get(node)
            .map_or(0, |n| read_clock(&n.clock).local(self.now_ns()))
    }

    /// Adds and starts a node now; returns its index.
    pub fn add_node(&mut self, spec: NodeSpec) -> anyhow::Result<NodeIndex> {
        let index = self.nodes.len();
        self.routes.entry(spec.id.clone()).or_default().push(index);
        let spec_drift = spec.clock_drift_ppm;
        self.nodes.push(SimNode {
            spec,
            core: None,
            incarnation: 0,
            disk: None,
            timers: BTreeSet::new(),
            leading: None,
            plugin: None,
            paused_until_ns: 0,
            previous_disk: None,
            disk_full: false,
            durability: Durability::default(),
            clock: Arc::new(Mutex::new(NodeClock::drifting(spec_drift))),
        });
        self.boot(index)?;
        Ok(index)
    }

    /// Adds and starts `count` nodes `n1`…`nN` of `cluster`, each
    /// bootstrapped with all of them; `configure` may adjust each spec
    /// (timings, pre-vote, a plugin) before it starts.
    pub fn add_cluster(
        &mut self,
        cluster: &str,
        count: usize,
        mut configure: impl FnMut(&mut NodeSpec),
    ) -> anyhow::Result<Vec<NodeIndex>> {
        let ids: Vec<String> = (1..=count).map(|i| format!("n{i}")).collect();
        let bootstrap: Vec<&str> = ids.iter().map(String::as_str).collect();
        ids.iter()
            .map(|id| {
                let mut spec = NodeSpec::new(id, cluster, &bootstrap);
                configure(&mut spec);
                self.add_node(spec)
            })
            .collect()
    }

    /// Kills a node: its process state and timers are gone, its disk
    /// (persisted state) stays. Messages to it are dropped until restart.
    pub fn crash(&mut self, node: NodeIndex) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if n.core.take().is_some() {
            n.incarnation += 1;
            n.timers.clear();
            n.leading = None;
            n.plugin = None;
            // What it could not save is lost with the process; it had
            // spoken in none of it.
            if n.durability.quiet() {
                let saved_term = n.disk.as_ref().map_or(0, |d| d.term);
                self.checker.unsaved_terms_lost(node, saved_term);
            }
            let n = &mut self.nodes[node];
            n.durability = Durability::default();
            let peer_incarnation = n.incarnation;
            self.note(node, "crashed");
            if let Some(delay) = self.crash_detection_ns {
                let at = self.now_ns().saturating_add(delay);
                for other in 0..self.nodes.len() {
                    // The transport's rule (`tenure_transport::death`):
                    // the crashed node's connection to `other` closes and
                    // `other`'s redial is refused — both need the link.
                    let sees = self.partition.connected(node, other)
                        && self.partition.connected(other, node);
                    if other != node && self.is_up(other) && sees {
                        let incarnation = self.nodes[other].incarnation;
                        // No spread draws nothing (`range(0, 0)` is 0).
                        let late = self.detection_rng.range(0, self.crash_detection_spread_ns);
                        self.schedule(
                            at.saturating_add(late),
                            Pending::Unreachable {
                                node: other,
                                incarnation,
                                peer: node,
                                peer_incarnation,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Restarts a crashed node from what it persisted. A running node is
    /// left alone.
    pub fn restart(&mut self, node: NodeIndex) -> anyhow::Result<()> {
        match self.nodes.get(node) {
            Some(n) if n.core.is_none() => self.boot(node),
            Some(_) => Ok(()),
            None => bail!("no node {node}"),
        }
    }

    /// Whether the node is running.
    pub fn is_up(&self, node: NodeIndex) -> bool {
        self.nodes.get(node).is_some_and(|n| n.core.is_some())
    }

    /// Number of nodes added.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The id of node `node`.
    pub fn id(&self, node: NodeIndex) -> &str {
        self.nodes.get(node).map_or("", |n| n.spec.id.as_str())
    }

    /// Replaces the network's fault model for messages sent from now on.
    pub fn set_network(&mut self, network: NetworkConfig) {
        self.trace_line(format!("network {network:?}"));
        self.network = network;
    }

    /// The current fault model.
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }

    /// Splits the network: each slice of node indices is a group that
    /// only talks within itself; unnamed nodes form one more group.
    pub fn partition(&mut self, groups: &[&[NodeIndex]]) {
        self.partition.split(self.nodes.len(), groups);
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|&n| self.id(n)).collect())
            .collect();
        self.trace_line(format!("partition {names:?}"));
    }

    /// Makes each persist crash its node with probability `p`, right
    /// before the write or right after it (then none of the messages that
    /// depend on it leave): every point between persist and send. Restart
    /// crashed nodes with [`Simulation::restart`].
    pub fn set_crash_mid_call(&mut self, p: f64) {
        self.trace_line(format!("crash around persists with probability {p}"));
        self.crash_mid_call = p;
    }

    /// Models what a real host's transport notices when a peer's process
    /// dies: its connection closes and a reconnect is refused. With
    /// `Some(delay)`, `delay` after a crash every running node reachable
    /// from the crashed one is told `peer-unreachable` (a partition hides
    /// a crash, as a frozen process does). `None` (the default) tells no
    /// one.
    pub fn set_crash_detection(&mut self, delay_ns: Option<u64>) {
        self.crash_detection_ns = delay_ns;
    }

    /// Spreads the moments the survivors see a crash: each running node is
    /// told up to `spread_ns` (uniform, drawn per node) after the delay of
    /// [`Simulation::set_crash_detection`], as real hosts are, each woken
    /// to read the close and redial when the scheduler gets to it (0.2–3.3
    /// ms apart for seven processes on two cores; BENCHMARKS.md, *Kill
    /// path at the floor*). So the first in line may stand before the
    /// voters have seen the death. Zero (the default) tells all at once.
    pub fn set_crash_detection_spread(&mut self, spread_ns: u64) {
        self.trace_line(format!("crash detection spread {spread_ns} ns"));
        self.crash_detection_spread_ns = spread_ns;
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        if self.partition.is_split() {
            self.trace_line("heal".into());
        }
        self.partition.heal();
        self.heal_disks();
    }

    /// Makes every node draw `value` instead of random numbers (`None`
    /// restores randomness). With one value, all election timers that are
    /// armed together expire together: a way to force split votes.
    pub fn fix_randomness(&mut self, value: Option<u64>) {
        match self.shared.fixed_random.lock() {
            Ok(mut guard) => *guard = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
        self.trace_line(format!("randomness fixed to {value:?}"));
    }
}
