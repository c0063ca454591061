//! A scenario as `tenure test` runs it: the cluster, the plugin builds,
//! and the steps, every name and pattern already checked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::sim::NetworkConfig;

/// A parsed scenario file. Make one with [`super::load`] or
/// [`super::parse`]; run it with [`super::run_seed`].
///
/// ```
/// let scenario = tenure_host::scenario::parse(
///     "[cluster]\nnodes = 3\n[[step]]\nelect = true\n",
///     std::path::Path::new("s.toml"),
/// ).unwrap();
/// assert_eq!(scenario.nodes, 3);
/// assert_eq!(scenario.steps.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// `name`, or the file's stem.
    pub name: String,
    /// How many nodes (`n1`…`nN`).
    pub nodes: usize,
    /// The first seed (`cluster.seed`, default 1).
    pub first_seed: u64,
    /// How many seeds to run, from `first_seed` on (`cluster.seeds`,
    /// default 1; `tenure test --seeds N` overrides it).
    pub seeds: u64,
    /// Election timeout range and heartbeat interval, in milliseconds.
    pub timings: (u32, u32, u32),
    /// What each node runs at the start (index 0 is `n1`); `None`: no
    /// plugin.
    pub plugins: Vec<Option<PluginSpec>>,
    /// Other builds, by name, for `swap` steps.
    pub builds: BTreeMap<String, PluginSpec>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// One build of the plugin with the config and limits a node runs it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSpec {
    /// The `.wasm`, resolved against the scenario file's directory.
    pub path: PathBuf,
    /// What `init` receives.
    pub config: BTreeMap<String, String>,
    /// Each callback's deadline, if not the node default.
    pub deadline_ms: Option<u64>,
    /// The memory cap in MiB, if not the node default.
    pub memory_mib: Option<usize>,
}

/// One node, named by what the scenario knows at the moment the step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRef {
    /// The node the last `elect` step found leading.
    Leader,
    /// The leader the `elect` step before that one found.
    PreviousLeader,
    /// A node by index (0 for `n1`).
    Node(usize),
}

/// A set of nodes a step acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Every node.
    All,
    /// Every node but the current leader.
    Followers,
    /// Every node crashed and not restarted.
    Crashed,
    /// These nodes.
    Nodes(Vec<NodeRef>),
    /// Every node any of these names (`["leader", "crashed"]`).
    Union(Vec<Targets>),
}

/// A step: what it does and the line it starts on.
#[derive(Clone, Debug)]
pub struct Step {
    /// The line of its `[[step]]` header (1-based).
    pub line: usize,
    /// What it does.
    pub action: Action,
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Run until every running node agrees on a leader, within `within`.
    Elect {
        /// The most virtual time to wait.
        within: Duration,
        /// The leader must be this node.
        is: Option<NodeRef>,
        /// The leader must differ from the one the last `elect` found.
        changed: bool,
    },
    /// Advance virtual time.
    Run(Duration),
    /// Kill nodes (their persisted state survives).
    Crash(Targets),
    /// Start crashed nodes again from what they persisted.
    Restart(Targets),
    /// Freeze nodes (SIGSTOP) for a while; they handle nothing meanwhile.
    Pause {
        /// Which nodes.
        nodes: Targets,
        /// For how long.
        duration: Duration,
    },
    /// Split the network into groups that only reach their own group.
    Partition(Vec<Targets>),
    /// Cut links one way: `to` stops hearing `from`.
    Cut {
        /// The senders.
        from: Targets,
        /// The receivers that stop hearing them.
        to: Targets,
    },
    /// End every partition and cut link.
    Heal,
    /// Replace the network's delays and loss for what is sent from now on.
    Network(NetworkConfig),
    /// Call the plugin's `on-call` and check the answer.
    Call {
        /// Which nodes answer (each is called; each answer is checked).
        on: Targets,
        /// The request bytes (as UTF-8).
        request: String,
        /// The reply must match this.
        reply: Option<Pattern>,
        /// The call must fail, with an error matching this.
        error: Option<Pattern>,
    },
    /// Hot-swap nodes' plugin for another build.
    Swap {
        /// Which nodes.
        on: Targets,
        /// The build's name (a key of `[builds]`).
        to: String,
        /// The swap must be refused, with a reason matching this.
        refused: Option<Pattern>,
    },
    /// Ask the current leader to hand leadership to a node.
    Transfer {
        /// The node to lead next.
        to: NodeRef,
    },
    /// Check the plugins' log lines.
    Expect(LogExpectation),
}

