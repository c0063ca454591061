//! Joining a running cluster (`options.joining`, see [`crate::membership`]):
//! a joiner is in no view until a leader lists it, votes like a Raft
//! server before it hears of its admission, and never trades Join for
//! Welcome with its leader without end; and the `join` call itself.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::cluster::Cluster;
use super::*;

const IDS: [&str; 3] = ["n1", "n2", "n3"];

fn joiner(id: &str, ask: &[&str]) -> Options {
    Options {
        joining: true,
        ..pre_vote_options(id, ask)
    }
}

/// A node started to join is no member of its own view, does not stand,
/// and says why; a restart before any leader admitted it (a crash before
/// its first persist, say) keeps it out, where it used to come back as a
/// bootstrap member of its peer list (chaos seed 17: a one-node cluster of
/// its own, leading term 1 beside the real leader). Once the leader
/// admits it, it is a member everywhere.
#[test]
fn a_joiner_is_no_member_until_a_leader_admits_it_even_across_restarts() {
    for seed in 0..10 {
        let mut all: Vec<Options> = IDS.iter().map(|id| pre_vote_options(id, &IDS)).collect();
        all.push(joiner("j", &["n1", "ghost"]));
        let mut c = Cluster::new(all, seed);
        for id in IDS {
            c.cut_between("j", id);
        }
        c.run_for(2_000 * MS);
        let s = c.status("j");
        assert!(!s.members.contains(&"j".to_string()), "seed {seed}: {s:?}");
        assert_eq!(
            c.with("j", |e, env| e.campaign(env)),
            Err(crate::Refusal::NotAdmitted),
            "seed {seed}"
        );
        let state = c.saved.get("j").cloned();
        c.crash("j");
        c.restart("j", state);
        c.run_for(2_000 * MS);
        let s = c.status("j");
        assert!(!s.members.contains(&"j".to_string()), "seed {seed}: {s:?}");
        assert_eq!(c.leaders().len(), 1, "seed {seed}: {:?}", c.leaders());
        c.heal();
        c.run_for(2_000 * MS);
        let (leader, _) = c.leader().expect("one leader");
        assert_ne!(leader, "j", "seed {seed}");
        for id in IDS.iter().copied().chain(["j"]) {
            let s = c.status(id);
            assert_eq!(
                s.members,
                ["j", "n1", "n2", "n3"].map(String::from).to_vec(),
                "seed {seed}: {id}"
            );
        }
        assert!(
            c.overlaps.is_empty() && c.split_terms().is_empty(),
            "seed {seed}"
        );
    }
}

/// Chaos seed 620: an observer (and as much a joiner) answered each
/// welcome *from its leader* with another Join, and the leader each Join
/// with a welcome and a heartbeat: a storm that grew with every
/// re-announcement. The leader has the join already; only a welcome from
/// someone else sends the node to the leader.
#[test]
fn a_welcome_from_the_leader_itself_asks_for_nothing() {
    let (mut j, _) = Node::with_options(joiner("j", &["n2"]), None);
    let welcome = |leader: &str| Body::Welcome {
        term: 3,
        leader: Some(leader.into()),
        members: Vec::new(),
    };
    let a = j.deliver("n2", welcome("n1"));
    assert_eq!(
        sent(&a),
        vec![(
            "n1".to_string(),
            Body::Join {
                members: vec!["n2".into()]
            }
        )],
        "told of the leader by another, it asks the leader"
    );
    let a = j.deliver("n1", welcome("n1"));
    assert!(sent(&a).is_empty(), "{:?}", sent(&a));
}

