//! Membership epochs (see [`crate::membership`]): the two holes a
//! reviewer found, and the one-change-at-a-time rules that close them.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::cluster::Cluster;
use super::*;

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| alloc::format!("n{i}")).collect()
}

/// The leader and the other members, sorted.
fn leader_and_rest(c: &Cluster, ids: &[String]) -> (String, Vec<String>) {
    let leaders: Vec<String> = c
        .leaders()
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| ids.contains(id))
        .collect();
    let [leader] = &leaders[..] else {
        panic!("not one leader among {ids:?}: {leaders:?}");
    };
    let leader = leader.clone();
    let rest = ids.iter().filter(|id| **id != leader).cloned().collect();
    (leader, rest)
}

/// Hole 1: four members split two and two while one joiner joins
/// through a node on each side. When any node could add a member by
/// hearing it, each side counted a majority of its own five-member view:
/// two leaders at once.
#[test]
fn two_joiners_through_two_sides_of_a_split_elect_no_second_leader() {
    for seed in 0..10 {
        let ids = names(4);
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut all: Vec<Options> = refs.iter().map(|id| pre_vote_options(id, &refs)).collect();
        all.push(pre_vote_options("j1", &["j1"]));
        all.push(pre_vote_options("j2", &["j2"]));
        let mut c = Cluster::new(all, seed);
        c.run_for(2_000 * MS);
        let (l, rest) = leader_and_rest(&c, &ids);
        let (a, b, d) = (rest[0].clone(), rest[1].clone(), rest[2].clone());
        // The joiners led themselves alone so far (one-node clusters
        // formed apart, outside the guarantee): count only what follows.
        c.overlaps.clear();
        let before = c.split_terms();
        let one = [l.clone(), a.clone(), "j1".to_string()];
        let two = [b.clone(), d.clone(), "j2".to_string()];
        for x in &one {
            for y in &two {
                c.cut_between(x, y);
            }
        }
        c.with("j1", |e, env| e.join(&a, env));
        c.with("j2", |e, env| e.join(&b, env));
        c.run_for(3_000 * MS);
        assert!(c.overlaps.is_empty(), "seed {seed}: {:?}", c.overlaps);
        assert_eq!(c.split_terms(), before, "seed {seed}");
        let leaders = c.leaders();
        assert!(leaders.len() <= 1, "seed {seed}: {leaders:?}");
        // Healed, everyone ends up in one membership under one leader.
        c.heal();
        c.run_for(3_000 * MS);
        let (leader, _) = c
            .leader()
            .unwrap_or_else(|| panic!("seed {seed}: {:?}", c.leaders()));
        let members = c.status(&leader).members;
        assert_eq!(members.len(), 6, "seed {seed}: {members:?}");
        for id in &members {
            assert_eq!(c.status(id).members, members, "seed {seed}: {id}");
        }
    }
}

/// Hole 2: a member that is alive but cut off from the leader looks
/// stopped to it, so `leave` removes it. With two such removals, a
/// cut-off member still holding the old five-member view gathers a
/// majority of it (itself, the other removed node, and a member that
/// missed the second removal) while the leader's lease, from a majority
/// of three, still runs.
#[test]
fn a_cut_off_member_with_a_stale_view_cannot_win_inside_the_lease() {
    for seed in 0..10 {
        let ids = names(5);
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let all: Vec<Options> = refs.iter().map(|id| pre_vote_options(id, &refs)).collect();
        let mut c = Cluster::new(all, seed);
        c.run_for(2_000 * MS);
        let (l, rest) = leader_and_rest(&c, &ids);
        let (a, b, x, y) = (
            rest[0].clone(),
            rest[1].clone(),
            rest[2].clone(),
            rest[3].clone(),
        );
        // x and y are cut off from the leader and from a; y hears only x.
        for cut in [&l, &a] {
            c.cut_between(&x, cut);
            c.cut_between(&y, cut);
        }
        c.cut_between(&y, &b);
        c.run_for(1_000 * MS);
        c.with(&l, |e, env| e.leave(&y, env))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        c.run_for(300 * MS);
        // b, which heard of y's removal, now hears only x.
        c.cut_between(&b, &l);
        c.cut_between(&b, &a);
        c.with(&l, |e, env| e.leave(&x, env))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        c.run_for(3_000 * MS);
        assert!(c.overlaps.is_empty(), "seed {seed}: {:?}", c.overlaps);
        assert!(
            c.split_terms().is_empty(),
            "seed {seed}: {:?}",
            c.split_terms()
        );
        assert_eq!(c.leader().map(|(id, _)| id), Some(l.clone()), "seed {seed}");
    }
}