/// A regular expression with the text it was written as.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The compiled expression.
    pub regex: Regex,
}

impl Pattern {
    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.regex.as_str())
    }
}

/// Which log lines an `expect` step looks at, by time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// Every line since the cluster started.
    Start,
    /// Lines written during the step just before this one.
    PreviousStep,
    /// Lines written since the current leader was elected.
    LeaderElected,
}

/// How many matching lines an `expect` step wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// Exactly this many.
    pub exactly: Option<usize>,
    /// At least this many.
    pub at_least: Option<usize>,
    /// At most this many.
    pub at_most: Option<usize>,
}

/// An `expect` step: what the plugins' log lines must show.
#[derive(Clone, Debug)]
pub struct LogExpectation {
    /// The lines it is about.
    pub log: Pattern,
    /// Whose lines count (default: every node's).
    pub on: Targets,
    /// From when.
    pub since: Since,
    /// How many.
    pub count: Count,
    /// Exactly these nodes wrote matching lines.
    pub nodes: Option<Targets>,
    /// Every matching line was written by the node leading at that moment.
    pub while_leading: bool,
    /// No two nodes wrote a matching line in one term (the term is the
    /// pattern's `term` group if it has one, else the term led then).
    pub one_node_per_term: bool,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Leader => f.write_str("leader"),
            NodeRef::PreviousLeader => f.write_str("previous-leader"),
            NodeRef::Node(index) => write!(f, "n{}", index + 1),
        }
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Targets::All => f.write_str("all"),
            Targets::Followers => f.write_str("followers"),
            Targets::Crashed => f.write_str("crashed"),
            Targets::Nodes(nodes) => {
                let names: Vec<String> = nodes.iter().map(ToString::to_string).collect();
                f.write_str(&names.join(", "))
            }
            Targets::Union(parts) => {
                let names: Vec<String> = parts.iter().map(ToString::to_string).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// `1.250s`: a moment of virtual time, as reports show it.
pub fn show_time(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// `1.5s`, `250ms`: a duration as a scenario writes it.
pub fn show_duration(d: Duration) -> String {
    if d.as_millis() >= 1_000 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}ms", d.as_secs_f64() * 1e3)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Elect {
                within,
                is,
                changed,
            } => {
                write!(f, "elect within {}", show_duration(*within))?;
                if let Some(is) = is {
                    write!(f, ", must be {is}")?;
                }
                if *changed {
                    f.write_str(", must be a new leader")?;
                }
                Ok(())
            }
            Action::Run(d) => write!(f, "run {}", show_duration(*d)),
            Action::Crash(t) => write!(f, "crash {t}"),
            Action::Restart(t) => write!(f, "restart {t}"),
            Action::Pause { nodes, duration } => {
                write!(f, "pause {nodes} for {}", show_duration(*duration))
            }
            Action::Partition(groups) => {
                let groups: Vec<String> = groups.iter().map(|g| format!("[{g}]")).collect();
                write!(f, "partition {}", groups.join(" | "))
            }
            Action::Cut { from, to } => write!(f, "cut {from} -> {to}"),
            Action::Heal => f.write_str("heal"),
            Action::Network(n) => write!(
                f,
                "network delay {}-{} ms, loss {}, duplicate {}, reorder {}",
                n.min_delay_ns as f64 / 1e6,
                n.max_delay_ns as f64 / 1e6,
                n.loss,
                n.duplicate,
                n.reorder
            ),
            Action::Call { on, request, .. } => write!(f, "call {on} with {request:?}"),
            Action::Swap { on, to, .. } => write!(f, "swap {on} to build {to:?}"),
            Action::Transfer { to } => write!(f, "transfer leadership to {to}"),
            Action::Expect(e) => {
                write!(f, "expect log {} on {}", e.log, e.on)?;
                match e.since {
                    Since::Start => {}
                    Since::PreviousStep => f.write_str(" during the previous step")?,
                    Since::LeaderElected => f.write_str(" since the leader was elected")?,
                }
                Ok(())
            }
        }
    }
}
