//! `tenure-bench scale`: one cluster of many voters and observers on
//! 127.0.0.1 (9 and 100 by default) — what each node costs at idle, what
//! the protocol's heartbeats and acks weigh, and how fast the voters fail
//! over with all those observers attached.
//!
//! The nodes start in batches, each batch answering on its admin endpoint
//! before the next is spawned: 109 cold starts at once would be 109
//! Cranelift compiles fighting for the cores, and more handshakes from
//! 127.0.0.1 than a voter's `[peer-limits] max-pending-per-ip` admits.
//! Voters list the other voters as peers; observers list every voter and
//! are no member (see the README's *Observers*).
//!
//! Every node is killed when the run ends, fails, or gets SIGINT or
//! SIGTERM: the cluster lives inside the run's future, and dropping it
//! kills and reaps each process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tenure_host::testing::processes::{LocalCluster, Process};
use tokio::signal::unix::{SignalKind, signal};

use crate::cluster::{Probe, System};
use crate::failover::{Fault, Jitter, Scenario, Trial, wait_for_leader};
use crate::idle::{Cost, measure_window};
use crate::procfs::machine_cpu_seconds;
use crate::report::{load_average, one_trial, report};
use crate::sent::{Sent, scrape};
use crate::stats::theoretical_failover_ms;
use crate::tenure::Timings;

/// The cluster id every node carries.
const CLUSTER: &str = "bench";

/// How long one node may take to answer after its spawn (a cold start
/// compiles the election component).
const START_BOUND: Duration = Duration::from_secs(60);

/// What `tenure-bench scale` runs.
#[derive(Clone, Debug)]
pub struct ScaleOptions {
    /// The `tenure` binary.
    pub binary: PathBuf,
    /// Where the nodes' configs, data and logs go (emptied first).
    pub dir: PathBuf,
    /// Remove `dir` after a run that succeeded.
    pub remove_dir: bool,
    /// Voting members.
    pub voters: usize,
    /// Observers (`[protocol] observer = true`).
    pub observers: usize,
    /// Every node's election timings.
    pub timings: Timings,
    /// A behaviour plugin for every node, if any.
    pub plugin: Option<PathBuf>,
    /// Nodes spawned at once.
    pub batch: usize,
    /// How long everyone must have agreed on a leader before the idle
    /// window opens.
    pub settle: Duration,
    /// The idle window.
    pub window: Duration,
    /// Failover trials.
    pub trials: usize,
    /// How the leader is taken away in each trial.
    pub fault: Fault,
    /// How often the surviving voters are asked during a failover.
    pub poll: Duration,
    /// Print every trial.
    pub verbose: bool,
}

/// Runs the benchmark; every node is gone when it returns, whatever the
/// outcome.
pub async fn run(options: ScaleOptions) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("catching SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("catching SIGTERM")?;
    let outcome = tokio::select! {
        outcome = measure(&options) => outcome,
        _ = interrupt.recv() => Err(anyhow::anyhow!("interrupted (SIGINT); every node was killed")),
        _ = terminate.recv() => Err(anyhow::anyhow!("terminated (SIGTERM); every node was killed")),
    };
    if outcome.is_ok() && options.remove_dir {
        let _ = std::fs::remove_dir_all(&options.dir);
    }
    println!("load average after: {}", load_average());
    outcome
}

/// Starts the cluster, measures it idle, then fails its voters over.
async fn measure(o: &ScaleOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.voters >= 3,
        "--voters: at least 3 (a failover needs a quorum left)"
    );
    let started = Instant::now();
    let mut cluster = ScaleCluster::start(o).await?;
    println!(
        "scale: {} voters + {} observers, {}, every node answering {:.1} s after the first \
         spawn (batches of {})",
        o.voters,
        o.observers,
        o.timings,
        started.elapsed().as_secs_f64(),
        o.batch
    );
    let admin = cluster.local.admin(&cluster.members[0])?;
    let node = crate::failover::wait_for_admin(admin).await?;
    println!(
        "tenure: {} (protocol {} sha256 {})",
        o.binary.display(),
        node.protocol_version,
        node.protocol_sha256.get(..12).unwrap_or("?")
    );
    let outcome = match idle(&mut cluster, o).await {
        Ok(()) => failover(&mut cluster, o).await,
        Err(e) => Err(e),
    };
    // A node that died is the likelier story than the symptom the
    // measurement tripped on (no agreement, a probe unanswered): say so.
    outcome.map_err(|e| match cluster.dead() {
        Some(dead) => e.context(dead),
        None => e,
    })
}

