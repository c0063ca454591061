//! A deterministic simulator for clusters of the real election component.
//!
//! Each simulated node runs the compiled `.wasm` in a store of its own,
//! through the same [`ProtocolInstance`] a real node uses. Time is virtual:
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

pub mod chaos;
mod clock;
mod faults;
pub mod invariants;
pub mod network;
mod plugins;
pub mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};

use crate::bindings::types::{
    CampaignRefusal, Event, LogLevel, NodeStatus, Options, PersistedState, Role, Timings,
};
use crate::protocol::{Effect, ElectionComponent, Environment, ProtocolInstance};
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
    /// `None` while crashed.
    instance: Option<ProtocolInstance>,
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
    /// Its clock, shared with its protocol's environment (see `clock.rs`).
    clock: Arc<Mutex<NodeClock>>,
}

#[derive(Debug)]
enum Pending {
    Deliver {
        to: NodeIndex,
        from: NodeIndex,
        channel: Channel,
        payload: Vec<u8>,
    },
    /// The plugin of `node` has a wake-up due.
    PluginWake { node: NodeIndex, incarnation: u64 },
    /// The refusal back-off of `node` is over.
    HoldEnd { node: NodeIndex, incarnation: u64 },
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
            | Pending::HoldEnd { node, .. }
            | Pending::Unreachable { node, .. }
            | Pending::Timer { node, .. } => *node,
        }
    }
}