/// The ordinary path still works: a joiner asks a follower, learns the
/// leader from the welcome, asks it, is admitted (a new epoch that every
/// node adopts), gets confirmed by the members, and its vote then counts.
#[test]
fn a_join_through_a_follower_is_admitted_by_the_leader_and_then_votes() {
    for seed in 0..10 {
        let ids = names(3);
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut all: Vec<Options> = refs.iter().map(|id| pre_vote_options(id, &refs)).collect();
        all.push(pre_vote_options("j", &[]));
        let mut c = Cluster::new(all, seed);
        c.run_for(2_000 * MS);
        let (l, rest) = leader_and_rest(&c, &ids);
        c.overlaps.clear();
        let before = c.split_terms();
        c.with("j", |e, env| e.join(&rest[0], env));
        assert!(
            c.with("j", |e, env| e.campaign(env)).is_err(),
            "seed {seed}: a joiner does not stand before it is admitted"
        );
        c.run_for(1_000 * MS);
        let s = c.status(&l);
        assert_eq!((s.members.len(), s.epoch), (4, 1), "seed {seed}");
        for id in refs.iter().copied().chain(["j"]) {
            let s = c.status(id);
            assert_eq!((s.members.len(), s.epoch), (4, 1), "seed {seed}: {id}");
        }
        let j = c.status("j");
        assert_eq!(j.leader.as_deref(), Some(l.as_str()), "seed {seed}");
        assert!(j.confirmed, "seed {seed}: the members confirmed j");
        // With the leader gone, three of four remain: a new leader needs
        // j's vote.
        c.crash(&l);
        c.run_for(3_000 * MS);
        let (new, _) = c
            .leader()
            .unwrap_or_else(|| panic!("seed {seed}: {:?}", c.leaders()));
        assert_ne!(new, l, "seed {seed}");
        assert!(c.overlaps.is_empty(), "seed {seed}: {:?}", c.overlaps);
        assert_eq!(c.split_terms(), before, "seed {seed}");
    }
}

/// One change at a time: after an admission, neither a removal nor a
/// second admission happens until a majority of the new membership
/// acknowledged a round sent after the first.
#[test]
fn membership_changes_wait_for_the_previous_one_to_settle() {
    let (mut n, _) = leader();
    n.env.now = 10 * MS;
    ack(&mut n, "n2", 1);
    let join = |n: &mut Node, who: &str| {
        n.deliver(
            who,
            Body::Join {
                members: vec![who.into()],
            },
        )
    };
    join(&mut n, "n8");
    assert_eq!(n.e.status().epoch, 1);
    let round = n.e.lease.round;
    // n9 speaks too, and a removal is asked for: both wait.
    join(&mut n, "n9");
    let early = n.e.leave("n3", &mut n.env).expect_err("one at a time");
    assert!(
        matches!(early, crate::refusal::ChangeRefusal::ChangePending { .. }),
        "{early}"
    );
    assert_eq!(n.e.status().members, vec!["n1", "n2", "n3", "n8"]);
    // One ack is no majority of four (n1 and n2 of n1, n2, n3, n8).
    ack(&mut n, "n2", round);
    join(&mut n, "n9");
    assert_eq!(n.e.status().epoch, 1);
    ack(&mut n, "n8", round);
    join(&mut n, "n9");
    let s = n.e.status();
    assert_eq!((s.members.len(), s.epoch), (5, 2), "settled: n9 admitted");
    let round = n.e.lease.round;
    n.e.leave("n3", &mut n.env)
        .expect_err("n9's admission first");
    for peer in ["n2", "n8"] {
        ack(&mut n, peer, round);
    }
    n.e.leave("n3", &mut n.env).expect("settled");
    let s = n.e.status();
    assert_eq!(
        (s.members, s.epoch),
        (
            vec!["n1", "n2", "n8", "n9"]
                .into_iter()
                .map(String::from)
                .collect(),
            3
        )
    );
}

