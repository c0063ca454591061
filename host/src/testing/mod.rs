//! Testing behaviour plugins at component level: your `.wasm`, beside the
//! real election component, on a simulated cluster in virtual time.
//!
//! A [`Cluster`] starts N nodes (`n1`…`nN`), each running the election
//! component and your plugin through the same plugin driver a real node
//! uses — deadlines, memory caps, traps, refusals and hot swaps behave as
//! in production. You crash, restart and partition nodes, advance virtual
//! time (seconds of it take milliseconds), and assert on what the
//! behaviour did: its log lines ([`Cluster::logs`]), its answers to calls
//! ([`Cluster::call`]) and [`Cluster::inspect`]. Every run is checked
//! against the election's safety invariants, and one seed replays it
//! exactly.
//!
//! ```no_run
//! use std::time::Duration;
//! use tenure_host::testing::{Cluster, Plugin};
//!
//! # fn main() -> Result<(), tenure_host::testing::TestingError> {
//! let plugin = Plugin::load("target/wasm32-wasip2/release/my_plugin.wasm")?
//!     .config("period-ms", "500");
//! let mut cluster = Cluster::new(3, &plugin)?;
//! let first = cluster.elect()?;
//! cluster.run_for(Duration::from_secs(5));
//! cluster.crash(first.index);
//! let second = cluster.elect()?;
//! assert_ne!(first.id, second.id);
//! assert!(second.term > first.term);
//! for line in cluster.logs() {
//!     println!("{:?} {} {}", line.at, line.node, line.message);
//! }
//! cluster.check_safety()?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - this file: [`Cluster`] and [`ClusterBuilder`];
//! - `plugin.rs`: [`Plugin`], a compiled plugin with its config;
//! - `trace.rs`: [`PluginLog`] and [`Leadership`], read from the trace;
//! - `ports.rs`: [`ports`], loopback ports for tests of real processes
//!   that no other test of the run can hold;
//! - `processes.rs`: [`processes`], loopback clusters of real `tenure
//!   run` processes, for the multi-process tests and `tenure-bench`.

mod plugin;
pub mod ports;
pub mod processes;
mod trace;

use std::time::Duration;

pub use plugin::Plugin;
pub use trace::{Leadership, PluginLog};

use crate::bindings::types::{NodeStatus, Timings};
use crate::sim::{NetworkConfig, NodeIndex, NodeSpec, Simulation};

/// The cluster id every [`Cluster`] uses.
pub const CLUSTER_ID: &str = "test";

/// Why a harness call failed. Each says what to do about it.
///
/// ```
/// use tenure_host::testing::TestingError;
/// let error = TestingError::PluginNotBuilt { path: "p.wasm".into() };
/// assert!(error.to_string().contains("cargo build --release --target wasm32-wasip2"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    /// The plugin's `.wasm` is not there.
    #[error(
        "plugin not found at {}: build it first with \
         `cargo build --release --target wasm32-wasip2`",
        path.display()
    )]
    PluginNotBuilt {
        /// Where it was looked for.
        path: std::path::PathBuf,
    },
    /// A component did not compile or does not fit its world.
    #[error("cannot load {what}: {reason}")]
    Load {
        /// Which component.
        what: String,
        /// Why.
        reason: String,
    },
    /// A node did not start (for a plugin: its `init` refused its config
    /// or trapped).
    #[error("node {node} did not start: {reason}")]
    Start {
        /// The node's id.
        node: String,
        /// Why.
        reason: String,
    },
    /// The running nodes did not agree on a leader in time.
    #[error("{reason}\ntrace tail:\n{trace_tail}")]
    NoLeader {
        /// What the simulator said (with the seed).
        reason: String,
        /// The last lines of the trace.
        trace_tail: String,
    },
    /// The run broke an election invariant (two leaders in a term, a
    /// term going backwards, …): a protocol bug, reported with the seed.
    #[error("seed {seed}: invariants violated: {violations}\ntrace tail:\n{trace_tail}")]
    Unsafe {
        /// The seed that replays the run.
        seed: u64,
        /// The violations, one per line.
        violations: String,
        /// The last lines of the trace.
        trace_tail: String,
    },
}

