//! Shared helpers for the component-level tests: the compiled election
//! component (compiled once per test process) and cluster builders.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tenure_host::ElectionComponent;
use tenure_host::plugin::{PluginComponent, PluginEngine, PluginLimits, plugin_engine};
use tenure_host::sim::{NodeIndex, NodeSpec, SimPlugin, Simulation};

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

/// The example plugin `tenure_plugin_{name}.wasm` from the build, compiled
/// once per test process.
pub fn plugin_component(name: &str) -> Arc<PluginComponent> {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    static CACHE: OnceLock<Mutex<BTreeMap<String, Arc<PluginComponent>>>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| match plugin_engine() {
        Ok(engine) => engine,
        Err(e) => panic!("{e:#}"),
    });
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry(name.to_string())
        .or_insert_with(|| {
            let path = tenure_host::component_path::election_wasm()
                .with_file_name(format!("tenure_plugin_{name}.wasm"));
            match PluginComponent::from_file(engine, &path) {
                Ok(component) => Arc::new(component),
                Err(e) => panic!("{e:#} (build the plugins with scripts/build-guests.sh)"),
            }
        })
        .clone()
}

/// A [`SimPlugin`] for the example plugin `name` with `config`, a 50 ms
/// deadline and a 32 MiB memory cap.
pub fn sim_plugin(name: &str, config: &[(&str, &str)]) -> SimPlugin {
    SimPlugin {
        component: plugin_component(name),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        limits: PluginLimits {
            deadline: Duration::from_millis(50),
            memory_bytes: 32 << 20,
            ..PluginLimits::default()
        },
    }
}

/// A cluster of `ids` where `plugin(id)` says which plugin each node runs.
pub fn cluster_with_plugins(
    seed: u64,
    cluster_id: &str,
    ids: &[&str],
    plugin: impl Fn(&str) -> Option<SimPlugin>,
) -> Simulation {
    let mut sim = Simulation::new(component(), seed);
    for id in ids {
        let mut spec = NodeSpec::new(id, cluster_id, ids);
        spec.plugin = plugin(id);
        if let Err(e) = sim.add_node(spec) {
            panic!("starting {id}: {e:#}");
        }
    }
    sim
}