/// A member removed while alive and cut off, that later comes back with
/// its stale view, never votes for or becomes a leader again: up-to-date
/// voters refuse its older epoch, and whoever hears it tells it it was
/// removed.
#[test]
fn a_live_member_removed_while_cut_off_never_votes_or_leads_again() {
    for seed in 0..10 {
        let ids = names(5);
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let all: Vec<Options> = refs.iter().map(|id| pre_vote_options(id, &refs)).collect();
        let mut c = Cluster::new(all, seed);
        c.run_for(2_000 * MS);
        let (l, rest) = leader_and_rest(&c, &ids);
        let x = rest[0].clone();
        c.isolate(&x);
        c.run_for(100 * MS);
        c.with(&l, |e, env| e.leave(&x, env))
            .unwrap_or_else(|e| panic!("seed {seed}: a live member is removable: {e}"));
        // Cut off, x campaigns in vain for a while, then returns.
        c.run_for(2_000 * MS);
        let term = c.status(&x).term;
        c.heal();
        for _ in 0..40 {
            c.run_for(100 * MS);
            assert!(
                c.leaders().iter().all(|(id, _)| *id != x),
                "seed {seed}: {x} leads"
            );
        }
        let s = c.status(&x);
        assert!(!s.members.contains(&x), "seed {seed}: it knows it left");
        let saved = c.saved.get(&x).expect("x persisted");
        assert!(
            saved.voted_for.is_none() || saved.term <= term,
            "seed {seed}: {x} voted at term {} after it returned",
            saved.term
        );
        for id in &rest[1..] {
            assert!(!c.status(id).members.contains(&x), "seed {seed}: {id}");
        }
        assert!(c.overlaps.is_empty(), "seed {seed}: {:?}", c.overlaps);
        assert!(c.split_terms().is_empty(), "seed {seed}");
    }
}

/// SplitMix64, for the chaos runs.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seeded chaos: joins through random nodes, removals of random members
/// (live ones included), partitions, crashes and restarts with intact
/// disks. Across all nodes: one leader per term, no overlapping leases, no
/// double votes.
#[test]
fn chaos_with_joins_removals_partitions_and_crashes_keeps_one_leader_per_term() {
    let (mut led, mut admitted, mut removed) = (0, 0, 0);
    for seed in 0..40u64 {
        let ids = names(5);
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut all: Vec<Options> = refs.iter().map(|id| pre_vote_options(id, &refs)).collect();
        // The joiners' own bootstrap names a node that never answers, so
        // they never lead a cluster of their own before they join.
        let joiners = ["j1", "j2", "j3"];
        for j in joiners {
            all.push(pre_vote_options(j, &[j, "ghost"]));
        }
        let everyone: Vec<String> = ids
            .iter()
            .cloned()
            .chain(joiners.iter().map(|j| j.to_string()))
            .collect();
        let mut c = Cluster::new(all, seed);
        let mut rng = seed.wrapping_mul(7919) + 1;
        let mut down: Vec<String> = Vec::new();
        let mut removals = 0;
        c.run_for(1_000 * MS);
        for _ in 0..60 {
            let pick = |rng: &mut u64, from: &[String]| -> String {
                from[(next(rng) % from.len() as u64) as usize].clone()
            };
            match next(&mut rng) % 8 {
                0 | 1 => {
                    let a = pick(&mut rng, &everyone);
                    let b = pick(&mut rng, &everyone);
                    if a != b {
                        c.cut_between(&a, &b);
                    }
                }
                2 => c.heal(),
                3 => {
                    let a = pick(&mut rng, &everyone);
                    if !down.contains(&a) && down.len() < 2 {
                        c.crash(&a);
                        down.push(a);
                    }
                }
                4 => {
                    if let Some(a) = down.pop() {
                        let state = c.saved.get(&a).cloned();
                        c.restart(&a, state);
                    }
                }
                5 => {
                    let j = pick(&mut rng, &joiners.map(String::from));
                    let through = pick(&mut rng, &ids);
                    if !down.contains(&j) {
                        c.with(&j, |e, env| e.join(&through, env));
                    }
                }
                6 => {
                    if let Some((l, _)) = c.leader()
                        && removals < 2
                    {
                        let members = c.status(&l).members;
                        let x = pick(&mut rng, &members);
                        if x != l && c.with(&l, |e, env| e.leave(&x, env)).is_ok() {
                            removals += 1;
                        }
                    }
                }
                _ => {}
            }
            let pause = 20 + next(&mut rng) % 400;
            c.run_for(pause * MS);
        }
        c.heal();
        for a in down.drain(..) {
            let state = c.saved.get(&a).cloned();
            c.restart(&a, state);
        }
        c.run_for(5_000 * MS);
        if let Some((l, _)) = c.leader() {
            led += 1;
            let members = c.status(&l).members;
            admitted += members.iter().filter(|m| m.starts_with('j')).count();
        }
        removed += removals;
        assert!(c.overlaps.is_empty(), "seed {seed}: {:?}", c.overlaps);
        assert!(
            c.split_terms().is_empty(),
            "seed {seed}: {:?}",
            c.split_terms()
        );
        assert!(
            c.double_votes.is_empty(),
            "seed {seed}: {:?}",
            c.double_votes
        );
    }
    // Liveness, loosely: healed and restarted, nearly every run leads.
    assert!(led >= 36, "only {led} of 40 runs had a leader at the end");
    // The runs did change the membership.
    assert!(
        admitted >= 20 && removed >= 20,
        "{admitted} admitted, {removed} removed"
    );
}

