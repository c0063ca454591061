//! Running a scenario for one seed: the steps, in order, on a
//! [`Cluster`] of the real components, stopping at the first that fails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::expect::{self, Window};
use super::model::{Action, NodeRef, Pattern, PluginSpec, Scenario, Since, Targets};
use crate::artifact_cache::ArtifactCache;
use crate::testing::{CLUSTER_ID, Cluster, Leader, Plugin, PluginLog, TestingError};

/// The scenario's plugin builds, compiled: what every seed reuses.
#[derive(Clone, Debug)]
pub struct Loaded {
    initial: Vec<Option<Plugin>>,
    builds: BTreeMap<String, Plugin>,
}

/// Compiles every build the scenario names, through `cache` when given
/// (a build compiled before skips Cranelift). Each path is compiled once
/// per process.
pub fn load_plugins(
    scenario: &Scenario,
    cache: Option<&ArtifactCache>,
) -> Result<Loaded, TestingError> {
    let load = |spec: &PluginSpec| -> Result<Plugin, TestingError> {
        let mut plugin = Plugin::load_cached(&spec.path, cache)?;
        for (key, value) in &spec.config {
            plugin = plugin.config(key, value);
        }
        if let Some(ms) = spec.deadline_ms {
            plugin = plugin.deadline_ms(ms);
        }
        if let Some(mib) = spec.memory_mib {
            plugin = plugin.memory_mib(mib);
        }
        Ok(plugin)
    };
    let initial = scenario
        .plugins
        .iter()
        .map(|spec| spec.as_ref().map(load).transpose())
        .collect::<Result<_, _>>()?;
    let builds = scenario
        .builds
        .iter()
        .map(|(name, spec)| Ok((name.clone(), load(spec)?)))
        .collect::<Result<_, TestingError>>()?;
    Ok(Loaded { initial, builds })
}

/// How one step went.
#[derive(Clone, Debug)]
pub struct StepResult {
    /// 1-based.
    pub number: usize,
    /// The line of its `[[step]]`.
    pub line: usize,
    /// What it does, in words.
    pub description: String,
    /// What it found (`Ok`) or why it failed (`Err`).
    pub outcome: Result<String, String>,
    /// Virtual time when it ended.
    pub at: Duration,
}

/// How one seed of a scenario went.
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The cluster did not start (`init` refused, say): why.
    pub start_error: Option<String>,
    /// The steps run; the last one failed if any did.
    pub steps: Vec<StepResult>,
    /// The plugins' log lines up to the failure (the last 15), if it
    /// failed.
    pub log_tail: Vec<PluginLog>,
    /// The cluster's events up to the failure — the simulator's trace
    /// without the plugins' lines — the last 25.
    pub trace_tail: Vec<String>,
    /// Virtual time at the end.
    pub virtual_time: Duration,
    /// Real time it took.
    pub wall: Duration,
}

impl SeedResult {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.start_error.is_none() && self.steps.iter().all(|s| s.outcome.is_ok())
    }

    /// The failed step, if one did.
    pub fn failed_step(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.outcome.is_err())
    }
}

