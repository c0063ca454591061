//! The randomized fault scenario ("swarm testing", as in TigerBeetle's VOPR).
//!
//! One seed chooses everything: the cluster size (3–7), the timings, which
//! kinds of fault this run uses and how hard the network misbehaves. Then:
//!
//! 1. **Safety phase** (10 s of virtual time): faults strike at random
//!    moments — crashes, restarts, partitions (including isolating the
//!    current leader), one-way and bridge partitions, slow links, process
//!    pauses, refused dials to live peers, heals, bursts of loss,
//!    duplication and reordering, full disks (the node goes quiet until it
//!    can save again), and operators who campaign, transfer leadership,
//!    step the leader down or remove crashed members — while every event
//!    is checked against the invariants.
//! 2. **Liveness phase**: the network heals (full disks get room) and
//!    calms down and every
//!    crashed node restarts. Within [`LIVENESS_BOUND_TIMEOUTS`] maximum
//!    election timeouts every node must agree on one leader. Once the last
//!    fault's consequences have played out (one maximum election timeout
//!    and a heartbeat after the heal), the leader then agreed on must hold,
//!    unchallenged, for [`STABILITY_TIMEOUTS`] more.
//!
//! A failed run names its seed and the one command that replays it.
//!
//! # Layout
//!
//! - this file: [`run`], [`run_plan`] and the phases of a run;
//! - `plan.rs`: [`Fault`] and [`ChaosPlan`], what a seed decides;
//! - `inject.rs`: how each fault is applied to the simulation;
//! - `report.rs`: [`ChaosReport`], [`ChaosSummary`] and [`run_many`].

mod inject;
mod plan;
mod report;

pub use plan::{ChaosPlan, ChaosPlugins, Fault};
pub use report::{ChaosReport, ChaosSummary, run_many, run_many_with_plugins};

use std::sync::Arc;

use super::rng::SimRng;
use super::{NetworkConfig, NodeSpec, Simulation};
use crate::protocol::ElectionComponent;

const MS: u64 = 1_000_000;

/// Virtual length of the safety phase.
pub const FAULT_PHASE_NS: u64 = 10_000 * MS;

/// After the network heals, every node must agree on a leader within this
/// many maximum election timeouts.
pub const LIVENESS_BOUND_TIMEOUTS: u64 = 10;

/// Once agreed, the leader and term must hold for this many maximum
/// election timeouts on the healed network.
pub const STABILITY_TIMEOUTS: u64 = 4;

/// At most this many nodes join a chaos run (`j1`, `j2`, …).
const MAX_JOINERS: usize = 3;

/// The cluster id every chaos run uses.
const CLUSTER: &str = "chaos";

/// Runs the chaos scenario for `seed`.
pub fn run(component: &Arc<ElectionComponent>, seed: u64) -> anyhow::Result<ChaosReport> {
    run_plan(component, seed, ChaosPlan::for_seed(seed))
}

/// Runs the chaos scenario for `seed` with a plan of the caller's (a
/// seed's plan with a fault added, say).
pub fn run_plan(
    component: &Arc<ElectionComponent>,
    seed: u64,
    plan: ChaosPlan,
) -> anyhow::Result<ChaosReport> {
    let mut sim = Simulation::new(component.clone(), seed);
    let mut rng = SimRng::derive(seed, 0xfa017);
    let mut drifts = plan.clock_drift_ppm.iter().copied();
    let mut priorities = plan.priorities.iter().copied();
    sim.add_cluster(CLUSTER, plan.nodes, |spec| {
        spec.timings = plan.timings;
        spec.pre_vote = plan.pre_vote;
        spec.clock_drift_ppm = drifts.next().unwrap_or(0);
        spec.priority = priorities.next().unwrap_or(0);
        spec.plugin = plan.plugins.as_ref().map(|p| p.start.clone());
    })?;
    if plan.observer {
        let voters: Vec<String> = (1..=plan.nodes).map(|i| format!("n{i}")).collect();
        let voters: Vec<&str> = voters.iter().map(String::as_str).collect();
        let mut spec = NodeSpec::new("o1", CLUSTER, &voters);
        spec.timings = plan.timings;
        spec.pre_vote = plan.pre_vote;
        spec.voter = false;
        spec.plugin = plan.plugins.as_ref().map(|p| p.start.clone());
        sim.add_node(spec)?;
    }

    // Safety phase.
    sim.set_crash_mid_call(plan.crash_mid_call);
    sim.set_crash_detection(plan.crash_detection_ns);
    if plan.crash_detection_spread_ns > 0 {
        sim.set_crash_detection_spread(plan.crash_detection_spread_ns);
    }
    let mut faults_injected = 0;
    loop {
        let gap = rng.range(plan.fault_gap_ns.0, plan.fault_gap_ns.1);
        if sim.now_ns() + gap > FAULT_PHASE_NS {
            sim.run_for(FAULT_PHASE_NS.saturating_sub(sim.now_ns()));
            break;
        }
        sim.run_for(gap);
        let fault = plan.faults[rng.index(plan.faults.len())];
        if inject::inject(&mut sim, &plan, &mut rng, fault)? {
            faults_injected += 1;
        }
    }

    // Liveness phase.
    sim.set_crash_mid_call(0.0);
    sim.resume_all();
    sim.heal();
    sim.set_network(NetworkConfig::default());
    for node in 0..sim.node_count() {
        sim.restart(node)?;
    }
    let max_timeout = u64::from(plan.timings.election_timeout_max_ms) * MS;
    let bound = LIVENESS_BOUND_TIMEOUTS * max_timeout;
    let healed_at = sim.now_ns();
    let liveness = sim
        .run_until_agreement(CLUSTER, bound)
        .map(|(_, _, took)| took)
        .map_err(|e| format!("{e:#}"));
    let stability = match liveness {
        Ok(_) => settled_leader_holds(&mut sim, &plan, healed_at),
        Err(_) => Ok(()),
    };

    Ok(ChaosReport {
        seed,
        plan,
        faults_injected,
        violations: sim.violations().to_vec(),
        liveness,
        stability,
        simulated_ns: sim.now_ns(),
        fingerprint: sim.fingerprint(),
        trace: sim.trace().to_vec(),
        plugin_leaderships: sim.plugin_leaderships(),
    })
}