/// How to start a [`Cluster`]: size, seed, timings, per-node plugins.
///
/// ```no_run
/// use tenure_host::testing::{Cluster, Plugin};
///
/// # fn main() -> Result<(), tenure_host::testing::TestingError> {
/// let plugin = Plugin::load("my_plugin.wasm")?;
/// let cluster = Cluster::builder(5)
///     .seed(42)
///     .plugin(&plugin)
///     .timings(100, 200, 25)
///     .start()?;
/// # Ok(()) }
/// ```
pub struct ClusterBuilder {
    nodes: usize,
    seed: u64,
    plugins: Vec<Option<Plugin>>,
    timings: Timings,
}

impl ClusterBuilder {
    /// The seed that drives every random choice (default 1): the same
    /// seed replays the same run.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// let builder = tenure_host::testing::Cluster::builder(3).seed(7).plugin(&plugin);
    /// ```
    pub fn seed(mut self, seed: u64) -> ClusterBuilder {
        self.seed = seed;
        self
    }

    /// Every node runs `plugin`.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// let builder = tenure_host::testing::Cluster::builder(3).plugin(&plugin);
    /// ```
    pub fn plugin(mut self, plugin: &Plugin) -> ClusterBuilder {
        self.plugins = vec![Some(plugin.clone()); self.nodes];
        self
    }

    /// Node `n{number}` (1-based) runs `plugin` (or none): mix versions
    /// or configs across the cluster.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// let builder = tenure_host::testing::Cluster::builder(3)
    ///     .plugin(&plugin)
    ///     .plugin_on(1, Some(plugin.clone().config("mode", "refuse")));
    /// ```
    pub fn plugin_on(mut self, number: usize, plugin: Option<Plugin>) -> ClusterBuilder {
        if let Some(slot) = number.checked_sub(1).and_then(|i| self.plugins.get_mut(i)) {
            *slot = plugin;
        }
        self
    }

    /// Election timings in milliseconds: timeout range and heartbeat
    /// interval (default 150, 300, 50).
    ///
    /// ```no_run
    /// let builder = tenure_host::testing::Cluster::builder(3).timings(100, 200, 25);
    /// ```
    pub fn timings(mut self, min_ms: u32, max_ms: u32, heartbeat_ms: u32) -> ClusterBuilder {
        self.timings.election_timeout_min_ms = min_ms;
        self.timings.election_timeout_max_ms = max_ms;
        self.timings.heartbeat_interval_ms = heartbeat_ms;
        self
    }

    /// Starts the nodes at virtual time zero: each runs the election
    /// component and `init`s its plugin.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// let cluster = tenure_host::testing::Cluster::builder(3).plugin(&plugin).start();
    /// ```
    pub fn start(self) -> Result<Cluster, TestingError> {
        let election = plugin::election()?;
        let mut sim = Simulation::new(election, self.seed);
        let ids: Vec<String> = (1..=self.nodes).map(|i| format!("n{i}")).collect();
        let bootstrap: Vec<&str> = ids.iter().map(String::as_str).collect();
        for (id, plugin) in ids.iter().zip(self.plugins) {
            let mut spec = NodeSpec::new(id, CLUSTER_ID, &bootstrap);
            spec.timings = self.timings;
            spec.plugin = plugin.map(|p| p.sim_plugin());
            sim.add_node(spec).map_err(|e| TestingError::Start {
                node: id.clone(),
                reason: format!("{e:#}"),
            })?;
        }
        Ok(Cluster { sim })
    }
}

/// The leader a cluster agreed on.
///
/// ```no_run
/// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
/// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
/// let leader = cluster.elect().unwrap();
/// println!("{} (node index {}) leads term {}", leader.id, leader.index, leader.term);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The node's index (0 for `n1`), for [`Cluster::crash`] and friends.
    pub index: NodeIndex,
    /// The node's id.
    pub id: String,
    /// The term it leads.
    pub term: u64,
}

/// A simulated cluster running your plugin. See the module docs.
pub struct Cluster {
    sim: Simulation,
}

