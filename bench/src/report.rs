//! What every command prints besides its own figures: the machine, the
//! commit and the command line; a failover run's trials and summary; idle
//! costs.

use anyhow::bail;

use crate::cluster::System;
use crate::failover::{Jitter, Scenario, Trial, trial};
use crate::stats::Summary;

/// Runs trial `i`, recording it or its failure. Gives up after three
/// failures in a row: the cluster is then not recovering.
pub async fn one_trial(
    system: &mut impl System,
    scenario: &Scenario,
    jitter: &mut Jitter,
    i: usize,
    verbose: bool,
    results: &mut Vec<Trial>,
    failures: &mut usize,
) -> anyhow::Result<()> {
    match trial(system, scenario, jitter).await {
        Ok(t) => {
            if verbose {
                let exact = t.moments.map_or(String::new(), |m| {
                    format!(
                        " (logs: candidacy {:.1}, leader {:.1}, all knew {:.1} ms)",
                        m.candidacy_ms, m.elected_ms, m.agreed_ms
                    )
                });
                println!(
                    "  {} trial {i}: {:.1} ms, {} -> {}, term {} -> {}{exact}",
                    system.label(),
                    t.ms,
                    t.old_leader,
                    t.new_leader,
                    t.old_term,
                    t.new_term
                );
            }
            results.push(t);
            Ok(())
        }
        Err(e) => {
            *failures += 1;
            eprintln!("  {} trial {i} failed: {e:#}", system.label());
            if *failures >= 3 && results.is_empty() {
                bail!("{}: three trials failed and none succeeded", system.label());
            }
            Ok(())
        }
    }
}

/// Prints a system's summary; returns its median.
pub fn report(system: &impl System, trials: &[Trial], failures: usize, theory: f64) -> Option<f64> {
    let ms: Vec<f64> = trials.iter().map(|t| t.ms).collect();
    let summary = Summary::of(&ms);
    let multi = trials.iter().filter(|t| t.rounds() > 1).count();
    println!("{}:", system.label());
    println!(
        "  signal to agreed new leader, {} trials: {}",
        ms.len(),
        summary
            .as_ref()
            .map_or("no trials".into(), ToString::to_string)
    );
    let exact: Vec<_> = trials.iter().filter_map(|t| t.moments).collect();
    if !exact.is_empty() {
        let of = |pick: fn(&crate::event_times::Moments) -> f64| {
            self::summary(&exact.iter().map(pick).collect::<Vec<_>>())
        };
        println!(
            "  from the survivors' event logs (CLOCK_MONOTONIC, unpolled), {} trials:",
            exact.len()
        );
        println!("    first candidacy: {}", of(|m| m.candidacy_ms));
        println!("    leader in office: {}", of(|m| m.elected_ms));
        println!("    every survivor knew it: {}", of(|m| m.agreed_ms));
    }
    println!("  trials needing more than one election round: {multi}; failed trials: {failures}");
    println!("  theoretical expectation (timeout path): {theory:.1} ms");
    summary.map(|s| s.median)
}

/// A sample's summary line, or `no data`.
pub fn summary(sample: &[f64]) -> String {
    Summary::of(sample).map_or_else(|| "no data".to_string(), |s| s.to_string())
}

/// Prints each member's idle cost, one line each.
pub fn print_costs(label: &str, costs: &[crate::idle::Cost]) {
    println!("{label}, idle:");
    for c in costs {
        println!(
            "  {:<22} {:<8} CPU {:>5.2} % of a core, RSS {:>6.1} MiB (peak {:.1} MiB)",
            c.who,
            if c.leader { "leader" } else { "follower" },
            c.cpu_percent,
            c.rss_kib as f64 / 1024.0,
            c.peak_kib as f64 / 1024.0
        );
    }
}

/// Prints what the figures were measured on: the machine, the commit of
/// the source tree this bench was built from, and the command line.
pub fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(
            || "?".to_string(),
            |kib| format!("{:.1} GiB", kib as f64 / 1048576.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_string(), |k| k.trim().to_string());
    println!(
        "machine: {cores} cores, {memory} memory, Linux {kernel}, load average {}",
        load_average()
    );
    println!("commit: {}", commit());
    let args: Vec<String> = std::env::args().collect();
    println!("command: {}", args.join(" "));
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` has them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "?".to_string())
}

/// The commit checked out where this bench was built (`git describe
/// --always --dirty`), or `?` without git: it names the source tree, so a
/// binary built before later edits is not told apart.
fn commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_string())
}