/// The idle window: every node's CPU and memory, and the leader's and two
/// followers' sent heartbeats and acks.
async fn idle(cluster: &mut ScaleCluster, o: &ScaleOptions) -> anyhow::Result<()> {
    let voters = cluster.voters;
    let mut everyone = cluster.scope(cluster.members.len());
    let all: Vec<usize> = (0..everyone.size()).collect();
    let agreed = Instant::now();
    let (leader, before) = wait_for_leader(
        &everyone,
        &all,
        Duration::from_secs(60),
        Duration::from_millis(100),
    )
    .await?;
    println!(
        "every node follows {} (term {}) after {:.1} s more; settling {:?}",
        before.me,
        before.term,
        agreed.elapsed().as_secs_f64(),
        o.settle
    );
    tokio::time::sleep(o.settle).await;
    // Whose sends are read: the leader's heartbeats, a follower voter's
    // and an observer's acks.
    let follower = (0..voters)
        .find(|&m| m != leader)
        .context("no follower voter")?;
    let observer = (voters < all.len()).then_some(voters);
    let watched: Vec<usize> = [Some(leader), Some(follower), observer]
        .into_iter()
        .flatten()
        .collect();
    let mut first = Vec::new();
    for &m in &watched {
        first.push(scrape(everyone.admin(m)).await?);
    }
    let machine_before = machine_cpu_seconds()?;
    let costs = measure_window(&mut everyone, o.window).await?;
    let machine_after = machine_cpu_seconds()?;
    let mut last = Vec::new();
    for &m in &watched {
        last.push(scrape(everyone.admin(m)).await?);
    }
    let (still, after) = wait_for_leader(
        &everyone,
        &all,
        Duration::from_secs(10),
        Duration::from_millis(100),
    )
    .await?;
    if still != leader || after.term != before.term {
        println!(
            "  NOTE: leadership changed during the window ({} term {} -> {} term {}): the \
             figures mix roles",
            before.me, before.term, after.me, after.term
        );
    }
    print_idle(&costs, leader, voters, o.window);
    let (busy, total) = (
        machine_after.0 - machine_before.0,
        machine_after.1 - machine_before.1,
    );
    let ours: f64 = costs.iter().map(|c| c.cpu_percent).sum();
    let seconds = o.window.as_secs_f64();
    println!(
        "  the machine over the window: {:.0} % of one core busy (of {:.0} %): the cluster \
         {ours:.0} %, everything else {:.0} %",
        busy / seconds * 100.0,
        total / seconds * 100.0,
        (busy / seconds * 100.0 - ours).max(0.0)
    );
    let names: Vec<&str> = watched
        .iter()
        .map(|&m| cluster.members[m].as_str())
        .collect();
    print_sent(cluster, &names, &first, &last, o.window);
    Ok(())
}