/// Raft's one-server-change bug, closed the Raft way: a change that never
/// settled (epoch 1, made in term 1 and seen by a minority) must lose to
/// the view a later leader confirmed (epoch 0 in term 2), even though its
/// epoch number is higher. Votes compare the confirming leader's term
/// first, then the epoch; a follower replaces an unsettled view with its
/// new leader's.
#[test]
fn an_unsettled_change_loses_to_the_view_a_later_leader_confirmed() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3", "n4"]);
    let hb = |term, epoch, members: &[&str]| Body::Heartbeat {
        term,
        round: 1,
        epoch,
        members: members.iter().map(|m| m.to_string()).collect(),
        alive: vec![],
        removed: vec![],
        transfer_to: None,
        generation: 1,
        full: true,
    };
    // The leader of term 1 admitted n5 (epoch 1) and was deposed before
    // the change settled; n1 saw it.
    n.deliver("n2", hb(1, 1, &["n1", "n2", "n3", "n4", "n5"]));
    assert_eq!(n.e.status().epoch, 1);
    // The leader of term 2, elected at epoch 0 by the others, confirms
    // epoch 0: n1 takes it, although its epoch is lower.
    n.deliver("n3", hb(2, 0, &["n1", "n2", "n3", "n4"]));
    let s = n.e.status();
    assert_eq!((s.epoch, s.members.len()), (0, 4));
    assert_eq!(n.e.persisted_state().epoch_term, 2);
    // Past its loyalty window, it refuses a candidate of the unsettled
    // view and grants one of the confirmed view.
    n.env.now += 1_000 * MS;
    let vote = |n: &mut Node, from: &str, epoch, epoch_term| {
        let actions = n.deliver(
            from,
            Body::RequestVote {
                term: 3,
                transfer: false,
                epoch,
                epoch_term,
            },
        );
        sent(&actions)
            .into_iter()
            .find_map(|(_, b)| match b {
                Body::Vote { granted, .. } => Some(granted),
                _ => None,
            })
            .expect("an answer")
    };
    assert!(!vote(&mut n, "n5", 1, 1), "an unsettled view of term 1");
    assert!(vote(&mut n, "n4", 0, 2), "the view term 2 confirmed");
}

/// Handover format 5 carries the epoch and its term; a format 4 state
/// (the same bytes without them) still imports, at epoch 0.
#[test]
fn the_epoch_survives_a_swap_and_format_4_imports_at_epoch_0() {
    let (mut n, _) = leader();
    n.env.now = 10 * MS;
    ack(&mut n, "n2", 1);
    n.deliver(
        "n9",
        Body::Join {
            members: vec!["n9".into()],
        },
    );
    let exported = n.e.export_state();
    assert_eq!(exported[0], crate::handover::HANDOVER_FORMAT);
    let options = || options("n1", &["n1", "n2", "n3"]);
    let e = Election::import_state(options(), &exported, &mut n.env).expect("imports");
    let s = e.status();
    assert_eq!((s.epoch, s.members.len()), (1, 4));
    assert_eq!(e.persisted_state().epoch_term, 1);
    // Format 4: the same record without the trailing epoch (1), epoch
    // term (1) and pending join (none).
    let mut v4 = exported.clone();
    assert_eq!(v4[v4.len() - 3..], [1, 1, 0]);
    v4.truncate(v4.len() - 3);
    v4[0] = 4;
    let e = Election::import_state(options(), &v4, &mut n.env).expect("format 4 imports");
    assert_eq!((e.status().epoch, e.persisted_state().epoch_term), (0, 0));
}