/// Runs `scenario` with `seed`: starts the cluster, runs each step, and
/// checks the protocol's invariants after every one.
pub fn run_seed(scenario: &Scenario, loaded: &Loaded, seed: u64) -> SeedResult {
    let started = Instant::now();
    let (min, max, heartbeat) = scenario.timings;
    let mut builder = Cluster::builder(scenario.nodes)
        .seed(seed)
        .timings(min, max, heartbeat);
    for (index, plugin) in loaded.initial.iter().enumerate() {
        builder = builder.plugin_on(index + 1, plugin.clone());
    }
    let mut result = SeedResult {
        seed,
        start_error: None,
        steps: Vec::new(),
        log_tail: Vec::new(),
        trace_tail: Vec::new(),
        virtual_time: Duration::ZERO,
        wall: Duration::ZERO,
    };
    let cluster = match builder.start() {
        Ok(cluster) => cluster,
        Err(e) => {
            result.start_error = Some(e.to_string());
            result.wall = started.elapsed();
            return result;
        }
    };
    let mut runner = Runner {
        scenario,
        loaded,
        cluster,
        leader: None,
        previous: None,
        leader_since: Duration::ZERO,
        crashed: BTreeSet::new(),
        step_started: Vec::new(),
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        runner.step_started.push(runner.cluster.now());
        let mut outcome = runner.act(&step.action);
        if outcome.is_ok()
            && let Err(e) = runner.cluster.check_safety()
        {
            outcome = Err(format!("the protocol's invariants broke: {e}"));
        }
        let failed = outcome.is_err();
        result.steps.push(StepResult {
            number: index + 1,
            line: step.line,
            description: step.action.to_string(),
            outcome,
            at: runner.cluster.now(),
        });
        if failed {
            let logs = runner.cluster.logs();
            result.log_tail = logs[logs.len().saturating_sub(15)..].to_vec();
            // The cluster's own events: the plugin's lines are above.
            let events: Vec<&String> = runner
                .cluster
                .trace()
                .iter()
                .filter(|l| !l.contains(" plugin: "))
                .collect();
            result.trace_tail = events[events.len().saturating_sub(25)..]
                .iter()
                .map(|l| l.to_string())
                .collect();
            break;
        }
    }
    result.virtual_time = runner.cluster.now();
    result.wall = started.elapsed();
    result
}

/// A seed's run in progress.
struct Runner<'a> {
    scenario: &'a Scenario,
    loaded: &'a Loaded,
    cluster: Cluster,
    /// What the last `elect` found.
    leader: Option<Leader>,
    /// What the `elect` before it found.
    previous: Option<Leader>,
    /// When `leader` was elected.
    leader_since: Duration,
    crashed: BTreeSet<usize>,
    /// When each step so far started.
    step_started: Vec<Duration>,
}

