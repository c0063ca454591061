//! Priorities and observers, with the compiled component in the simulator.

use tenure_host::bindings::types::Role;
use tenure_host::sim::{NodeSpec, Simulation};
use tenure_tests::{MAX_TIMEOUT, MS, assert_safe, component, elect};

const VOTERS: [&str; 3] = ["n1", "n2", "n3"];

#[test]
fn a_healthy_node_of_higher_priority_takes_over_after_the_stability_window() {
    for seed in 0..10 {
        let mut sim = Simulation::new(component(), seed);
        for id in VOTERS {
            let mut spec = NodeSpec::new(id, "c", &VOTERS);
            spec.priority = if id == "n3" { 5 } else { 1 };
            spec.timings.stability_window_ms = 1_000;
            sim.add_node(spec).expect("starts");
        }
        let (_, first, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        if first != "n3" {
            // Not before the window: the leader keeps what it won.
            sim.run_for(900 * MS);
            assert_eq!(
                sim.agreement("c"),
                Some((first.clone(), term)),
                "seed {seed}"
            );
        }
        sim.run_for(1_000 * MS + 2 * MAX_TIMEOUT);
        let (leader, final_term) = sim.agreement("c").expect("agreement");
        assert_eq!(leader, "n3", "seed {seed}");
        // One hand-over at most, and then it stays.
        assert!(
            final_term <= term + 1,
            "seed {seed}: {term} -> {final_term}"
        );
        sim.run_for(5_000 * MS);
        assert_eq!(
            sim.agreement("c"),
            Some((leader, final_term)),
            "seed {seed}"
        );
        assert_safe(&sim);
    }
}

#[test]
fn an_observer_follows_and_reports_but_never_votes_or_stands() {
    for seed in 0..10 {
        let mut sim = Simulation::new(component(), seed);
        for id in VOTERS {
            sim.add_node(NodeSpec::new(id, "c", &VOTERS))
                .expect("starts");
        }
        let mut spec = NodeSpec::new("obs", "c", &VOTERS);
        spec.voter = false;
        let observer = sim.add_node(spec).expect("starts");
        let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        sim.run_for(500 * MS);
        let seen = sim.status(observer).expect("running");
        assert_eq!(
            seen.leader.as_deref(),
            Some(leader_id.as_str()),
            "seed {seed}"
        );
        assert_eq!((seen.role, seen.term), (Role::Follower, term));
        assert_eq!(seen.members, VOTERS.map(String::from).to_vec());
        for voter in 0..3 {
            let status = sim.status(voter).expect("running");
            assert!(!status.members.contains(&"obs".to_string()), "seed {seed}");
            assert_eq!(status.quorum, 2);
        }
        // The leader dies: the observer follows the next one, never
        // standing itself.
        sim.crash(leader);
        let mut next = None;
        for _ in 0..(20 * MAX_TIMEOUT / (5 * MS)) {
            sim.run_for(5 * MS);
            let s = sim.status(observer).expect("running");
            assert_eq!(s.role, Role::Follower, "seed {seed}: the observer stood");
            if let Some(l) = s.leader.filter(|l| *l != leader_id) {
                next = Some(l);
                break;
            }
        }
        let next = next.unwrap_or_else(|| panic!("seed {seed}: observer never saw a new leader"));
        // Two voters down: the last voter and the observer are no quorum.
        let next_index = VOTERS.iter().position(|v| *v == next).expect("a voter");
        sim.crash(next_index);
        sim.run_for(20 * MAX_TIMEOUT);
        assert!(
            sim.leaders("c").is_empty(),
            "seed {seed}: 1 voter + observer elected"
        );
        assert_safe(&sim);
    }
}
