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
