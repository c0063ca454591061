//! Leader leases, with the compiled component in the simulator: a leader
//! holds a lease that acknowledged heartbeats renew, loses it before
//! anyone else can be elected, and the simulator's lease invariant really
//! does catch clocks that drift beyond the configured margin.

use tenure_host::bindings::types::Role;
use tenure_host::sim::{NodeIndex, Simulation};
use tenure_tests::{MAX_TIMEOUT, MS, assert_safe, component, elect};

/// A cluster `n1..=n{count}` whose clocks drift by `drift(i)` ppm.
fn drifting_cluster(
    seed: u64,
    count: usize,
    margin_ms: u32,
    drift: impl Fn(usize) -> i32,
) -> Simulation {
    let mut sim = Simulation::new(component(), seed);
    let mut i = 0;
    sim.add_cluster("c", count, |spec| {
        spec.clock_drift_ppm = drift(i);
        spec.timings.lease_drift_margin_ms = margin_ms;
        i += 1;
    })
    .expect("cluster starts");
    sim
}

/// How much lease `node` has left by its own clock, in nanoseconds.
fn lease_left(sim: &mut Simulation, node: NodeIndex) -> Option<u64> {
    let status = sim.status(node)?;
    let now = sim.node_now_ns(node);
    (status.role == Role::Leader)
        .then_some(status.lease_expires_ns)
        .flatten()
        .and_then(|until| until.checked_sub(now))
        .filter(|left| *left > 0)
}

#[test]
fn a_leader_holds_a_lease_that_acknowledged_heartbeats_keep_renewing() {
    for seed in 0..5 {
        let mut sim = drifting_cluster(seed, 3, 15, |_| 0);
        let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        // Sampled every millisecond for a second: the lease never lapses,
        // and never reaches past the minimum timeout less the margin.
        let mut least = u64::MAX;
        for _ in 0..1_000 {
            sim.run_for(MS);
            let left = lease_left(&mut sim, leader)
                .unwrap_or_else(|| panic!("seed {seed}: the healthy leader lost its lease"));
            assert!(left <= 135 * MS, "seed {seed}: {left} ns of lease");
            least = least.min(left);
        }
        // A round goes out every 50 ms and comes back within a few: the
        // lease never gets much below 135 - 50 ms.
        assert!(least >= 80 * MS, "seed {seed}: lease fell to {least} ns");
        for follower in (0..3).filter(|&n| n != leader) {
            assert_eq!(lease_left(&mut sim, follower), None);
        }
        assert_safe(&sim);
    }
}

#[test]
fn a_leader_cut_off_loses_its_lease_before_anyone_else_is_elected() {
    for seed in 0..10 {
        // Clocks within 1 % of each other, covered by the 15 ms margin.
        let mut sim = drifting_cluster(seed, 5, 15, |i| [-10_000, 10_000, 0, 7_000, -4_000][i]);
        let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        sim.run_for(200 * MS);
        let majority: Vec<NodeIndex> = (0..5).filter(|&n| n != leader).collect();
        sim.partition(&[&[leader], &majority]);
        let cut = sim.now_ns();
        let mut lease_lost = None;
        let mut elected = None;
        while sim.now_ns() < cut + 20 * MAX_TIMEOUT && elected.is_none() {
            sim.run_for(MS / 2);
            if lease_lost.is_none() && lease_left(&mut sim, leader).is_none() {
                lease_lost = Some(sim.now_ns());
            }
            if let Some((new, new_term)) = sim.agreement_among(&majority) {
                assert_ne!(new, leader_id);
                assert!(new_term > term);
                elected = Some(sim.now_ns());
            }
        }
        let lost = lease_lost.unwrap_or_else(|| panic!("seed {seed}: the lease never ran out"));
        let elected = elected.unwrap_or_else(|| panic!("seed {seed}: the majority never agreed"));
        assert!(
            lost <= elected,
            "seed {seed}: lease ran to {} ms after the cut, new leader at {} ms",
            (lost - cut) / MS,
            (elected - cut) / MS
        );
        // The lease ends within the minimum timeout of the last round a
        // majority acknowledged, which left at most a heartbeat before
        // the cut.
        assert!(lost - cut <= 150 * MS, "seed {seed}");
        assert_safe(&sim);
    }
}

