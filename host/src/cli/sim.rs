//! `tenure sim …`: the deterministic simulator from the command line.

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use tenure_host::component_path::load_election;
use tenure_host::plugin::{PluginComponent, PluginLimits, plugin_engine};
use tenure_host::sim::{SimPlugin, Simulation, chaos};

const MS: u64 = 1_000_000;
const CLUSTER: &str = "demo";

/// Trace lines about leadership, shown without `--verbose`.
fn is_leadership_line(line: &str) -> bool {
    [
        "became",
        "term ",
        "crashed",
        "started",
        "partition",
        "heal",
        "stepping down",
    ]
    .iter()
    .any(|k| line.contains(k))
}

fn print_new_trace(sim: &Simulation, from: &mut usize, verbose: bool) {
    for line in &sim.trace()[*from..] {
        if verbose || is_leadership_line(line) {
            println!("  {line}");
        }
    }
    *from = sim.trace().len();
}

/// `tenure sim demo`: a narrated run of a simulated cluster.
pub fn demo(
    component: Option<PathBuf>,
    nodes: usize,
    seed: u64,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    if !(1..=99).contains(&nodes) {
        bail!("--nodes must be between 1 and 99, got {nodes}");
    }
    let component = load_election(component)?;
    let mut sim = Simulation::new(component, seed);
    sim.add_cluster(CLUSTER, nodes, |_| {})?;
    println!(
        "A simulated cluster of {nodes} nodes (seed {seed}; timeouts 150-300 ms, heartbeat 50 ms; \
         virtual time)."
    );
    let mut shown = 0;
    let bound = 3_000 * MS;

    println!("\n1. Start: every node is a follower until its election timer fires.");
    let (leader, term, took) = sim.run_until_agreement(CLUSTER, bound)?;
    print_new_trace(&sim, &mut shown, verbose);
    println!(
        "=> {leader} leads term {term}; all nodes agreed after {} ms.",
        took / MS
    );

    let leader_index = index_of(&sim, &leader)?;
    println!("\n2. Crash the leader {leader}.");
    sim.crash(leader_index);
    let (leader, term, took) = sim.run_until_agreement(CLUSTER, bound)?;
    print_new_trace(&sim, &mut shown, verbose);
    println!(
        "=> {leader} leads term {term}, {} ms after the crash.",
        took / MS
    );

    println!("\n3. Restart the old leader: it comes back as a follower.");
    sim.restart(leader_index)?;
    sim.run_for(500 * MS);
    print_new_trace(&sim, &mut shown, verbose);
    report_agreement(&mut sim)?;

    if nodes >= 3 {
        let current = index_of(&sim, &leader)?;
        let buddy = (current + 1) % nodes;
        let minority = [current, buddy];
        let majority: Vec<usize> = (0..nodes).filter(|n| !minority.contains(n)).collect();
        println!(
            "\n4. Partition: cut the leader {leader} off with {} in a minority.",
            sim.id(buddy)
        );
        sim.partition(&[&minority, &majority]);
        sim.run_for(1_500 * MS);
        print_new_trace(&sim, &mut shown, verbose);
        match sim.agreement_among(&majority) {
            Some((l, t)) => println!("=> the majority side follows {l} in term {t}."),
            None => println!("=> the majority side has not agreed yet."),
        }
        let minority_leaders = sim
            .leaders(CLUSTER)
            .into_iter()
            .filter(|n| minority.contains(n))
            .count();
        println!(
            "=> leaders in the minority: {minority_leaders} (check-quorum made {leader} step down)."
        );

        println!("\n5. Heal the partition.");
        sim.heal();
        sim.run_until_agreement(CLUSTER, bound)?;
        sim.run_for(500 * MS);
        print_new_trace(&sim, &mut shown, verbose);
        report_agreement(&mut sim)?;
    }

    println!("\nFinal view ({} ms of virtual time):", sim.now_ns() / MS);
    println!(
        "  {:<6} {:<10} {:>5}  {:<7} members",
        "node", "role", "term", "leader"
    );
    for n in 0..sim.node_count() {
        if let Some(s) = sim.status(n) {
            let role = tenure_host::protocol::role_name(s.role);
            println!(
                "  {:<6} {:<10} {:>5}  {:<7} {}",
                s.node_id,
                role,
                s.term,
                s.leader.as_deref().unwrap_or("-"),
                s.members.join(",")
            );
        }
    }
    if sim.violations().is_empty() {
        println!("\nInvariants held throughout: one leader per term, terms never went back.");
        Ok(ExitCode::SUCCESS)
    } else {
        for v in sim.violations() {
            println!("VIOLATION at {} ms: {}", v.at_ns / MS, v.what);
        }
        Ok(ExitCode::FAILURE)
    }
}

