//! Safety under the faults real clusters have, with the compiled component
//! in the simulator: each test makes one fault a reviewer found could break
//! "one leader per term" or the lease, and checks that it no longer does.

use tenure_host::sim::{NodeIndex, Simulation};
use tenure_tests::{MAX_TIMEOUT, MS, assert_safe, cluster, elect};

const IDS: [&str; 3] = ["n1", "n2", "n3"];

fn followers(sim: &Simulation, leader: NodeIndex) -> Vec<NodeIndex> {
    (0..sim.node_count()).filter(|&n| n != leader).collect()
}

/// A resetting firewall, a full listen backlog or a listener that is
/// briefly down refuses a follower's dial to its live leader. Its
/// heartbeats still arrive on the leader's own connection, so the refusal
/// is no evidence of death: the followers stay loyal, the leader keeps its
/// lease and its place. Before the transport judged refusals by
/// `tenure_transport::death`, each refusal made a follower drop its loyalty
/// at once and a new leader was elected inside the old one's lease.
#[test]
fn refused_dials_to_a_live_leader_never_depose_it() {
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &IDS);
        sim.set_crash_detection(Some(5 * MS));
        let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        for _ in 0..300 {
            for follower in followers(&sim, leader) {
                sim.refuse_dial(follower, leader);
            }
            sim.run_for(10 * MS);
        }
        assert_safe(&sim);
        assert_eq!(
            sim.agreement("c"),
            Some((leader_id.clone(), term)),
            "seed {seed}: refusals deposed a live leader"
        );
        // A real crash is still seen at once, and replaced fast.
        let crashed_at = sim.now_ns();
        sim.crash(leader);
        let (_, next, next_term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        assert_ne!(next, leader_id);
        assert!(next_term > term);
        let took = (sim.now_ns() - crashed_at) / MS;
        assert!(
            took < 150,
            "seed {seed}: fast failover took {took} ms after a real crash"
        );
        assert_safe(&sim);
    }
}

/// The limit of that rule, stated in the README: a refusal while nothing
/// comes from the peer either is taken for a death. A network that drops
/// everything from a live leader *and* resets dials to it is
/// indistinguishable from its crash — and the checker sees the lease that
/// breaks then. (Operators on such networks switch fast failover off.)
#[test]
fn a_refusal_from_a_leader_that_is_also_cut_off_is_taken_for_a_death() {
    let mut broke = 0;
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &IDS);
        let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        sim.run_for(20 * MS);
        let rest = followers(&sim, leader);
        sim.partition(&[&[leader]]);
        for &follower in &rest {
            sim.refuse_dial(follower, leader);
        }
        sim.run_for(MAX_TIMEOUT);
        if !sim.violations().is_empty() {
            broke += 1;
        }
    }
    assert!(
        broke > 0,
        "the checker should catch the lease broken outside the assumption"
    );
}