impl Cluster {
    /// `nodes` nodes `n1`…`nN`, all running `plugin`, seed 1, default
    /// timings.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// let cluster = tenure_host::testing::Cluster::new(3, &plugin);
    /// ```
    pub fn new(nodes: usize, plugin: &Plugin) -> Result<Cluster, TestingError> {
        Cluster::builder(nodes).plugin(plugin).start()
    }

    /// A builder for a cluster of `nodes` nodes, with no plugin yet.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// let cluster = tenure_host::testing::Cluster::builder(5).seed(3).plugin(&plugin).start();
    /// ```
    pub fn builder(nodes: usize) -> ClusterBuilder {
        ClusterBuilder {
            nodes,
            seed: 1,
            plugins: vec![None; nodes],
            timings: Timings::default(),
        }
    }

    /// Runs until every running node agrees on one leader (within ten
    /// maximum election timeouts), and returns it.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let leader = cluster.elect().unwrap();
    /// assert_eq!(cluster.status(leader.index).unwrap().term, leader.term);
    /// ```
    pub fn elect(&mut self) -> Result<Leader, TestingError> {
        let bound = Duration::from_millis(3_000);
        self.elect_within(bound)
    }

    /// Like [`Cluster::elect`], waiting at most `bound` of virtual time.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let leader = cluster.elect_within(Duration::from_secs(1));
    /// ```
    pub fn elect_within(&mut self, bound: Duration) -> Result<Leader, TestingError> {
        let bound_ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        match self.sim.run_until_agreement(CLUSTER_ID, bound_ns) {
            Ok((id, term, _)) => {
                let index = (0..self.sim.node_count())
                    .find(|&n| self.sim.id(n) == id)
                    .unwrap_or_default();
                Ok(Leader { index, id, term })
            }
            Err(e) => Err(TestingError::NoLeader {
                reason: format!("{e:#}"),
                trace_tail: self.trace_tail(),
            }),
        }
    }

    /// Advances virtual time by `duration`, running everything due:
    /// messages, election timers, plugin wake-ups.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// cluster.run_for(Duration::from_secs(10)); // takes milliseconds
    /// ```
    pub fn run_for(&mut self, duration: Duration) {
        self.sim
            .run_for(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Virtual time since the cluster started.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// cluster.run_for(Duration::from_millis(40));
    /// assert_eq!(cluster.now(), Duration::from_millis(40));
    /// ```
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.sim.now_ns())
    }

    /// Kills node `index` (0 for `n1`): its plugin instance and wake-ups
    /// are gone; its persisted term and vote stay. Messages to it are lost
    /// until [`Cluster::restart`].
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let leader = cluster.elect().unwrap();
    /// cluster.crash(leader.index);
    /// ```
    pub fn crash(&mut self, index: NodeIndex) {
        self.sim.crash(index);
    }

    /// Restarts a crashed node from what it persisted, with a fresh plugin
    /// instance (`init` again).
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// cluster.crash(0);
    /// cluster.restart(0).unwrap();
    /// ```
    pub fn restart(&mut self, index: NodeIndex) -> Result<(), TestingError> {
        self.sim.restart(index).map_err(|e| TestingError::Start {
            node: self.sim.id(index).to_string(),
            reason: format!("{e:#}"),
        })
    }

    /// Splits the network into groups of node indices that only reach
    /// their own group (nodes not named form one more group).
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// cluster.partition(&[&[0], &[1, 2]]); // n1 alone, n2 with n3
    /// ```
    pub fn partition(&mut self, groups: &[&[NodeIndex]]) {
        self.sim.partition(groups);
    }

    /// Ends every partition.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// cluster.partition(&[&[0]]);
    /// cluster.heal();
    /// ```
    pub fn heal(&mut self) {
        self.sim.heal();
    }

    /// Replaces the network's fault model (delays, loss, duplication,
    /// reordering) for messages sent from now on.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let mut network = tenure_host::sim::NetworkConfig::default();
    /// network.loss = 0.1;
    /// cluster.set_network(network);
    /// ```
    pub fn set_network(&mut self, network: NetworkConfig) {
        self.sim.set_network(network);
    }

