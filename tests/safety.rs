//! Safety under the faults real clusters have, with the compiled component
//! in the simulator: each test makes one fault a reviewer found could break
//! "one leader per term" or the lease, and checks that it no longer does.

use tenure_host::bindings::types::Role;
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
    let (leader, _, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    let victim = followers(&sim, leader)[0];
    // Make the term move on, and lose the write that recorded it (the
    // next one, a new leader's confirmation of the view, must not come
    // first: it would keep the term).
    sim.step_down(leader).expect("steps down");
    for _ in 0..100_000 {
        if sim.status(victim).expect("running").term > term {
            break;
        }
        sim.run_for(MS / 10);
    }
    assert!(
        sim.status(victim).expect("running").term > term,
        "no new term"
    );
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

/// Two nodes added at once, each through a member on another side of a
/// split (issue 10, item 3). When any member could add a node by hearing
/// from it, each side counted a majority of its own five-member view and
/// two leaders led at once. Now only the leader admits, one node at a
/// time, and votes compare membership epochs.
#[test]
fn two_nodes_joining_at_once_through_two_sides_of_a_split_elect_no_second_leader() {
    let four = ["n1", "n2", "n3", "n4"];
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &four);
        let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let rest: Vec<NodeIndex> = followers(&sim, leader);
        let (a, b, d) = (rest[0], rest[1], rest[2]);
        let joiner = |sim: &mut Simulation, id: &str, through: NodeIndex| {
            let through = sim.id(through).to_string();
            let mut spec = NodeSpec::new(id, "c", &[through.as_str()]);
            spec.joining = true;
            sim.add_node(spec).expect("starts")
        };
        let j1 = joiner(&mut sim, "j1", a);
        let j2 = joiner(&mut sim, "j2", b);
        sim.partition(&[&[leader, a, j1], &[b, d, j2]]);
        sim.run_for(3_000 * MS);
        assert_safe(&sim);
        sim.heal();
        sim.run_for(3_000 * MS);
        let (_, _, _) = elect(&mut sim, "c", 20 * MAX_TIMEOUT);
        let views: Vec<Vec<String>> = (0..sim.node_count())
            .map(|n| sim.status(n).expect("running").members)
            .collect();
        assert!(
            views.windows(2).all(|w| w[0] == w[1]),
            "seed {seed}: {views:?}"
        );
        assert_eq!(
            views[0].len(),
            6,
            "seed {seed}: both admitted, one at a time"
        );
        assert_safe(&sim);
    }
}

/// A live member removed while cut off from the leader (issue 10, item
/// 4). `leave` used to refuse only members heard from lately, which cannot
/// tell a stopped node from a partitioned one, and a removed node that
/// never heard of it voted on. Now the removal is allowed, makes a new
/// epoch, and every up-to-date voter refuses the removed node's stale
/// view: it never leads, and once it hears of the removal it stops.
#[test]
fn a_live_member_removed_while_cut_off_never_leads_or_counts_again() {
    let five = ["n1", "n2", "n3", "n4", "n5"];
    for seed in 0..5 {
        let mut sim = cluster(seed, "c", &five);
        let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        let gone = followers(&sim, leader)[0];
        let gone_id = sim.id(gone).to_string();
        let rest: Vec<NodeIndex> = (0..5).filter(|&n| n != gone).collect();
        sim.partition(&[&[gone], &rest]);
        sim.run_for(20 * MS);
        sim.leave(leader, &gone_id)
            .expect("a live member may be removed");
        // Cut off, it campaigns with its stale view; later the network
        // heals and a new leader must be elected without it.
        sim.run_for(3_000 * MS);
        sim.heal();
        sim.crash(leader);
        sim.run_for(3_000 * MS);
        let (new, _, _) = elect(&mut sim, "c", 20 * MAX_TIMEOUT);
        assert_ne!(new, gone, "seed {seed}");
        let status = sim.status(gone).expect("running");
        assert_ne!(status.role, Role::Leader, "seed {seed}");
        assert!(
            !status.members.contains(&gone_id),
            "seed {seed}: {status:?}"
        );
        for n in rest.iter().copied().filter(|&n| n != leader) {
            let s = sim.status(n).expect("running");
            assert_eq!(s.members.len(), 4, "seed {seed}: {s:?}");
            assert!(!s.members.contains(&gone_id), "seed {seed}: {s:?}");
        }
        assert_safe(&sim);
    }
}
