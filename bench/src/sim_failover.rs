//! Failover in virtual time: the real election component in the seeded
//! simulator, with loopback-like delays, a leader frozen (or killed) at a
//! random moment of its heartbeat cycle, and the time until the survivors
//! agree on a new leader. This is the protocol alone — no kernel, no
//! scheduler, no polling — so it shows what a design change is worth
//! before a real-process run (`failover`) adds the machine's noise, and it
//! runs thousands of trials in seconds.

use tenure_host::ElectionComponent;
use tenure_host::sim::{NetworkConfig, NodeSpec, Simulation};

use crate::stats::Summary;

const MS: u64 = 1_000_000;

/// What happens to the leader in a trial.
#[derive(Clone, Copy, Debug)]
pub enum SimFault {
    /// Frozen (SIGSTOP): its connections stay open, nobody sees it die.
    Stop,
    /// Crashed, with the host's crash detection `detect_ms` later (a
    /// closed connection and a refused redial), each survivor up to
    /// `spread_us` later still (drawn per survivor: real survivors are
    /// woken one by one).
    Kill { detect_ms: u64, spread_us: u64 },
}

/// One run's figures.
pub struct SimReport {
    /// Fault to agreement, in milliseconds, one per trial.
    pub ms: Vec<f64>,
    /// Trials whose new leader's term is more than one above the old one.
    pub extra_rounds: usize,
    /// Trials with no agreement within 5 s (counted, not in `ms`).
    pub stuck: usize,
}

/// Runs `trials` seeded trials of `nodes` nodes; seed `i` is trial `i`.
pub fn run(
    component: &std::sync::Arc<ElectionComponent>,
    nodes: usize,
    trials: u64,
    fault: SimFault,
) -> anyhow::Result<SimReport> {
    let ids: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut report = SimReport {
        ms: Vec::new(),
        extra_rounds: 0,
        stuck: 0,
    };
    for seed in 1..=trials {
        let mut sim = Simulation::new(component.clone(), seed);
        sim.set_network(NetworkConfig::loopback());
        if let SimFault::Kill {
            detect_ms,
            spread_us,
        } = fault
        {
            sim.set_crash_detection(Some(detect_ms * MS));
            sim.set_crash_detection_spread(spread_us * 1_000);
        }
        for id in &ids {
            sim.add_node(NodeSpec::new(id, "bench", &ids))?;
        }
        let (leader, term, _) = sim.run_until_agreement("bench", 3_000 * MS)?;
        // Settle, then strike at a phase of the heartbeat cycle that
        // varies with the seed.
        sim.run_for(1_000 * MS + seed.wrapping_mul(7_919) % 50_000 * 1_000);
        let Some(index) = ids.iter().position(|id| *id == leader) else {
            anyhow::bail!("seed {seed}: leader {leader} is not a node");
        };
        let start = sim.now_ns();
        match fault {
            SimFault::Stop => sim.pause(index, 10_000 * MS),
            SimFault::Kill { .. } => sim.crash(index),
        }
        let survivors: Vec<usize> = (0..nodes).filter(|i| *i != index).collect();
        let agreed = loop {
            sim.run_for(MS / 10);
            if let Some(agreed) = sim.agreement_among(&survivors) {
                break Some(agreed);
            }
            if sim.now_ns() - start > 5_000 * MS {
                break None;
            }
        };
        match agreed {
            Some((_, new_term)) => {
                report.ms.push((sim.now_ns() - start) as f64 / MS as f64);
                if new_term > term + 1 {
                    report.extra_rounds += 1;
                }
            }
            None => report.stuck += 1,
        }
        anyhow::ensure!(
            sim.violations().is_empty(),
            "seed {seed}: {:?}",
            sim.violations()
        );
    }
    Ok(report)
}

/// Prints a run's summary.
pub fn print(nodes: usize, fault: SimFault, report: &SimReport) {
    println!(
        "simulated {fault:?}, {nodes} nodes, {} trials: {}",
        report.ms.len() + report.stuck,
        Summary::of(&report.ms).map_or_else(|| "no data".to_string(), |s| s.to_string())
    );
    println!(
        "  trials needing more than one election round: {}; no leader within 5 s: {}",
        report.extra_rounds, report.stuck
    );
}
