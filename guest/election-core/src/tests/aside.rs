//! Standing aside (a plugin refused to lead) and status changes reported
//! instead of polled.

use super::*;
use crate::refusal::Refusal;

#[test]
fn a_leader_that_stands_aside_steps_down_and_does_not_stand_until_the_hold_ends() {
    let (mut n, _) = leader();
    n.e.stand_aside(2_000, &mut n.env);
    let actions = n.e.take_actions();
    assert_eq!(n.e.status().role, Role::Follower);
    assert!(
        role_events(&actions)
            .iter()
            .any(|e| matches!(e, Event::BecameFollower { leader: None, .. })),
        "{actions:?}"
    );
    // Asked to campaign during the hold: refused, saying for how long.
    n.env.now += 500 * MS;
    assert_eq!(
        n.e.campaign(&mut n.env),
        Err(Refusal::StandingAside { for_ms: 1_500 })
    );
    // Its election timer fires during the hold: it only re-arms, past it.
    let timer = last_timer(&actions);
    let fired = n.fire(timer);
    assert!(
        sent(&fired).is_empty(),
        "no election during the hold: {fired:?}"
    );
    assert_eq!(n.e.status().role, Role::Follower);
    let (next, after) = *timers(&fired).last().expect("re-armed");
    assert!(
        after >= 1_500 * MS,
        "re-armed for {after} ns, before the hold ends"
    );
    // After the hold it stands as before.
    n.env.now += after;
    let fired = n.fire(next);
    assert_eq!(n.e.status().role, Role::Candidate, "{fired:?}");
}

#[test]
fn a_node_standing_aside_ignores_a_hand_over_but_still_votes() {
    let (mut n, _) = Node::start("n2", &["n1", "n2", "n3"]);
    heartbeat_from(&mut n, "n1", 1, 1);
    n.e.stand_aside(10_000, &mut n.env);
    n.e.take_actions();
    let a = n.deliver("n1", Body::TimeoutNow { term: 1, round: 1 });
    assert!(sent(&a).is_empty(), "it must not take over: {a:?}");
    assert_eq!(n.e.status().role, Role::Follower);
    // Once its loyalty to n1 ran out, it votes for another candidate.
    n.env.now += 400 * MS;
    let a = n.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
            transfer: false,
        },
    );
    assert_eq!(vote_of(&a), Some((2, true)));
}

#[test]
fn a_hold_of_zero_ends_a_stand_aside() {
    let (mut n, _) = Node::start("n1", &["n1", "n2", "n3"]);
    n.e.stand_aside(60_000, &mut n.env);
    n.e.stand_aside(0, &mut n.env);
    n.e.take_actions();
    n.env.now += 400 * MS;
    assert_eq!(n.e.campaign(&mut n.env), Ok(()));
}

#[test]
fn status_changes_are_reported_once_each_and_only_when_something_changed() {
    let (mut n, start) = Node::start("n1", &["n1", "n2", "n3"]);
    let first = n.e.status_change().expect("the first call always reports");
    assert_eq!(first, n.e.status());
    assert_eq!(n.e.status_change(), None, "nothing changed");
    // A stale timer changes nothing.
    n.fire(9_999);
    assert_eq!(n.e.status_change(), None);
    // Standing changes role and term.
    n.fire(last_timer(&start));
    let candidate = n.e.status_change().expect("role and term changed");
    assert_eq!((candidate.role, candidate.term), (Role::Candidate, 1));
    n.deliver(
        "n2",
        Body::Vote {
            term: 1,
            granted: true,
        },
    );
    let leading = n.e.status_change().expect("it leads");
    assert_eq!(leading.role, Role::Leader);
    // The lease moves with acknowledged rounds: reported too.
    let round = 1;
    ack(&mut n, "n2", round);
    if let Some(changed) = n.e.status_change() {
        assert_eq!(changed, n.e.status());
    }
    assert_eq!(n.e.status_change(), None);
}
