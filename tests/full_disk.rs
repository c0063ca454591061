//! A full disk in the simulator, with the compiled component: the node
//! runs the real node's policy (`node::durability`) — quiet while it cannot
//! save, speaking again once a save succeeds — and elections stay safe
//! around it.

use tenure_host::bindings::types::Role;
use tenure_host::sim::Simulation;
use tenure_tests::{MAX_TIMEOUT, MS, assert_safe, component, elect};

#[test]
fn a_follower_on_a_full_disk_votes_for_no_one_and_rejoins_once_it_has_room() {
    for seed in 0..10 {
        let mut sim = Simulation::new(component(), seed);
        sim.add_cluster("c", 3, |_| {}).expect("cluster starts");
        let (leader, _, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let full = (leader + 1) % 3;
        let other = (leader + 2) % 3;
        sim.fill_disk(full);
        // The leader's term needs no save: the full follower keeps
        // acknowledging it.
        sim.run_for(MAX_TIMEOUT);
        assert!(
            !sim.cannot_persist(full),
            "seed {seed}: quiet without a save"
        );
        sim.crash(leader);
        // The survivors need the full node's vote; it cannot save the new
        // term, so it goes quiet and no one is elected.
        sim.run_for(10 * MAX_TIMEOUT);
        assert!(
            sim.cannot_persist(full),
            "seed {seed}: the full node never tried to save"
        );
        for node in [full, other] {
            let role = sim.status(node).map(|s| s.role);
            assert_ne!(
                role,
                Some(Role::Leader),
                "seed {seed}: elected without a save"
            );
        }
        assert_safe(&sim);
        // Room again: its retry saves and a leader of a later term follows.
        sim.free_disk(full);
        let started = sim.now_ns();
        let (_, _, next_term) = elect(&mut sim, "c", 20 * MAX_TIMEOUT);
        assert!(next_term > term, "seed {seed}");
        assert!(!sim.cannot_persist(full));
        let took = (sim.now_ns() - started) / MS;
        assert!(
            took < 10 * MAX_TIMEOUT / MS,
            "seed {seed}: {took} ms to recover"
        );
        sim.restart(leader).expect("restarts");
        sim.run_for(10 * MAX_TIMEOUT);
        assert_safe(&sim);
    }
}

#[test]
fn a_leader_whose_disk_fills_keeps_its_term_until_it_must_save() {
    let mut sim = Simulation::new(component(), 7);
    sim.add_cluster("c", 5, |_| {}).expect("cluster starts");
    let (leader, _, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    sim.fill_disk(leader);
    sim.run_for(20 * MAX_TIMEOUT);
    let status = sim.status(leader).expect("up");
    assert_eq!((status.role, status.term), (Role::Leader, term));
    assert!(!sim.cannot_persist(leader));
    // A follower on a full disk of its own changes nothing either.
    assert_safe(&sim);
}

/// Full disks together with crashes and restarts, many times over: the
/// case the policy exists for. A quiet node that sent its vote anyway and
/// then crashed would restart at its saved term and could vote again in
/// that term; the checker compares every vote *sent*, so breaking the
/// policy fails this test (it did, with withholding switched off).
#[test]
fn full_disks_crashes_and_restarts_never_cost_a_double_vote() {
    for seed in 0..60 {
        let mut sim = Simulation::new(component(), seed);
        sim.add_cluster("c", 3, |_| {}).expect("cluster starts");
        let mut draw = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |n: u64| {
            draw = draw
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (draw >> 33) % n
        };
        for _ in 0..40 {
            let node = next(3) as usize;
            match next(5) {
                0 => sim.fill_disk(node),
                1 => sim.free_disk(node),
                2 => sim.crash(node),
                _ => {
                    if !sim.is_up(node) {
                        sim.restart(node).expect("restarts");
                    }
                }
            }
            sim.run_for((next(200) + 20) * MS);
        }
        assert_safe(&sim);
        sim.heal();
        for node in 0..3 {
            if !sim.is_up(node) {
                sim.restart(node).expect("restarts");
            }
        }
        elect(&mut sim, "c", 30 * MAX_TIMEOUT);
    }
}