/// The leader's cost, and the median and maximum over the follower
/// voters and over the observers.
fn print_idle(costs: &[Cost], leader: usize, voters: usize, window: Duration) {
    println!("idle, over {window:?} (CPU in % of one core):");
    let line = |label: &str, group: &[&Cost]| {
        if group.is_empty() {
            return;
        }
        let cpu: Vec<f64> = group.iter().map(|c| c.cpu_percent).collect();
        let rss: Vec<f64> = group.iter().map(|c| c.rss_kib as f64 / 1024.0).collect();
        let peak = group.iter().map(|c| c.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
        let (cpu_median, cpu_max) = median_max(&cpu);
        let (rss_median, rss_max) = median_max(&rss);
        if group.len() == 1 {
            println!(
                "  {label:<26} CPU {cpu_median:>6.2} %, RSS {rss_median:>5.1} MiB (peak {peak:.1})"
            );
        } else {
            println!(
                "  {label:<26} CPU median {cpu_median:.2} % max {cpu_max:.2} %, RSS median \
                 {rss_median:.1} max {rss_max:.1} MiB (peak {peak:.1})"
            );
        }
    };
    let of = |range: std::ops::Range<usize>| -> Vec<&Cost> {
        range
            .filter(|&i| i != leader)
            .filter_map(|i| costs.get(i))
            .collect()
    };
    let led: Vec<&Cost> = costs.get(leader).into_iter().collect();
    let label = led
        .first()
        .map_or("leader".to_string(), |c| format!("leader {}", c.who));
    line(&label, &led);
    let followers = of(0..voters);
    line(&format!("{} follower voters", followers.len()), &followers);
    let observers = of(voters..costs.len());
    line(&format!("{} observers", observers.len()), &observers);
    let cpu: f64 = costs.iter().map(|c| c.cpu_percent).sum();
    let rss: u64 = costs.iter().map(|c| c.rss_kib).sum();
    println!(
        "  all {} nodes together: CPU {cpu:.1} % of one core, RSS {:.2} GiB",
        costs.len(),
        rss as f64 / 1048576.0
    );
}

/// Heartbeat and ack sizes over the window, from the watched nodes'
/// `tenure_sent_*_total` counters.
fn print_sent(
    cluster: &ScaleCluster,
    names: &[&str],
    first: &[Sent],
    last: &[Sent],
    window: Duration,
) {
    println!(
        "protocol payload over the window (tenure_sent_bytes_total / tenure_sent_messages_total; \
         the frame adds the rest):"
    );
    let seconds = window.as_secs_f64();
    for (i, (name, (a, b))) in names.iter().zip(first.iter().zip(last)).enumerate() {
        let sent = b.since(a);
        // The first watched node leads: its heartbeats go to everyone
        // else; a follower's acks go to the leader.
        let (what, (messages, bytes), recipients) = if i == 0 {
            let others: Vec<&str> = cluster
                .members
                .iter()
                .map(String::as_str)
                .filter(|m| m != name)
                .collect();
            ("heartbeats", sent.heartbeats, others)
        } else {
            ("acks", sent.acks, vec![names[0]])
        };
        if messages == 0 {
            println!("  {name}: no {what} sent");
            continue;
        }
        let frame: f64 = recipients
            .iter()
            .map(|to| frame_overhead(name, to) as f64)
            .sum::<f64>()
            / recipients.len().max(1) as f64;
        let mean = bytes as f64 / messages as f64;
        println!(
            "  {name:<5} {what:<10} {messages:>7} sent ({:>6.0}/s), {mean:>6.1} B payload each \
             ({:.0} B on the wire with the frame), {:.1} KiB/s",
            messages as f64 / seconds,
            mean + frame,
            (bytes as f64 + frame * messages as f64) / seconds / 1024.0
        );
    }
}

/// The transport's bytes around one payload from `from` to `to` with the
/// shared secret: the 4-byte length prefix and the frame's header and MAC.
fn frame_overhead(from: &str, to: &str) -> usize {
    4 + tenure_transport::frame::encoded_len(CLUSTER, from, to, 0)
}

/// The median and the maximum of a non-empty sample (0 for an empty one).
fn median_max(sample: &[f64]) -> (f64, f64) {
    crate::stats::Summary::of(sample).map_or((0.0, 0.0), |s| (s.median, s.max))
}

/// Kills (or freezes) the leader `o.trials` times and times until the
/// surviving voters agree on another; only voters are asked.
async fn failover(cluster: &mut ScaleCluster, o: &ScaleOptions) -> anyhow::Result<()> {
    let heartbeat = Duration::from_millis(o.timings.heartbeat_ms.into());
    let scenario = Scenario {
        fault: o.fault,
        hold_port: false,
        poll: o.poll,
        settle: Duration::from_millis(500),
        heartbeat,
        bound: Duration::from_secs(30),
    };
    println!(
        "failover of the voters: fault {:?}, {} trials, polling the {} surviving voters every {:?}",
        o.fault,
        o.trials,
        cluster.voters - 1,
        o.poll
    );
    let mut voters = cluster.scope(cluster.voters);
    let mut results: Vec<Trial> = Vec::new();
    let mut failures = 0;
    let mut jitter = Jitter::new();
    for i in 0..o.trials {
        one_trial(
            &mut voters,
            &scenario,
            &mut jitter,
            i,
            o.verbose,
            &mut results,
            &mut failures,
        )
        .await?;
    }
    let theory = theoretical_failover_ms(o.timings.min_ms.into(), o.timings.heartbeat_ms.into());
    report(&voters, &results, failures, theory);
    Ok(())
}

/// The running cluster: voters first, then observers, in one
/// [`LocalCluster`] (which kills every process when dropped).
struct ScaleCluster {
    local: LocalCluster,
    /// Node ids, the `voters` voters first.
    members: Vec<String>,
    voters: usize,
    timings: Timings,
}

impl ScaleCluster {
    /// Plans, configures and starts every node, batch by batch.
    async fn start(o: &ScaleOptions) -> anyhow::Result<ScaleCluster> {
        let mut local = LocalCluster::plan(&o.dir, &o.binary, CLUSTER, o.voters)?;
        let voters: Vec<String> = (1..=o.voters).map(|i| format!("n{i}")).collect();
        let observers: Vec<String> = (1..=o.observers).map(|i| format!("o{i}")).collect();
        for id in &observers {
            local.add_node(id)?;
        }
        let t = o.timings;
        let plugin = match &o.plugin {
            Some(path) => format!("[plugin]\npath = {:?}\n", path.display().to_string()),
            None => String::new(),
        };
        let extra = |observer: bool| {
            format!(
                "[timings]\nelection-timeout-min-ms = {}\nelection-timeout-max-ms = {}\n\
                 heartbeat-interval-ms = {}\n[protocol]\nobserver = {observer}\n{plugin}",
                t.min_ms, t.max_ms, t.heartbeat_ms
            )
        };
        let voter_ids: Vec<&str> = voters.iter().map(String::as_str).collect();
        for id in &voter_ids {
            let others: Vec<&str> = voter_ids.iter().copied().filter(|v| v != id).collect();
            local.write_config_with_peers(id, &local.peers_of(&others)?, &extra(false))?;
        }
        let every_voter = local.peers_of(&voter_ids)?;
        for id in &observers {
            local.write_config_with_peers(id, &every_voter, &extra(true))?;
        }
        let mut cluster = ScaleCluster {
            local,
            members: voters.into_iter().chain(observers).collect(),
            voters: o.voters,
            timings: o.timings,
        };
        let members = cluster.members.clone();
        let started = Instant::now();
        for (i, batch) in members.chunks(o.batch.max(1)).enumerate() {
            for id in batch {
                cluster.local.spawn(id)?;
            }
            cluster.wait_up(batch).await?;
            if o.verbose {
                println!(
                    "  batch {i}: {} nodes answering at {:.1} s",
                    batch.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(cluster)
    }

    /// Waits until every node of `ids` answers on its admin endpoint;
    /// fails at once, with its log, if one exits.
    async fn wait_up(&mut self, ids: &[String]) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_BOUND;
        for id in ids {
            let admin = self.local.admin(id)?;
            loop {
                let asked =
                    tenure_host::admin_client::fetch_status(admin, Duration::from_secs(2)).await;
                if asked.is_ok() {
                    break;
                }
                let exited = match self.local.process(id) {
                    Some(process) => process.try_exit()?,
                    None => bail!("{id} was never started"),
                };
                if let Some(status) = exited {
                    bail!(
                        "{id} exited ({status}) before answering; its log:\n{}",
                        self.local.log_since_start(id)
                    );
                }
                if Instant::now() > deadline {
                    bail!("{id} did not answer on {admin} within {START_BOUND:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// The members whose process has exited, with the end of each one's
    /// log; `None` if every member runs.
    fn dead(&mut self) -> Option<String> {
        let mut dead = Vec::new();
        for id in self.members.clone() {
            let exited = self
                .local
                .process(&id)
                .and_then(|p| p.try_exit().ok().flatten());
            if let Some(status) = exited {
                let log = self.local.log_since_start(&id);
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(8)..].join("\n");
                dead.push(format!("{id} exited ({status}); its log ends:\n{tail}"));
            }
        }
        (!dead.is_empty()).then(|| dead.join("\n"))
    }

    /// The first `size` members (voters first) as a [`System`].
    fn scope(&mut self, size: usize) -> Scope<'_> {
        Scope {
            size: size.min(self.members.len()),
            cluster: self,
        }
    }
}

/// Part of the cluster as a [`System`]: its first `size` members. The
/// voters alone fail over (only they are asked who leads); everyone idles.
struct Scope<'a> {
    cluster: &'a mut ScaleCluster,
    size: usize,
}

impl Scope<'_> {
    fn admin(&self, member: usize) -> SocketAddr {
        self.cluster
            .local
            .admin(&self.cluster.members[member])
            .expect("members are planned")
    }
}

impl System for Scope<'_> {
    fn label(&self) -> String {
        let c = &self.cluster;
        format!(
            "tenure {} voters + {} observers (asking {}), {}",
            c.voters,
            c.members.len() - c.voters,
            if self.size == c.voters {
                "the voters".to_string()
            } else {
                format!("{} nodes", self.size)
            },
            c.timings
        )
    }

    fn size(&self) -> usize {
        self.size
    }

    fn probe(&self, member: usize) -> Probe {
        Probe::Tenure(self.admin(member))
    }

    fn process(&mut self, member: usize) -> &mut Process {
        let id = &self.cluster.members[member];
        self.cluster
            .local
            .process(id)
            .expect("every member was started")
    }

    fn peer_addr(&self, member: usize) -> SocketAddr {
        self.cluster
            .local
            .listen(&self.cluster.members[member])
            .expect("members are planned")
    }

    fn restart(&mut self, member: usize) -> anyhow::Result<()> {
        let id = self.cluster.members[member].clone();
        self.cluster.local.spawn(&id)
    }
}
