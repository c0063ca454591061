//! What a chaos run (or a batch of them) found.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ChaosPlan, ChaosPlugins, MS, run_plan};
use crate::protocol::ElectionComponent;
use crate::sim::Violation;

/// The outcome of one chaos run.
#[derive(Debug)]
pub struct ChaosReport {
    /// The seed that produced this run.
    pub seed: u64,
    /// What the seed chose.
    pub plan: ChaosPlan,
    /// Faults injected in the safety phase.
    pub faults_injected: usize,
    /// Safety violations (should be none).
    pub violations: Vec<Violation>,
    /// Virtual time from the heal to agreement, or why there was none.
    pub liveness: Result<u64, String>,
    /// Whether the agreed leader held; why not otherwise.
    pub stability: Result<(), String>,
    /// Virtual time the run covered.
    pub simulated_ns: u64,
    /// The run's fingerprint (see [`Simulation::fingerprint`](crate::sim::Simulation::fingerprint)).
    pub fingerprint: u64,
    /// The run's trace, one line per event.
    pub trace: Vec<String>,
    /// How many times a plugin took up leadership, each checked (zero in
    /// runs without plugins).
    pub plugin_leaderships: usize,
}

impl ChaosReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.liveness.is_ok() && self.stability.is_ok()
    }

    /// The command that replays this run with its trace (with a
    /// `--plugin` for each of the run's plugin versions, by name, when it
    /// ran plugins: the start's first).
    pub fn repro_command(&self) -> String {
        let mut command = format!(
            "cargo run -p tenure-host -- sim chaos --seed {} --trace",
            self.seed
        );
        if let Some(plugins) = &self.plan.plugins {
            let start = plugins.start.component.name();
            let others = plugins.versions.iter().map(|v| v.name());
            for name in std::iter::once(start).chain(others.filter(|n| *n != start)) {
                command.push_str(&format!(" --plugin PATH/{name}"));
            }
        }
        command
    }

    /// A one-paragraph account of a failed run: the seed, what failed, and
    /// the command that replays it.
    pub fn failure_summary(&self) -> String {
        let mut out = format!(
            "chaos seed {} failed ({} nodes, {:?})\n",
            self.seed, self.plan.nodes, self.plan.faults
        );
        for v in &self.violations {
            out.push_str(&format!("  violation at {} ms: {}\n", v.at_ns / MS, v.what));
        }
        if let Err(e) = &self.liveness {
            out.push_str(&format!("  liveness: {e}\n"));
        }
        if let Err(e) = &self.stability {
            out.push_str(&format!("  stability: {e}\n"));
        }
        out.push_str(&format!("  reproduce with: {}\n", self.repro_command()));
        out
    }
}

/// What a batch of chaos runs found.
#[derive(Debug, Default)]
pub struct ChaosSummary {
    /// Runs completed.
    pub runs: u64,
    /// Reports of the runs that failed, by seed.
    pub failures: Vec<ChaosReport>,
    /// The longest heal-to-agreement time of any passing run.
    pub max_liveness_ns: u64,
    /// Virtual time covered by all runs together.
    pub simulated_ns: u64,
    /// Wall-clock time the batch took.
    pub wall: Duration,
}

impl ChaosSummary {
    /// Simulated seconds per wall-clock second, over the whole batch.
    pub fn speedup(&self) -> f64 {
        self.simulated_ns as f64 / 1e9 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs the seeds in `seeds` on `jobs` threads (each seed is independent
/// and deterministic, so the order they run in does not matter).
pub fn run_many(
    component: &Arc<ElectionComponent>,
    seeds: Range<u64>,
    jobs: usize,
) -> anyhow::Result<ChaosSummary> {
    run_many_with_plugins(component, None, seeds, jobs)
}

/// [`run_many`], each seed's plan with `plugins` on every node when given
/// ([`ChaosPlan::with_plugins`]: hot swaps of them join the faults).
pub fn run_many_with_plugins(
    component: &Arc<ElectionComponent>,
    plugins: Option<&ChaosPlugins>,
    seeds: Range<u64>,
    jobs: usize,
) -> anyhow::Result<ChaosSummary> {
    let started = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let summary = Mutex::new(ChaosSummary::default());
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let plan = ChaosPlan::for_seed_with_plugins(seed, plugins);
                    let report = match run_plan(component, seed, plan) {
                        Ok(report) => report,
                        Err(e) => {
                            let mut slot = lock(&first_error);
                            slot.get_or_insert(e.context(format!("chaos seed {seed}")));
                            break;
                        }
                    };
                    let mut s = lock(&summary);
                    s.runs += 1;
                    s.simulated_ns += report.simulated_ns;
                    match report.liveness {
                        Ok(took) if report.passed() => {
                            s.max_liveness_ns = s.max_liveness_ns.max(took);
                        }
                        _ => s.failures.push(report),
                    }
                }
            });
        }
    });
    if let Some(e) = lock(&first_error).take() {
        return Err(e);
    }
    let mut summary = summary.into_inner().unwrap_or_else(|p| p.into_inner());
    summary.failures.sort_by_key(|r| r.seed);
    summary.wall = started.elapsed();
    Ok(summary)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