#[test]
fn the_lease_invariant_catches_clocks_drifting_beyond_the_margin() {
    // The leader's clock runs 15 % slow, everyone else's 15 % fast, and the
    // margin is 1 ms: the leader overestimates its lease while the others
    // stop being loyal early. Some seed must show a new leader elected
    // while the old one still believes in its lease; if none does, the
    // invariant (or the lease) is not being checked.
    let mut caught = None;
    for seed in 0..30 {
        let mut sim = drifting_cluster(seed, 3, 1, |i| if i == 0 { -150_000 } else { 150_000 });
        let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        if leader != 0 {
            sim.transfer_leadership(leader, "n1").expect("transfers");
            sim.run_for(MAX_TIMEOUT);
            if sim.leaders("c") != vec![0] {
                continue;
            }
            // The transfer gave up no lease of n1's; let it earn one.
        }
        sim.run_for(200 * MS);
        sim.partition(&[&[0], &[1, 2]]);
        sim.run_for(20 * MAX_TIMEOUT);
        let lease_violations: Vec<String> = sim
            .violations()
            .iter()
            .filter(|v| v.what.contains("holds a lease"))
            .map(|v| v.what.clone())
            .collect();
        if let Some(first) = lease_violations.first() {
            caught = Some((seed, first.clone()));
            break;
        }
    }
    let (seed, what) = caught.expect("no seed broke the lease with 30 % relative drift");
    assert!(what.contains("n1 holds a lease"), "seed {seed}: {what}");
}

/// The fencing token applications get (`node::leadership::fencing_token_at`,
/// the rule behind `/leader`, `/watch` and the embedding API's guard) is
/// held by at most one node at any instant of virtual time — through
/// crashes, partitions, transfers and step-downs, on drifting clocks —
/// and is gone from a leader before a later term has one.
#[test]
fn fencing_tokens_are_held_by_one_node_at_a_time_in_virtual_time() {
    use tenure_host::node::leadership::fencing_token_at;
    const GUARD_NS: u64 = 20 * MS;
    for seed in 0..4 {
        let mut sim = drifting_cluster(seed, 5, 15, |i| [0, 5_000, -5_000, 2_000, -2_000][i]);
        sim.set_crash_detection(Some(25 * MS));
        let mut holders: Vec<(u64, NodeIndex)> = Vec::new(); // (token, node) over time
        let mut held = 0;
        for step in 0..6_000u64 {
            sim.run_for(MS);
            let now: Vec<(NodeIndex, u64)> = (0..5)
                .filter_map(|n| {
                    let status = sim.status(n)?;
                    let (token, _) = fencing_token_at(&status, GUARD_NS, sim.node_now_ns(n))?;
                    Some((n, token))
                })
                .collect();
            assert!(
                now.len() <= 1,
                "seed {seed}, {step} ms: two nodes hold fencing tokens at once: {now:?}"
            );
            if let Some(&(node, token)) = now.first() {
                held += 1;
                if holders.last() != Some(&(token, node)) {
                    if let Some(&(previous, _)) = holders.last() {
                        assert!(
                            token > previous,
                            "seed {seed}: token {token} after {previous}"
                        );
                    }
                    holders.push((token, node));
                }
            }
            // Faults: a crash, a partition of the leader, a transfer and a
            // step-down, in turn, every 750 ms.
            if step % 750 == 749
                && let Some(&leader) = sim.leaders("c").first()
            {
                match (step / 750) % 4 {
                    0 => sim.crash(leader),
                    1 => sim.partition(&[&[leader]]),
                    2 => {
                        let to = sim.id((leader + 1) % 5).to_string();
                        let _ = sim.transfer_leadership(leader, &to);
                    }
                    _ => {
                        let _ = sim.step_down(leader);
                    }
                }
            }
            if step % 750 == 374 {
                sim.heal();
                for n in 0..5 {
                    if !sim.is_up(n) {
                        sim.restart(n).expect("restarts");
                    }
                }
            }
        }
        assert!(
            holders.len() >= 4,
            "seed {seed}: too few holders to say much: {holders:?}"
        );
        assert!(
            held > 3_000,
            "seed {seed}: a token was held only {held} of 6000 ms"
        );
        assert_safe(&sim);
    }
}