impl Runner<'_> {
    fn act(&mut self, action: &Action) -> Result<String, String> {
        match action {
            Action::Elect {
                within,
                is,
                changed,
            } => self.elect(*within, *is, *changed),
            Action::Run(d) => {
                self.cluster.run_for(*d);
                Ok(String::new())
            }
            Action::Crash(targets) => {
                let nodes = self.targets(targets)?;
                for &n in &nodes {
                    if !self.crashed.insert(n) {
                        return Err(format!("n{} is already down", n + 1));
                    }
                    self.cluster.crash(n);
                }
                Ok(format!("crashed {}", names(&nodes)))
            }
            Action::Restart(targets) => {
                let nodes = self.targets(targets)?;
                for &n in &nodes {
                    if !self.crashed.remove(&n) {
                        return Err(format!("n{} is running; crash it first", n + 1));
                    }
                    self.cluster.restart(n).map_err(|e| e.to_string())?;
                }
                Ok(format!("restarted {}", names(&nodes)))
            }
            Action::Pause { nodes, duration } => {
                let nodes = self.targets(nodes)?;
                let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
                for &n in &nodes {
                    self.cluster.sim().pause(n, ns);
                }
                Ok(format!("paused {}", names(&nodes)))
            }
            Action::Partition(groups) => {
                let groups: Vec<Vec<usize>> = groups
                    .iter()
                    .map(|g| self.targets(g))
                    .collect::<Result<_, _>>()?;
                let slices: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
                self.cluster.partition(&slices);
                let shown: Vec<String> = groups.iter().map(|g| format!("[{}]", names(g))).collect();
                Ok(shown.join(" | "))
            }
            Action::Cut { from, to } => {
                let (from, to) = (self.targets(from)?, self.targets(to)?);
                for &f in &from {
                    for &t in to.iter().filter(|&&t| t != f) {
                        self.cluster.sim().cut_link(f, t);
                    }
                }
                Ok(format!(
                    "{} no longer heard by {}",
                    names(&from),
                    names(&to)
                ))
            }
            Action::Heal => {
                self.cluster.heal();
                Ok(String::new())
            }
            Action::Network(network) => {
                self.cluster.set_network(network.clone());
                Ok(String::new())
            }
            Action::Call {
                on,
                request,
                reply,
                error,
            } => {
                let mut answers = Vec::new();
                for node in self.targets(on)? {
                    answers.push(self.call(node, request, reply.as_ref(), error.as_ref())?);
                }
                Ok(answers.join("; "))
            }
            Action::Swap { on, to, refused } => {
                let plugin = self
                    .loaded
                    .builds
                    .get(to)
                    .ok_or_else(|| format!("no build {to:?}"))?
                    .clone();
                let nodes = self.targets(on)?;
                for &n in &nodes {
                    match (self.cluster.swap(n, &plugin), refused) {
                        (Ok(()), None) => {}
                        (Ok(()), Some(p)) => {
                            return Err(format!(
                                "n{} accepted the swap; expected a refusal matching {p}",
                                n + 1
                            ));
                        }
                        (Err(e), Some(p)) if p.matches(&e) => {}
                        (Err(e), _) => return Err(format!("n{} refused the swap: {e}", n + 1)),
                    }
                }
                let verb = if refused.is_some() {
                    "refused"
                } else {
                    "swapped"
                };
                Ok(format!("{verb} on {}", names(&nodes)))
            }
            Action::Transfer { to } => {
                let leader = self.node(NodeRef::Leader)?;
                let to = self.node(*to)?;
                let id = format!("n{}", to + 1);
                self.cluster
                    .sim()
                    .transfer_leadership(leader, &id)
                    .map_err(|e| format!("n{} refused to hand over to {id}: {e:#}", leader + 1))?;
                Ok(format!("n{} hands over to {id}", leader + 1))
            }
            Action::Expect(expectation) => {
                let window = self.window(expectation.since);
                let on = self.ids(&expectation.on)?;
                let nodes = expectation
                    .nodes
                    .as_ref()
                    .map(|t| self.ids(t))
                    .transpose()?;
                let logs = self.cluster.logs();
                let leaderships = self.cluster.leaderships();
                expect::check(
                    expectation,
                    &logs,
                    &leaderships,
                    window,
                    &on,
                    nodes.as_ref(),
                )
            }
        }
    }

    /// Calls `on-call` on `node` and checks the answer against `reply` or
    /// `error`.
    fn call(
        &mut self,
        node: usize,
        request: &str,
        reply: Option<&Pattern>,
        error: Option<&Pattern>,
    ) -> Result<String, String> {
        let n = node + 1;
        let answer = self
            .cluster
            .call(node, request.as_bytes())
            .ok_or_else(|| format!("n{n} is down"))?;
        match (answer, error) {
            (Ok(bytes), None) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                match reply {
                    Some(p) if !p.matches(&text) => {
                        Err(format!("n{n} replied {text:?}, which does not match {p}"))
                    }
                    _ => Ok(format!("n{n} replied {}", clip(&text))),
                }
            }
            (Ok(bytes), Some(p)) => Err(format!(
                "expected an error matching {p}, but n{n} replied {:?}",
                String::from_utf8_lossy(&bytes)
            )),
            (Err(e), Some(p)) if p.matches(&e) => {
                Ok(format!("n{n} failed as expected: {}", clip(&e)))
            }
            (Err(e), Some(p)) => Err(format!("n{n} failed with {e:?}, which does not match {p}")),
            (Err(e), None) => Err(format!("n{n} failed the call: {e}")),
        }
    }

    fn elect(
        &mut self,
        within: Duration,
        is: Option<NodeRef>,
        changed: bool,
    ) -> Result<String, String> {
        let want = is.map(|r| self.node(r)).transpose()?;
        let deadline = self.cluster.now() + within;
        let mut last_seen = None;
        let (id, term) = loop {
            let agreed = self.cluster.sim().agreement(CLUSTER_ID);
            if let Some((id, term)) = &agreed {
                let index = super::values::node_index(id, self.scenario.nodes);
                let right_node = want.is_none() || index == want;
                let new = !changed || self.leader.as_ref().is_none_or(|l| l.id != *id);
                if right_node && new {
                    break (id.clone(), *term);
                }
            }
            last_seen = agreed.or(last_seen);
            let now = self.cluster.now();
            if now >= deadline {
                let seen = match last_seen {
                    Some((id, term)) => {
                        format!("the last leader all agreed on was {id} in term {term}")
                    }
                    None => "the running nodes never agreed on one".into(),
                };
                return Err(format!(
                    "no {} within {}: {seen}",
                    wanted(want, changed),
                    super::model::show_duration(within)
                ));
            }
            self.cluster
                .run_for((deadline - now).min(Duration::from_millis(5)));
        };
        let index = super::values::node_index(&id, self.scenario.nodes).unwrap_or_default();
        self.leader_since = self
            .cluster
            .leaderships()
            .iter()
            .rev()
            .find(|l| l.node == id && l.term == term)
            .map_or(self.cluster.now(), |l| l.at);
        self.previous = self.leader.replace(Leader {
            index,
            id: id.clone(),
            term,
        });
        Ok(format!(
            "{id} leads term {term} (elected at {})",
            super::model::show_time(self.leader_since)
        ))
    }

    fn window(&self, since: Since) -> Window {
        let now = self.cluster.now();
        match since {
            Since::Start => Window {
                from: Duration::ZERO,
                to: now,
            },
            Since::LeaderElected => Window {
                from: self.leader_since,
                to: now,
            },
            Since::PreviousStep => {
                let n = self.step_started.len();
                let from = n
                    .checked_sub(2)
                    .map_or(Duration::ZERO, |i| self.step_started[i]);
                Window { from, to: now }
            }
        }
    }

    fn node(&self, node: NodeRef) -> Result<usize, String> {
        match node {
            NodeRef::Node(index) => Ok(index),
            NodeRef::Leader => {
                self.leader.as_ref().map(|l| l.index).ok_or_else(|| {
                    "no leader known yet: put an `elect` step before this one".into()
                })
            }
            NodeRef::PreviousLeader => self
                .previous
                .as_ref()
                .map(|l| l.index)
                .ok_or_else(|| "no previous leader yet: it takes two `elect` steps".into()),
        }
    }

    fn targets(&self, targets: &Targets) -> Result<Vec<usize>, String> {
        let all = 0..self.scenario.nodes;
        Ok(match targets {
            Targets::All => all.collect(),
            Targets::Followers => {
                let leader = self.node(NodeRef::Leader)?;
                all.filter(|&n| n != leader).collect()
            }
            Targets::Crashed => {
                if self.crashed.is_empty() {
                    return Err("no node is crashed".into());
                }
                self.crashed.iter().copied().collect()
            }
            Targets::Union(parts) => {
                let mut out: Vec<usize> = Vec::new();
                for part in parts {
                    for index in self.targets(part)? {
                        if !out.contains(&index) {
                            out.push(index);
                        }
                    }
                }
                out
            }
            Targets::Nodes(nodes) => {
                let mut out: Vec<usize> = Vec::new();
                for &n in nodes {
                    let index = self.node(n)?;
                    if !out.contains(&index) {
                        out.push(index);
                    }
                }
                out
            }
        })
    }

    fn ids(&self, targets: &Targets) -> Result<BTreeSet<String>, String> {
        Ok(self
            .targets(targets)?
            .into_iter()
            .map(|n| format!("n{}", n + 1))
            .collect())
    }
}

fn wanted(want: Option<usize>, changed: bool) -> String {
    match (want, changed) {
        (Some(n), _) => format!("leader n{}", n + 1),
        (None, true) => "new leader".into(),
        (None, false) => "leader".into(),
    }
}

fn names(nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|n| format!("n{}", n + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(120).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    format!("{clipped:?}")
}