/// Checks that the leader holds on the healed network once the last
/// fault's consequences have played out. Those take up to one maximum
/// election timeout plus one heartbeat after the heal: a leader isolated
/// just before it steps down at its next check-quorum tick, and a node
/// that campaigned while cut off brings its higher term back (pre-vote
/// would spare that election). From then on nothing may change.
fn settled_leader_holds(
    sim: &mut Simulation,
    plan: &ChaosPlan,
    healed_at: u64,
) -> Result<(), String> {
    let max_timeout = u64::from(plan.timings.election_timeout_max_ms) * MS;
    let settle = max_timeout + u64::from(plan.timings.heartbeat_interval_ms) * MS;
    sim.run_for((healed_at + settle).saturating_sub(sim.now_ns()));
    // Joiners (after the planned nodes) have priority 0: they rank below
    // planned nodes of a higher one (chaos seed 389).
    let priority = |n: usize| plan.priorities.get(n).copied().unwrap_or(0);
    let voters = sim.voters(CLUSTER);
    let ranked = voters.iter().any(|&n| priority(n) != priority(voters[0]));
    let agree = |sim: &mut Simulation| {
        sim.run_until_agreement(CLUSTER, LIVENESS_BOUND_TIMEOUTS * max_timeout)
            .map(|(leader, term, _)| (leader, term))
            .map_err(|e| format!("after settling: {e:#}"))
    };
    let (mut leader, mut term) = agree(sim)?;
    if ranked {
        // Leadership moves to the live node of highest priority once it
        // has been heard from, and the leader has led, for the stability
        // window (a failed hand-over is retried after a maximum timeout).
        // The window starts again whenever leadership changes: a node
        // that learned a high term while cut off (an observer, say) can
        // depose a leader or two after the heal (chaos seed 1946), so up
        // to three windows, each after a change.
        let window = u64::from(plan.timings.stability_window_ms) * MS;
        let top_priority = |sim: &mut Simulation, leader: &str| {
            let live = sim.voters(CLUSTER);
            let top = live.iter().map(|&n| priority(n)).max().unwrap_or(0);
            let has = live
                .iter()
                .find(|&&n| sim.id(n) == leader)
                .map_or(0, |&n| priority(n));
            (has, top)
        };
        for round in 0..3 {
            sim.run_for(window + 3 * max_timeout);
            let before = term;
            (leader, term) = agree(sim)?;
            let (has, top) = top_priority(sim, &leader);
            if has >= top {
                break;
            }
            if term == before || round == 2 {
                return Err(format!(
                    "settled on {leader} of priority {has} while a live node has priority {top}"
                ));
            }
        }
    }
    sim.run_for(STABILITY_TIMEOUTS * max_timeout);
    match sim.agreement(CLUSTER) {
        Some((l, t)) if l == leader && t == term => Ok(()),
        other => Err(format!(
            "settled on {leader} at term {term}, then {other:?} on a healthy network"
        )),
    }
}