/// Which layer a simulated message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Protocol,
    Plugin,
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
            instance: None,
            incarnation: 0,
            disk: None,
            timers: BTreeSet::new(),
            leading: None,
            plugin: None,
            paused_until_ns: 0,
            previous_disk: None,
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
        if n.instance.take().is_some() {
            n.incarnation += 1;
            n.timers.clear();
            n.leading = None;
            n.plugin = None;
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
                        self.schedule(
                            at,
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
            Some(n) if n.instance.is_none() => self.boot(node),
            Some(_) => Ok(()),
            None => bail!("no node {node}"),
        }
    }

    /// Whether the node is running.
    pub fn is_up(&self, node: NodeIndex) -> bool {
        self.nodes.get(node).is_some_and(|n| n.instance.is_some())
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

    /// Ends every partition.
    pub fn heal(&mut self) {
        if self.partition.is_split() {
            self.trace_line("heal".into());
        }
        self.partition.heal();
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

    /// Calls `join(peer)` on a running node.
    pub fn join(&mut self, node: NodeIndex, peer: &str) -> anyhow::Result<()> {
        self.call(node, |i| i.join(peer))
    }

    /// Calls `transfer-leadership(to)` on a running node; a refusal is an
    /// error with the protocol's reason (and changes nothing).
    pub fn transfer_leadership(&mut self, node: NodeIndex, to: &str) -> anyhow::Result<()> {
        let Some(instance) = self.nodes.get_mut(node).and_then(|n| n.instance.as_mut()) else {
            bail!("node {node} is not running");
        };
        let effects = instance.transfer_leadership(to)?;
        self.stats.calls += 1;
        self.apply(node, effects);
        Ok(())
    }

    /// Calls `leave(member)` on a running node; a refusal is an error with
    /// the protocol's reason (and changes nothing).
    pub fn leave(&mut self, node: NodeIndex, member: &str) -> anyhow::Result<()> {
        let Some(instance) = self.nodes.get_mut(node).and_then(|n| n.instance.as_mut()) else {
            bail!("node {node} is not running");
        };
        let effects = instance.leave(member)?;
        self.stats.calls += 1;
        self.note(node, &format!("removed {member}"));
        self.removed.insert(member.to_string());
        self.apply(node, effects);
        Ok(())
    }

    /// How many members a successful [`Simulation::leave`] removed so far.
    pub fn removals(&self) -> usize {
        self.removed.len()
    }

    /// Calls `campaign()` on a running node: `Ok(Err(refusal))` if it
    /// will not stand (it leads, or is loyal to a live leader, …).
    pub fn campaign(&mut self, node: NodeIndex) -> anyhow::Result<Result<(), CampaignRefusal>> {
        let mut answer = Ok(());
        self.call(node, |i| {
            let (effects, refused) = i.campaign()?;
            answer = refused;
            Ok(effects)
        })?;
        if let Err(refusal) = &answer {
            let why = crate::protocol::explain_campaign_refusal(refusal);
            self.note(node, &format!("campaign refused: {why}"));
        }
        Ok(answer)
    }

    /// Calls `step-down()` on a running node.
    pub fn step_down(&mut self, node: NodeIndex) -> anyhow::Result<()> {
        self.call(node, |i| i.step_down())
    }

    /// Swaps a running node's protocol for another build (`component`):
    /// the old instance exports its whole state, a fresh instance of the new
    /// build imports it, and only then replaces the old one. Armed timers
    /// stay armed. On failure the old instance keeps running and the
    /// reason comes back. Returns the new build's version.
    pub fn swap_protocol(
        &mut self,
        node: NodeIndex,
        component: &ElectionComponent,
    ) -> anyhow::Result<String> {
        let Some(n) = self.nodes.get_mut(node) else {
            bail!("no node {node}");
        };
        let Some(old) = n.instance.as_mut() else {
            bail!("node {} is not running", n.spec.id);
        };
        let state = old.export_state().context("exporting the state")?;
        let env = SimEnvironment {
            shared: self.shared.clone(),
            rng: SimRng::derive(self.seed, (node as u64) << 32 | n.incarnation | 1 << 31),
            clock: n.clock.clone(),
        };
        let mut new = component.instantiate(&n.spec.id, Box::new(env))?;
        let effects = new.import_state(&n.spec.options(), &state)?;
        let version = new.version()?;
        n.instance = Some(new);
        self.note(node, &format!("protocol swapped to version {version}"));
        self.apply(node, effects);
        Ok(version)
    }

    /// A running node's status; `None` while it is crashed.
    pub fn status(&mut self, node: NodeIndex) -> Option<NodeStatus> {
        let result = self.nodes.get_mut(node)?.instance.as_mut()?.status();
        match result {
            Ok(status) => Some(status),
            Err(error) => {
                let what = format!("{} trapped in status: {error:#}", self.id(node));
                let at = self.now_ns();
                self.checker.violate(at, what);
                self.crash(node);
                None
            }
        }
    }

    /// Indices of the running nodes of `cluster`.
    pub fn live_nodes(&self, cluster: &str) -> Vec<NodeIndex> {
        (0..self.nodes.len())
            .filter(|&n| self.is_up(n) && self.nodes[n].spec.cluster_id == cluster)
            .collect()
    }

    /// Indices of the running nodes of `cluster` that believe they lead.
    pub fn leaders(&mut self, cluster: &str) -> Vec<NodeIndex> {
        self.live_nodes(cluster)
            .into_iter()
            .filter(|&n| self.status(n).is_some_and(|s| s.role == Role::Leader))
            .collect()
    }

    /// Indices of the running voters of `cluster`: running nodes that
    /// count themselves as members (not observers, not removed nodes).
    pub fn voters(&mut self, cluster: &str) -> Vec<NodeIndex> {
        self.live_nodes(cluster)
            .into_iter()
            .filter(|&n| {
                self.status(n)
                    .is_some_and(|s| s.members.contains(&s.node_id) && !s.abstaining)
            })
            .collect()
    }

    /// The leader and term every running voter of `cluster` agrees on, if
    /// they all do: each follows the same leader in the same term, and that
    /// leader is running and leads that term.
    pub fn agreement(&mut self, cluster: &str) -> Option<(String, u64)> {
        let voters = self.voters(cluster);
        self.agreement_among(&voters)
    }

    /// Like [`Simulation::agreement`], over the running nodes among
    /// `nodes` only (one side of a partition, say). The leader must be one
    /// of them.
    pub fn agreement_among(&mut self, nodes: &[NodeIndex]) -> Option<(String, u64)> {
        let mut agreed: Option<(String, u64)> = None;
        let mut leader_confirmed = false;
        for &n in nodes {
            if !self.is_up(n) {
                continue;
            }
            let s = self.status(n)?;
            let view = (s.leader.clone()?, s.term);
            if agreed.as_ref().is_some_and(|a| *a != view) {
                return None;
            }
            if s.role == Role::Leader && s.leader.as_deref() == Some(s.node_id.as_str()) {
                leader_confirmed = true;
            }
            agreed = Some(view);
        }
        agreed.filter(|_| leader_confirmed)
    }

    /// Runs until every running node of `cluster` agrees on one leader, or
    /// `bound_ns` of virtual time pass. Checks every 5 ms of virtual time.
    /// Returns the leader, its term and the virtual time it took.
    pub fn run_until_agreement(
        &mut self,
        cluster: &str,
        bound_ns: u64,
    ) -> anyhow::Result<(String, u64, u64)> {
        let start = self.now_ns();
        let deadline = start.saturating_add(bound_ns);
        loop {
            if let Some((leader, term)) = self.agreement(cluster) {
                return Ok((leader, term, self.now_ns() - start));
            }
            if self.now_ns() >= deadline {
                bail!(
                    "cluster {cluster} did not agree on a leader within {} ms (seed {})",
                    bound_ns / NS_PER_MS,
                    self.seed
                );
            }
            let step = (5 * NS_PER_MS).min(deadline - self.now_ns());
            self.run_for(step);
        }
    }

    /// Runs every event due in the next `duration_ns` of virtual time, then
    /// sets the clock to the end of that span.
    pub fn run_for(&mut self, duration_ns: u64) {
        let end = self.now_ns().saturating_add(duration_ns);
        while self.queue.peek().is_some_and(|Reverse(s)| s.at_ns <= end) {
            let Some(Reverse(next)) = self.queue.pop() else {
                break;
            };
            self.shared.now_ns.store(next.at_ns, Ordering::Relaxed);
            let paused_until = self
                .nodes
                .get(next.what.node())
                .map_or(0, |n| n.paused_until_ns);
            if paused_until > next.at_ns {
                // A frozen process handles nothing until it thaws; what
                // came for it is handled then, in the order it came.
                self.schedule(paused_until, next.what);
                continue;
            }
            self.dispatch(next.what);
        }
        self.shared.now_ns.store(end, Ordering::Relaxed);
    }

    /// Every safety violation seen so far.
    pub fn violations(&self) -> &[Violation] {
        self.checker.violations()
    }

    /// How many distinct terms had a leader (per cluster), so far.
    pub fn terms_with_leaders(&self) -> usize {
        self.checker.terms_with_leaders()
    }

    /// The run's trace: one line per event, fault and network change.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// A hash of everything that happened, effects and faults alike: two
    /// runs with equal fingerprints did the same thing.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Counters of the run so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ---- internals ----

    fn boot(&mut self, node: NodeIndex) -> anyhow::Result<()> {
        let at = self.now_ns();
        let n = &mut self.nodes[node];
        let env = SimEnvironment {
            shared: self.shared.clone(),
            rng: SimRng::derive(self.seed, (node as u64) << 32 | n.incarnation),
            clock: n.clock.clone(),
        };
        let mut instance = self.component.instantiate(&n.spec.id, Box::new(env))?;
        let effects = instance
            .start(&n.spec.options(), n.disk.as_ref())
            .with_context(|| format!("starting node {}", n.spec.id))?;
        let status = instance.status().context("reading status after start")?;
        n.instance = Some(instance);
        self.stats.calls += 1;
        let what = if n.incarnation == 0 {
            "started"
        } else {
            "restarted"
        };
        self.note(node, &format!("{what} at term {}", status.term));
        self.checker.started(at, node, &status);
        self.start_plugin(node, &status)?;
        self.apply(node, effects);
        Ok(())
    }

    /// Calls into a running node and applies the effects; a trap is a
    /// violation and crashes the node.
    fn call(
        &mut self,
        node: NodeIndex,
        f: impl FnOnce(&mut ProtocolInstance) -> anyhow::Result<Vec<Effect>>,
    ) -> anyhow::Result<()> {
        let Some(n) = self.nodes.get_mut(node) else {
            bail!("no node {node}");
        };
        let Some(instance) = n.instance.as_mut() else {
            bail!("node {} is not running", n.spec.id);
        };
        self.stats.calls += 1;
        let result = f(instance);
        match result {
            Ok(effects) => self.apply(node, effects),
            Err(error) => {
                let what = format!("{} trapped: {error:#}", self.id(node));
                let at = self.now_ns();
                self.checker.violate(at, what);
                self.crash(node);
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, what: Pending) {
        match what {
            Pending::Deliver {
                to,
                from,
                channel,
                payload,
            } => {
                if !self.is_up(to) || !self.partition.connected(from, to) {
                    self.stats.dropped += 1;
                    return;
                }
                self.stats.delivered += 1;
                self.hash(&payload);
                let sender = self.nodes[from].spec.id.clone();
                match channel {
                    // `call` only fails for a crashed node, checked above.
                    Channel::Protocol => {
                        let _ = self.call(to, |i| i.on_message(&sender, &payload));
                    }
                    Channel::Plugin => self.plugin_message(to, sender, payload),
                }
            }
            Pending::PluginWake { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation {
                    self.plugin_wake(node);
                }
            }
            Pending::Unreachable {
                node,
                incarnation,
                peer,
                peer_incarnation,
            } => {
                // Only if the peer is still down (a restart reconnects).
                let dead = self.nodes[peer].incarnation == peer_incarnation && !self.is_up(peer);
                if self.nodes[node].incarnation == incarnation && dead {
                    let peer_id = self.nodes[peer].spec.id.clone();
                    let _ = self.call(node, |i| i.peer_unreachable(&peer_id));
                }
            }
            Pending::HoldEnd { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation {
                    self.hold_end(node);
                }
            }
            Pending::Timer {
                node,
                incarnation,
                id,
            } => {
                let n = &mut self.nodes[node];
                if n.incarnation != incarnation || !n.timers.remove(&id) {
                    return;
                }
                if self.hold_timer(node, id) {
                    return;
                }
                self.stats.timers_fired += 1;
                self.hash(&id.to_le_bytes());
                let _ = self.call(node, |i| i.on_timer(id));
            }
        }
    }

    fn apply(&mut self, node: NodeIndex, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { to, payload } => self.send(node, &to, Channel::Protocol, payload),
                Effect::SetTimer { id, after_ns } => {
                    let after_ns = read_clock(&self.nodes[node].clock).span(after_ns);
                    let at_ns = self.now_ns().saturating_add(after_ns);
                    let n = &mut self.nodes[node];
                    n.timers.insert(id);
                    let incarnation = n.incarnation;
                    self.schedule(
                        at_ns,
                        Pending::Timer {
                            node,
                            incarnation,
                            id,
                        },
                    );
                }
                Effect::CancelTimer { id } => {
                    self.nodes[node].timers.remove(&id);
                }
                Effect::Emit(event) => self.on_event(node, event),
                Effect::Persist(state) => {
                    // A crash exactly around the write: before it (nothing
                    // saved, nothing sent) or after it (saved, but none of
                    // the messages that depend on it sent).
                    if self.rng.chance(self.crash_mid_call) {
                        let after = self.rng.chance(0.5);
                        if after {
                            self.save(node, state);
                        }
                        self.stats.mid_call_crashes += 1;
                        let when = if after { "after" } else { "before" };
                        self.note(node, &format!("crash {when} persisting"));
                        self.crash(node);
                        return;
                    }
                    self.save(node, state);
                }
                Effect::Log { level, message } => match level {
                    LogLevel::Warn => self.note(node, &format!("warn: {message}")),
                    LogLevel::Error => self.note(node, &format!("error: {message}")),
                    _ => {}
                },
            }
        }
        // A call may have extended the node's lease (an acknowledged round).
        self.check_lease(node);
    }

    /// The lease invariant for `node`, if it leads: it must not believe it
    /// holds a lease while a leader of a later term exists.
    fn check_lease(&mut self, node: NodeIndex) {
        if self.nodes[node].leading.is_none() {
            return;
        }
        let Some(status) = self.status(node) else {
            return;
        };
        let at = self.now_ns();
        let local = self.node_now_ns(node);
        self.checker.lease(at, local, &status);
    }

    fn save(&mut self, node: NodeIndex, state: PersistedState) {
        self.hash(&state.term.to_le_bytes());
        let at = self.now_ns();
        let id = self.nodes[node].spec.id.clone();
        self.checker.persisted(at, node, &id, &state);
        let cluster = self.nodes[node].spec.cluster_id.clone();
        self.checker.ballot(at, &cluster, &id, &state);
        let n = &mut self.nodes[node];
        n.previous_disk = n.disk.replace(state);
    }

    fn send(&mut self, from: NodeIndex, to: &str, channel: Channel, payload: Vec<u8>) {
        let targets = self.routes.get(to).cloned().unwrap_or_default();
        if targets.is_empty() {
            self.stats.sent += 1;
            self.stats.dropped += 1;
        }
        for target in targets {
            if target == from {
                continue;
            }
            self.stats.sent += 1;
            if !self.partition.connected(from, target) {
                self.stats.dropped += 1;
                continue;
            }
            let delays = self.network.delays(&mut self.rng);
            if delays.is_empty() {
                self.stats.dropped += 1;
            }
            let extra = self.partition.extra_delay(from, target);
            for delay in delays {
                let at_ns = self.now_ns().saturating_add(delay).saturating_add(extra);
                self.schedule(
                    at_ns,
                    Pending::Deliver {
                        to: target,
                        from,
                        channel,
                        payload: payload.clone(),
                    },
                );
            }
        }
    }

    fn on_event(&mut self, node: NodeIndex, event: Event) {
        let at = self.now_ns();
        let id = self.nodes[node].spec.id.clone();
        let line = match &event {
            Event::BecameLeader(term) => format!("became leader term={term}"),
            Event::BecameFollower(f) => format!(
                "became follower of {} term={}",
                f.leader.as_deref().unwrap_or("none"),
                f.term
            ),
            Event::TermChanged(t) => format!("term {} -> {}", t.old, t.new),
            Event::PeerJoined(p) => format!("peer joined {p}"),
            Event::PeerLeft(p) => format!("peer left {p}"),
        };
        self.note(node, &line);
        match &event {
            Event::TermChanged(t) => self.checker.term_changed(at, node, &id, t.old, t.new),
            Event::BecameLeader(term) => {
                self.nodes[node].leading = Some(*term);
                if let Some(status) = self.status(node) {
                    self.checker.became_leader(at, node, *term, &status);
                }
                // Every older leader's lease must have run out by now.
                let others: Vec<NodeIndex> = (0..self.nodes.len())
                    .filter(|&o| o != node && self.nodes[o].leading.is_some())
                    .collect();
                for other in others {
                    self.check_lease(other);
                }
            }
            Event::BecameFollower(_) => self.nodes[node].leading = None,
            _ => {}
        }
        self.plugin_event(node, event);
    }

    fn schedule(&mut self, at_ns: u64, what: Pending) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled { at_ns, seq, what }));
    }

    fn note(&mut self, node: NodeIndex, what: &str) {
        let spec = &self.nodes[node].spec;
        let line = format!("{}/{} {what}", spec.cluster_id, spec.id);
        self.trace_line(line);
    }

    fn trace_line(&mut self, line: String) {
        let now = self.now_ns();
        let mut stamped = String::with_capacity(line.len() + 16);
        let _ = write!(
            stamped,
            "{:>6}.{:03}ms {line}",
            now / NS_PER_MS,
            (now % NS_PER_MS) / 1000
        );
        self.hash(stamped.as_bytes());
        self.trace.push(stamped);
    }

    fn hash(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.fingerprint ^= u64::from(b);
            self.fingerprint = self.fingerprint.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
