//! Shared helpers for the component-level tests: the compiled election
//! component (compiled once per test process) and cluster builders.

use std::sync::{Arc, OnceLock};

use tenure_host::ElectionComponent;
use tenure_host::sim::{NodeIndex, NodeSpec, Simulation};

/// Nanoseconds per millisecond.
pub const MS: u64 = 1_000_000;

/// The default maximum election timeout, in nanoseconds.
pub const MAX_TIMEOUT: u64 = 300 * MS;

/// The compiled election component. Built by `scripts/build-guests.sh`
/// (the README's test command runs it first); a missing build fails the
/// test with that instruction.
pub fn component() -> Arc<ElectionComponent> {
    static COMPONENT: OnceLock<Arc<ElectionComponent>> = OnceLock::new();
    COMPONENT
        .get_or_init(|| match tenure_host::component_path::load_election(None) {
            Ok(component) => component,
            Err(e) => panic!("{e:#}"),
        })
        .clone()
}

/// A simulation with `ids` started as one cluster (each bootstrapped with
/// all of `ids`), driven by `seed`.
pub fn cluster(seed: u64, cluster_id: &str, ids: &[&str]) -> Simulation {
    let mut sim = Simulation::new(component(), seed);
    add_cluster(&mut sim, cluster_id, ids);
    sim
}

/// Adds `ids` as one more cluster to `sim`; returns their indices.
pub fn add_cluster(sim: &mut Simulation, cluster_id: &str, ids: &[&str]) -> Vec<NodeIndex> {
    ids.iter()
        .map(
            |id| match sim.add_node(NodeSpec::new(id, cluster_id, ids)) {
                Ok(index) => index,
                Err(e) => panic!("starting {id}: {e:#}"),
            },
        )
        .collect()
}

/// Panics with the seed, the violations and the trace's tail if the run
/// broke an invariant.
pub fn assert_safe(sim: &Simulation) {
    if !sim.violations().is_empty() {
        let tail: Vec<&String> = sim.trace().iter().rev().take(40).rev().collect();
        panic!(
            "seed {}: invariants violated: {:#?}\ntrace tail:\n{}",
            sim.seed(),
            sim.violations(),
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Runs until `cluster` agrees on a leader within `bound_ns`; panics with
/// the seed and trace otherwise. Returns (leader index, leader id, term).
pub fn elect(sim: &mut Simulation, cluster_id: &str, bound_ns: u64) -> (NodeIndex, String, u64) {
    match sim.run_until_agreement(cluster_id, bound_ns) {
        Ok((leader, term, _)) => {
            assert_safe(sim);
            let index = sim
                .live_nodes(cluster_id)
                .into_iter()
                .find(|&n| sim.id(n) == leader)
                .unwrap_or_else(|| panic!("leader {leader} is not a live node"));
            (index, leader, term)
        }
        Err(e) => {
            let tail: Vec<&String> = sim.trace().iter().rev().take(60).rev().collect();
            panic!(
                "{e:#}\ntrace tail:\n{}",
                tail.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        }
    }
}
