//! Safety under the faults real clusters have, with the compiled component
//! in the simulator: each test makes one fault a reviewer found could break
//! "one leader per term" or the lease, and checks that it no longer does.

use tenure_host::sim::{NodeIndex, NodeSpec, Simulation};
use tenure_host::types::CampaignRefusal;
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

/// The lease of a leader whose majority is `{leader, f1}` rests on f1's
/// loyalty. Right after a partition of f2 heals, an operator's campaign
/// on f1 used to win with f2's vote (f2 had heard no heartbeat for a
/// while) — a second leader inside the first one's lease. f1 now refuses
/// to stand while loyal, and says so.
#[test]
fn campaigning_right_after_a_heal_on_the_follower_a_lease_rests_on_is_refused() {
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &IDS);
        let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let rest = followers(&sim, leader);
        let (f1, f2) = (rest[0], rest[1]);
        sim.partition(&[&[f2]]);
        sim.run_for(1_000 * MS);
        sim.heal();
        sim.run_for(MS);
        let answer = sim.campaign(f1).expect("runs");
        assert!(
            matches!(answer, Err(CampaignRefusal::Loyal(_))),
            "seed {seed}: {answer:?}"
        );
        sim.run_for(1_000 * MS);
        assert_safe(&sim);
        assert_eq!(sim.agreement("c"), Some((leader_id.clone(), term)));
    }
}

/// A transfer whose TimeoutNow is lost (here the link to the target is cut
/// one way, so the target still acknowledges heartbeats) used to leave the
/// leader without a lease for the rest of its term. It is abandoned after a
/// maximum election timeout, and the lease comes back a round later.
#[test]
fn a_transfer_whose_timeout_now_is_lost_gives_the_lease_back() {
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &IDS);
        let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let target = followers(&sim, leader)[0];
        let target_id = sim.id(target).to_string();
        sim.run_for(100 * MS);
        // Let the naming heartbeat through, then lose everything else the
        // leader sends the target, the TimeoutNow included.
        sim.transfer_leadership(leader, &target_id)
            .expect("accepted");
        sim.cut_link(leader, target);
        sim.run_for(MAX_TIMEOUT + 200 * MS);
        sim.heal();
        sim.run_for(200 * MS);
        let status = sim.status(leader).expect("running");
        let now = sim.node_now_ns(leader);
        assert_eq!(
            sim.agreement("c"),
            Some((leader_id.clone(), term)),
            "seed {seed}"
        );
        assert!(
            status.lease_expires_ns.is_some_and(|until| until > now),
            "seed {seed}: the leader never got its lease back"
        );
        assert_safe(&sim);
    }
}

/// A joiner whose peer list names nodes that do not exist used to spread
/// them to every member's persisted membership: the quorum grew past the
/// nodes that exist and, once a real node failed, no leader could ever be
/// elected (and `leave` needs one). Members now come only from the
/// bootstrap, from nodes that spoke, or from the leader.
#[test]
fn a_joiners_phantom_peers_never_become_members() {
    for seed in 0..3 {
        let mut sim = cluster(seed, "c", &IDS);
        let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let joiner = sim
            .add_node(NodeSpec::new("j", "c", &["n1", "ghost1", "ghost2"]))
            .expect("starts");
        sim.join(joiner, "n1").expect("joins");
        sim.run_for(2_000 * MS);
        for node in 0..sim.node_count() {
            let status = sim.status(node).expect("running");
            assert!(
                !status.members.iter().any(|m| m.starts_with("ghost")) || node == joiner,
                "seed {seed}: {} counts {:?}",
                status.node_id,
                status.members
            );
        }
        // Four real voters: losing the leader leaves three, a majority.
        sim.crash(leader);
        elect(&mut sim, "c", 20 * MAX_TIMEOUT);
        assert_safe(&sim);
    }
}

/// A disk that loses an acknowledged write is outside the assumptions
/// (honest fsync), and still a fault the checker must see: the node comes
/// back with its term taken back.
#[test]
fn a_lost_fsync_is_caught_by_the_checker() {
    let mut sim = cluster(7, "c", &IDS);
    let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    // Make the term move on so every node has written at least twice.
    sim.step_down(leader).expect("steps down");
    let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    let victim = followers(&sim, leader)[0];
    sim.lose_last_write(victim);
    sim.restart(victim).expect("restarts");
    sim.run_for(100 * MS);
    assert!(
        !sim.violations().is_empty(),
        "the checker missed a node that forgot its term"
    );
}

/// A node whose data directory is lost starts again with nothing — and
/// used to vote a second time in a term it had voted in (two leaders in one
/// term). Its peers now remember its old data id: it learns it lost its
/// state and abstains for good, the cluster elects on without it, and no
/// node id ever votes twice in a term.
#[test]
fn a_node_whose_data_directory_is_lost_abstains_and_never_votes_twice() {
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &IDS);
        let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let victim = followers(&sim, leader)[0];
        sim.wipe_disk(victim);
        sim.restart(victim).expect("restarts");
        sim.run_for(500 * MS);
        let status = sim.status(victim).expect("running");
        assert!(status.abstaining, "seed {seed}: {status:?}");
        let answer = sim.campaign(victim).expect("runs");
        assert_eq!(answer, Err(CampaignRefusal::LostState), "seed {seed}");
        // Elections go on among the other two, many times over.
        for _ in 0..5 {
            let (leader, _, _) = elect(&mut sim, "c", 20 * MAX_TIMEOUT);
            sim.step_down(leader).expect("steps down");
        }
        elect(&mut sim, "c", 20 * MAX_TIMEOUT);
        assert_safe(&sim);
    }
}