    /// Calls the plugin's `on-call` on node `index`, as `POST
    /// /call?local=true` would. `None` if the node is down.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let leader = cluster.elect().unwrap();
    /// let reply = cluster.call(leader.index, b"runs");
    /// ```
    pub fn call(&mut self, index: NodeIndex, request: &[u8]) -> Option<Result<Vec<u8>, String>> {
        self.sim.call_plugin(index, request)
    }

    /// The plugin's `inspect()` on node `index`; `None` if it is down.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// for (key, value) in cluster.inspect(0).unwrap_or_default() {
    ///     println!("{key} = {value}");
    /// }
    /// ```
    pub fn inspect(&mut self, index: NodeIndex) -> Option<Vec<(String, String)>> {
        self.sim.inspect_plugin(index)
    }

    /// Hot-swaps node `index`'s plugin for `plugin` (its component; the
    /// node keeps the config it started with), as `tenure plugin swap`
    /// does: the new version gets the old one's snapshot. On failure the
    /// old version keeps running and the reason comes back.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let v2 = tenure_host::testing::Plugin::load("p_v2.wasm").unwrap();
    /// let leader = cluster.elect().unwrap();
    /// cluster.swap(leader.index, &v2).unwrap();
    /// ```
    pub fn swap(&mut self, index: NodeIndex, plugin: &Plugin) -> Result<(), String> {
        self.sim.swap_plugin(index, plugin.component())
    }

    /// Node `index`'s protocol status (role, term, leader, peers…);
    /// `None` while it is down.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let term = cluster.status(0).map(|s| s.term);
    /// ```
    pub fn status(&mut self, index: NodeIndex) -> Option<NodeStatus> {
        self.sim.status(index)
    }

    /// Every log line (info and above) the plugins wrote, in order, with
    /// virtual time and node.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let runs = cluster.logs().into_iter().filter(|l| l.message.starts_with("run ")).count();
    /// ```
    pub fn logs(&self) -> Vec<PluginLog> {
        trace::plugin_logs(self.sim.trace(), CLUSTER_ID)
    }

    /// The plugin log lines of one node (by id, e.g. `"n2"`).
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// let lines: Vec<String> = cluster.logs_of("n1").into_iter().map(|l| l.message).collect();
    /// ```
    pub fn logs_of(&self, node: &str) -> Vec<PluginLog> {
        let mut logs = self.logs();
        logs.retain(|l| l.node == node);
        logs
    }

    /// Every election won so far, in order: who led which term from when.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// for won in cluster.leaderships() {
    ///     println!("{} led term {} from {:?}", won.node, won.term, won.at);
    /// }
    /// ```
    pub fn leaderships(&self) -> Vec<Leadership> {
        trace::leaderships(self.sim.trace(), CLUSTER_ID)
    }

    /// Fails with the seed, the violations and the trace's tail if the run
    /// broke an election invariant (at most one leader per term, terms
    /// never decrease, a vote never changes within a term, …).
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// cluster.check_safety().unwrap();
    /// ```
    pub fn check_safety(&self) -> Result<(), TestingError> {
        let violations = self.sim.violations();
        if violations.is_empty() {
            return Ok(());
        }
        Err(TestingError::Unsafe {
            seed: self.sim.seed(),
            violations: violations
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join("\n"),
            trace_tail: self.trace_tail(),
        })
    }

    /// The whole trace: one line per event, fault and plugin log line.
    /// Print it when a test fails.
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// println!("{}", cluster.trace().join("\n"));
    /// ```
    pub fn trace(&self) -> &[String] {
        self.sim.trace()
    }

    /// The simulator underneath, for anything the harness does not wrap
    /// (crash detection, forced split votes, protocol swaps, …).
    ///
    /// ```no_run
    /// # let plugin = tenure_host::testing::Plugin::load("p.wasm").unwrap();
    /// # let mut cluster = tenure_host::testing::Cluster::new(3, &plugin).unwrap();
    /// cluster.sim().set_crash_detection(Some(1_000_000));
    /// ```
    pub fn sim(&mut self) -> &mut Simulation {
        &mut self.sim
    }

    fn trace_tail(&self) -> String {
        let trace = self.sim.trace();
        trace[trace.len().saturating_sub(40)..].join("\n")
    }
}
