//! Item 3: a node loyal to a live leader does not stand, whether the
//! operator asks it to or its timer fires early.

use alloc::string::{String, ToString};
use alloc::vec;

use super::cluster::Cluster;
use super::*;

const IDS: [&str; 3] = ["n1", "n2", "n3"];

#[test]
fn campaigning_on_a_loyal_follower_after_a_heal_elects_no_one_inside_the_lease() {
    for seed in 0..5 {
        let mut c = Cluster::new(
            IDS.iter().map(|id| pre_vote_options(id, &IDS)).collect(),
            seed,
        );
        c.run_for(2_000 * MS);
        let (leader, term) = c.leader().expect("one leader");
        let mut followers = IDS.iter().filter(|id| **id != leader);
        let loyal: String = followers.next().expect("a follower").to_string();
        let cut: String = followers.next().expect("another follower").to_string();
        // One follower is cut off long enough to stop being loyal; the
        // other keeps acknowledging the leader, whose lease rests on it.
        c.isolate(&cut);
        c.run_for(2_000 * MS);
        assert!(c.with(&leader, |e, _| e.lease_expires_ns()).is_some());
        // The partition heals, and at that very moment the operator asks
        // the loyal follower to campaign.
        c.heal();
        let _ = c.with(&loyal, |e, env| e.campaign(env));
        c.run_for(1_000 * MS);
        assert!(c.overlaps.is_empty(), "seed {seed}: {:?}", c.overlaps);
        assert_eq!(c.leader(), Some((leader.clone(), term)), "seed {seed}");
    }
}

#[test]
fn a_loyal_node_whose_election_timer_fires_early_does_not_stand() {
    let (mut n, _) = Node::start("n2", &IDS);
    n.env.now = 1_000 * MS;
    let heard = heartbeat_from(&mut n, "n1", 1, 1);
    n.env.now += 20 * MS;
    // A host that fires the timer early (or a clock that jumped).
    let actions = n.fire(last_timer(&heard));
    let s = n.e.status();
    assert_eq!((s.role, s.term), (Role::Follower, 1), "{actions:?}");
    assert!(sent(&actions).is_empty(), "{actions:?}");
}

#[test]
fn campaign_on_a_loyal_node_is_refused_with_the_time_left() {
    let (mut n, _) = Node::with_options(pre_vote_options("n2", &IDS), None);
    n.env.now = 1_000 * MS;
    heartbeat_from(&mut n, "n1", 1, 1);
    n.env.now += 100 * MS;
    let refusal = n.e.campaign(&mut n.env).expect_err("loyal");
    assert_eq!(
        refusal,
        crate::Refusal::Loyal {
            leader: Some("n1".into()),
            for_ms: 50
        }
    );
    assert!(refusal.to_string().contains("50 ms"), "{refusal}");
    assert!(
        sent(&n.e.take_actions()).is_empty(),
        "a refusal changes nothing"
    );
    assert_eq!(n.e.status().leader.as_deref(), Some("n1"));
    // Once its loyalty has run out, it may stand.
    n.env.now += 50 * MS;
    n.e.campaign(&mut n.env).expect("no longer loyal");
    // A restarted node is loyal for one window too, and an observer never
    // stands.
    let state = PersistedState {
        term: 3,
        voted_for: None,
        members: IDS.iter().map(|s| s.to_string()).collect(),
        removed: vec![],
        ..PersistedState::default()
    };
    let (mut r, _) = Node::restart("n2", &IDS, Some(state));
    assert!(matches!(
        r.e.campaign(&mut r.env),
        Err(crate::Refusal::Loyal {
            leader: None,
            for_ms: 150
        })
    ));
    let mut o = options("o", &IDS);
    o.voter = false;
    let (mut o, _) = Node::with_options(o, None);
    assert_eq!(o.e.campaign(&mut o.env), Err(crate::Refusal::Observer));
}
