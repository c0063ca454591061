//! `leave`: removals through the leader, tombstones.

use super::*;

#[test]
fn the_leader_removes_silent_members_one_at_a_time() {
    let five = ["n1", "n2", "n3", "n4", "n5"];
    let (mut n, start) = Node::start("n1", &five);
    n.fire(last_timer(&start));
    for voter in ["n2", "n3"] {
        n.deliver(
            voter,
            Body::Vote {
                term: 1,
                granted: true,
            },
        );
    }
    assert_eq!(n.e.status().role, Role::Leader);
    n.env.now = 10 * MS;
    ack(&mut n, "n2", 1);
    ack(&mut n, "n3", 1);
    // (A member heard from lately was refused before epochs; it is
    // removable now: see tests::membership_epochs.)
    let unknown = n.e.leave("n9", &mut n.env).expect_err("not a member");
    assert_eq!(
        unknown,
        crate::refusal::ChangeRefusal::UnknownNode { node: "n9".into() }
    );
    n.e.take_actions();
    n.e.leave("n5", &mut n.env)
        .expect("n5 was never heard from");
    let actions = n.e.take_actions();
    let saved = persisted(&actions).expect("the removal is persisted");
    assert_eq!(saved.removed, vec!["n5".to_string()]);
    assert!(
        sent(&actions)
            .iter()
            .any(|(_, b)| matches!(b, Body::Heartbeat { removed, .. } if removed == &["n5"])),
        "the removal goes out at once"
    );
    assert_eq!((n.e.status().members.len(), n.e.status().quorum), (4, 3));
    n.e.leave("n5", &mut n.env).expect("idempotent");
    // The next removal waits until a majority of the new membership has
    // acknowledged a round that carried this one.
    let early = n.e.leave("n4", &mut n.env).expect_err("one at a time");
    assert!(
        matches!(early, crate::refusal::ChangeRefusal::ChangePending { .. }),
        "{early}"
    );
    assert!(early.retry_later() && early.to_string().contains("try again"));
    ack(&mut n, "n2", 2);
    ack(&mut n, "n3", 2);
    n.e.leave("n4", &mut n.env)
        .expect("the first removal settled");
    assert_eq!((n.e.status().members.len(), n.e.status().quorum), (3, 2));
    assert_eq!(n.e.status().epoch, 2, "one epoch per removal");
}

#[test]
fn a_tombstone_outlasts_messages_in_flight_and_restarts() {
    let five = ["n1", "n2", "n3", "n4", "n5"];
    let (mut f, _) = Node::start("n2", &five);
    let refused = f.e.leave("n5", &mut f.env).expect_err("a follower");
    assert_eq!(
        refused,
        crate::refusal::ChangeRefusal::NotLeader {
            node: "n2".into(),
            leader: None
        }
    );
    // The leader's removal is a new epoch of its view.
    f.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 1,
            term: 1,
            round: 3,
            members: five[..4].iter().map(|s| s.to_string()).collect(),
            alive: vec![],
            removed: vec!["n5".into()],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    assert!(!f.e.status().members.contains(&"n5".to_string()));
    // A heartbeat the leader sent before the removal, arriving late, and
    // n5's own messages, do not bring it back; nor does join.
    f.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 2,
            members: five.iter().map(|s| s.to_string()).collect(),
            alive: vec!["n5".into()],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    f.deliver(
        "n5",
        Body::Join {
            members: vec!["n5".into()],
        },
    );
    f.e.join("n5", &mut f.env);
    assert!(!f.e.status().members.contains(&"n5".to_string()));
    let (r, _) = Node::restart("n2", &five, Some(f.e.persisted_state()));
    assert!(!r.e.status().members.contains(&"n5".to_string()));
    assert_eq!(r.e.persisted_state().removed, vec!["n5".to_string()]);
}

#[test]
fn a_removal_spreads_from_the_leader_and_the_removed_node_stops_voting() {
    let (mut l, _) = leader(); // n1 of {n1, n2, n3}, term 1
    l.env.now = 600 * MS; // nothing heard from n3 since the start
    l.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 1,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    l.e.leave("n3", &mut l.env).expect("n3 is silent");
    let beats = sent(&l.e.take_actions());
    let removed_in_beat = beats.iter().find_map(|(to, b)| match b {
        Body::Heartbeat { removed, .. } if to == "n2" => Some(removed.clone()),
        _ => None,
    });
    assert_eq!(removed_in_beat, Some(vec!["n3".to_string()]));
    // A follower learns it from the heartbeat.
    let (mut f, _) = Node::start("n2", &["n1", "n2", "n3"]);
    let (_, beat) = beats.iter().find(|(to, _)| to == "n2").expect("sent");
    f.deliver("n1", beat.clone());
    assert_eq!(
        f.e.status().members,
        vec!["n1".to_string(), "n2".to_string()]
    );
    // The removed node learns it too, and no longer votes or stands.
    let (mut gone, start) = Node::start("n3", &["n1", "n2", "n3"]);
    gone.deliver("n1", beat.clone());
    let vote = gone.deliver(
        "n2",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 5,
            transfer: true,
        },
    );
    assert_eq!(vote_of(&vote), Some((1, false)));
    gone.env.now += 10_000 * MS;
    let fired = gone.fire(last_timer(&start));
    assert!(
        !sent(&fired)
            .iter()
            .any(|(_, b)| matches!(b, Body::RequestVote { .. } | Body::RequestPreVote { .. })),
        "a removed node never campaigns"
    );
    // A leader cannot remove itself.
    let own = l.e.leave("n1", &mut l.env).expect_err("leader");
    assert_eq!(
        own,
        crate::refusal::ChangeRefusal::LeaderMustTransfer { node: "n1".into() }
    );
}