fn index_of(sim: &Simulation, id: &str) -> anyhow::Result<usize> {
    (0..sim.node_count())
        .find(|&n| sim.id(n) == id)
        .with_context(|| format!("no node {id}"))
}

fn report_agreement(sim: &mut Simulation) -> anyhow::Result<()> {
    match sim.agreement(CLUSTER) {
        Some((leader, term)) => println!("=> every node follows {leader} in term {term}."),
        None => println!("=> the nodes do not agree on a leader yet."),
    }
    Ok(())
}

/// The plugins of `tenure sim chaos --plugin …`: every node starts with
/// the first (empty config, default limits); swaps pick any of them.
fn chaos_plugins(paths: &[PathBuf]) -> anyhow::Result<Option<chaos::ChaosPlugins>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let engine = plugin_engine()?;
    let versions = paths
        .iter()
        .map(|path| PluginComponent::from_file(&engine, path).map(Arc::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let start = SimPlugin {
        component: versions[0].clone(),
        config: Default::default(),
        limits: PluginLimits::default(),
    };
    Ok(Some(chaos::ChaosPlugins { start, versions }))
}

/// `tenure sim chaos`: one seed with its trace, or a batch of seeds.
pub fn chaos(
    component: Option<PathBuf>,
    plugins: &[PathBuf],
    seed: Option<u64>,
    seeds: Range<u64>,
    jobs: Option<usize>,
    trace: bool,
) -> anyhow::Result<ExitCode> {
    let component = load_election(component)?;
    let plugins = chaos_plugins(plugins)?;
    if let Some(seed) = seed {
        let plan = chaos::ChaosPlan::for_seed_with_plugins(seed, plugins.as_ref());
        let report = chaos::run_plan(&component, seed, plan)?;
        if trace {
            for line in &report.trace {
                println!("{line}");
            }
        }
        println!("seed {seed}: {:?}", report.plan);
        println!(
            "faults injected: {}, simulated {} ms, fingerprint {:016x}",
            report.faults_injected,
            report.simulated_ns / MS,
            report.fingerprint
        );
        if report.passed() {
            let took = report.liveness.as_ref().map_or(0, |t| *t);
            println!(
                "passed: no violations; agreed {} ms after the heal",
                took / MS
            );
            return Ok(ExitCode::SUCCESS);
        }
        print!("{}", report.failure_summary());
        return Ok(ExitCode::FAILURE);
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let (start, count) = (seeds.start, seeds.end - seeds.start);
    let summary = chaos::run_many_with_plugins(&component, plugins.as_ref(), seeds, jobs)?;
    println!(
        "{} seeds from {start} on {jobs} threads: {} failed; {:.0} simulated s in {:.1} s wall \
         ({:.0}x real time); slowest recovery after heal {} ms",
        summary.runs,
        summary.failures.len(),
        summary.simulated_ns as f64 / 1e9,
        summary.wall.as_secs_f64(),
        summary.speedup(),
        summary.max_liveness_ns / MS
    );
    for failure in &summary.failures {
        print!("{}", failure.failure_summary());
    }
    Ok(if summary.failures.is_empty() && summary.runs == count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `tenure sim bench`: simulated seconds per wall-clock second.
pub fn bench(
    component: Option<PathBuf>,
    nodes: usize,
    seconds: u64,
    seed: u64,
) -> anyhow::Result<ExitCode> {
    if nodes == 0 || seconds == 0 {
        bail!("--nodes and --seconds must be positive");
    }
    let component = load_election(component)?;
    let mut sim = Simulation::new(component, seed);
    sim.add_cluster("bench", nodes, |_| {})?;
    let started = Instant::now();
    sim.run_for(seconds * 1_000 * MS);
    let wall = started.elapsed().as_secs_f64();
    let stats = sim.stats();
    println!(
        "{nodes} nodes, {seconds} simulated s in {wall:.3} s wall: {:.0} simulated s per wall s; \
         {} component calls ({:.0}/s wall, {:.2} us each), {} messages delivered",
        seconds as f64 / wall,
        stats.calls,
        stats.calls as f64 / wall,
        wall * 1e6 / stats.calls.max(1) as f64,
        stats.delivered
    );
    if !sim.violations().is_empty() {
        bail!("invariants violated: {:?}", sim.violations());
    }
    Ok(ExitCode::SUCCESS)
}