/// A joiner the leader admitted may not have heard of it when the leader
/// dies (the heartbeat listing it lost, or its state from before it not
/// yet durable). The survivors' views count it, and without its vote no
/// majority may exist (chaos seed 1807: a lost disk and an unaware joiner
/// stopped a four-member cluster for good). It grants votes as a Raft
/// server does — to candidates whose view is current, once the voters it
/// heard from confirmed it — but still never stands.
#[test]
fn a_joiner_not_yet_aware_of_its_admission_votes_but_does_not_stand() {
    let (mut j, _) = Node::unconfirmed(joiner("j", &["n1"]), None, 3);
    let me = j.e.status().data_id;
    // n2 names it by its data id: recorded and confirmed.
    let _ = j.deliver("n2", Body::Identify { ask: false });
    assert!(j.e.status().confirmed, "{:?}", j.e.status());
    let a = j.deliver(
        "n2",
        Body::RequestVote {
            term: 4,
            transfer: false,
            epoch: 1,
            epoch_term: 1,
        },
    );
    assert_eq!(
        sent(&a),
        vec![(
            "n2".to_string(),
            Body::Vote {
                term: 4,
                granted: true
            }
        )]
    );
    assert_eq!(persisted(&a).and_then(|s| s.voted_for), Some("n2".into()));
    assert_eq!(j.e.status().data_id, me);
    assert_eq!(j.e.campaign(&mut j.env), Err(crate::Refusal::NotAdmitted));
}

#[test]
fn joining_a_cluster_from_an_empty_bootstrap() {
    let (mut j, start) = Node::start("j", &[]);
    j.fire(last_timer(&start));
    assert_eq!(j.e.status().role, Role::Leader, "alone, it leads itself");
    j.e.join("a", &mut j.env);
    let actions = j.e.take_actions();
    let s = j.e.status();
    // Asking adds no one: only the leader's heartbeat admits j.
    assert_eq!(
        (s.role, s.members.clone()),
        (Role::Follower, vec!["j".into()])
    );
    assert!(matches!(&sent(&actions)[..], [(to, Body::Join { .. })] if to == "a"));
    // The welcome names the cluster's leader; j follows it.
    j.deliver(
        "a",
        Body::Welcome {
            term: 4,
            leader: Some("b".into()),
            members: vec!["a".into(), "b".into(), "c".into()],
        },
    );
    // The welcome's list adds no one: b's heartbeat of a later epoch,
    // listing j, admits it.
    let s = j.e.status();
    assert_eq!(
        (s.term, s.leader.as_deref(), s.members.len()),
        (4, Some("b"), 1)
    );
    j.deliver(
        "b",
        Body::Heartbeat {
            epoch: 3,
            term: 4,
            round: 1,
            members: vec!["a".into(), "b".into(), "c".into(), "j".into()],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    assert_eq!(j.e.status().members.len(), 4);
}

#[test]
fn a_joiner_told_of_the_leader_introduces_itself_to_it() {
    let (mut j, _) = Node::start("j", &[]);
    j.e.join("a", &mut j.env);
    j.e.take_actions();
    let actions = j.deliver(
        "a",
        Body::Welcome {
            term: 2,
            leader: Some("b".into()),
            members: vec!["a".into(), "b".into()],
        },
    );
    assert!(matches!(&sent(&actions)[..], [(to, Body::Join { .. })] if to == "b"));
}

#[test]
fn a_leader_welcomes_a_joiner_with_a_heartbeat() {
    let (mut n, _) = leader();
    let join = Body::Join {
        members: vec!["n9".into()],
    };
    // A new leader admits no one before a majority acknowledged it.
    n.deliver("n9", join.clone());
    assert_eq!(n.e.status().members.len(), 3);
    n.env.now = 10 * MS;
    ack(&mut n, "n2", 1);
    let actions = n.deliver("n9", join);
    let to_n9: Vec<_> = sent(&actions)
        .into_iter()
        .filter(|(to, _)| to == "n9")
        .map(|(_, b)| b)
        .collect();
    assert!(matches!(
        &to_n9[..],
        [
            Body::Heartbeat {
                term: 1,
                epoch: 1,
                ..
            },
            Body::Welcome { term: 1, .. },
            Body::Heartbeat { term: 1, .. }
        ]
    ));
    let s = n.e.status();
    assert_eq!((s.members.len(), s.epoch), (4, 1));
}
