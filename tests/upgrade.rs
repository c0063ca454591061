//! Swapping the protocol component itself in a running cluster: the state
//! moves into the new build, leadership does not.

use std::sync::{Arc, OnceLock};

use tenure_host::ElectionComponent;
use tenure_host::types::{Options, Role, Timings};
use tenure_tests::{MAX_TIMEOUT, MS, assert_safe, cluster, component, elect};

const FIVE: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

/// The second build of the protocol (`TENURE_PROTOCOL_VERSION=0.1.0-next`,
/// made by scripts/build-guests.sh).
fn next_build() -> Arc<ElectionComponent> {
    static NEXT: OnceLock<Arc<ElectionComponent>> = OnceLock::new();
    NEXT.get_or_init(|| {
        let path = tenure_host::component_path::election_wasm()
            .with_file_name("tenure_election_next.wasm");
        match tenure_host::component_path::load_election(Some(path)) {
            Ok(c) => c,
            Err(e) => panic!("{e:#}"),
        }
    })
    .clone()
}

#[test]
fn swapping_the_leaders_protocol_keeps_term_vote_and_leadership() {
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &FIVE);
        let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        sim.run_for(1_234 * MS);
        let before = sim.status(leader).expect("running");
        let version = sim.swap_protocol(leader, &next_build()).expect("swaps");
        assert_eq!(version, "0.1.0-next");
        let after = sim.status(leader).expect("running");
        assert_eq!(after, before, "seed {seed}: the state changed in the swap");
        sim.run_for(5_000 * MS);
        assert_eq!(sim.agreement("c"), Some((leader_id, term)), "seed {seed}");
        assert_eq!(sim.status(leader).map(|s| s.role), Some(Role::Leader));
        assert_safe(&sim);
    }
}

#[test]
fn a_rolling_upgrade_followers_first_keeps_the_same_leader_throughout() {
    let mut sim = cluster(21, "c", &FIVE);
    let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    let order: Vec<usize> = (0..5).filter(|&n| n != leader).chain([leader]).collect();
    for node in order {
        sim.swap_protocol(node, &next_build()).expect("swaps");
        sim.run_for(1_000 * MS);
        assert_eq!(
            sim.agreement("c"),
            Some((leader_id.clone(), term)),
            "after {}",
            sim.id(node)
        );
    }
    // And back again, to the first build.
    for node in 0..5 {
        sim.swap_protocol(node, &component()).expect("swaps back");
    }
    sim.run_for(2_000 * MS);
    assert_eq!(sim.agreement("c"), Some((leader_id, term)));
    assert_eq!(sim.terms_with_leaders(), 1, "no election happened");
    assert_safe(&sim);
}

#[test]
fn a_state_of_another_node_or_format_is_refused() {
    let mut sim = cluster(2, "c", &FIVE);
    let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    // Export from the leader, import as another node: refused.
    let next = next_build();
    let mut exporter = component()
        .instantiate("n1", Box::new(Fixed))
        .expect("instantiates");
    let options = |id: &str| Options {
        node_id: id.into(),
        cluster_id: "c".into(),
        bootstrap: FIVE.iter().map(|s| s.to_string()).collect(),
        timings: Timings::default(),
        pre_vote: true,
        priority: 0,
        voter: true,
        joining: false,
    };
    exporter.start(&options("n1"), None).expect("starts");
    let state = exporter.export_state().expect("exports");
    let mut importer = next
        .instantiate("n2", Box::new(Fixed))
        .expect("instantiates");
    let err = importer
        .import_state(&options("n2"), &state)
        .expect_err("refused");
    assert!(format!("{err:#}").contains("state of node n1"), "{err:#}");
    let mut future = state.clone();
    future[0] = 7;
    let mut importer = next
        .instantiate("n1", Box::new(Fixed))
        .expect("instantiates");
    let err = importer
        .import_state(&options("n1"), &future)
        .expect_err("refused");
    assert!(format!("{err:#}").contains("format 7"), "{err:#}");
    // The running cluster never noticed.
    assert!(sim.status(leader).is_some());
}

struct Fixed;

impl tenure_host::Environment for Fixed {
    fn now_ns(&mut self) -> u64 {
        0
    }
    fn random_u64(&mut self) -> u64 {
        42
    }
}
