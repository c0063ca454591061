//! `leave`: shrinking the membership on purpose, with the compiled
//! component in the simulator.

use tenure_host::bindings::types::Role;
use tenure_tests::{MAX_TIMEOUT, MS, assert_safe, cluster, elect};

const FIVE: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

#[test]
fn leaving_members_shrinks_the_quorum_for_good() {
    for seed in 0..10 {
        let mut sim = cluster(seed, "c", &FIVE);
        let (leader, leader_id, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let others: Vec<usize> = (0..5).filter(|&n| n != leader).collect();
        let (gone_a, gone_b, third) = (others[0], others[1], others[2]);
        let id_a = sim.id(gone_a).to_string();
        let id_b = sim.id(gone_b).to_string();

        // Stopped members (a live one may go too: see tests/safety.rs).
        sim.crash(gone_a);
        sim.crash(gone_b);
        sim.run_for(1_000 * MS);
        sim.leave(leader, &id_a).expect("removed");
        // One at a time: the next waits for a majority to know of this one.
        let early = sim.leave(leader, &id_b).expect_err("one at a time");
        assert!(format!("{early:#}").contains("try again"), "seed {seed}");
        sim.run_for(200 * MS);
        sim.leave(leader, &id_b).expect("removed");
        sim.run_for(200 * MS);
        for n in sim.live_nodes("c") {
            let status = sim.status(n).expect("running");
            assert_eq!(status.members.len(), 3, "seed {seed}: {status:?}");
            assert_eq!(status.quorum, 2, "seed {seed}");
        }

        // With five members, two survivors of three crashes would be no
        // quorum; with three, they are.
        sim.crash(third);
        sim.run_for(2_000 * MS);
        let (still, _) = sim.agreement("c").expect("two of three still lead");
        assert_eq!(still, leader_id, "seed {seed}: the leader kept its place");

        // A removed node that comes back is not let back in: its own
        // messages cannot re-add it, it learns it was removed, and it
        // never leads.
        sim.restart(gone_a).expect("restarts");
        sim.run_for(3_000 * MS);
        let back = sim.status(gone_a).expect("running");
        assert_ne!(back.role, Role::Leader);
        assert!(!back.members.contains(&id_a), "seed {seed}: {back:?}");
        for n in [leader].into_iter().chain(
            others
                .iter()
                .copied()
                .filter(|&n| n != gone_a && n != third && n != gone_b),
        ) {
            let status = sim.status(n).expect("running");
            assert!(!status.members.contains(&id_a), "seed {seed}: re-added");
        }
        assert_safe(&sim);
    }
}
