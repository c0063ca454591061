//! Fast failover turns, campaigns and operator transfers.

use super::*;

#[test]
fn a_follower_told_its_leader_died_campaigns_after_a_short_jitter() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 0,
            term: 2,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    // Another peer's death changes nothing.
    n.e.peer_unreachable("n3", &mut n.env);
    assert!(n.e.take_actions().is_empty());
    n.e.peer_unreachable("n2", &mut n.env);
    let actions = n.e.take_actions();
    let s = n.e.status();
    assert_eq!((s.role, s.term, s.leader), (Role::Follower, 2, None));
    let (timer, after) = *timers(&actions).last().expect("re-armed");
    // n1 is first in line (n3 is not heard from, so not in line): its
    // turn is now, give or take a tenth of a slot of 10 ms.
    assert!(
        after <= MS,
        "first in line waits at most a tenth of a slot: {after}"
    );
    // When it fires, the pre-vote goes out at once; the other survivor,
    // which also saw the death, grants it.
    let pre = n.fire(timer);
    assert!(sent(&pre).iter().all(|(_, b)| matches!(
        b,
        Body::RequestPreVote {
            epoch: 0,
            term: 3,
            ..
        }
    )));
}

#[test]
fn survivors_of_a_dead_leader_take_turns_by_priority_then_id() {
    let turn = |id: &str, priority: u8| {
        let mut options = pre_vote_options(id, &["n1", "n2", "n3", "n4"]);
        options.priority = priority;
        let (mut n, _) = Node::with_options(options, None);
        // The leader n1 vouches for everyone, so all are heard from.
        n.e.on_message(
            "n1",
            &Message {
                cluster_id: "test".into(),
                sender: Standing::default(),
                sender_data_id: data_id_of("n1"),
                recipient_data_id: None,
                body: Body::Heartbeat {
                    epoch: 0,
                    term: 1,
                    round: 1,
                    members: vec![],
                    alive: vec!["n2".into(), "n3".into(), "n4".into()],
                    removed: vec![],
                    transfer_to: None,
                    generation: 1,
                    full: true,
                },
            }
            .encode(),
            &mut n.env,
        );
        // n4 says it has priority 3.
        n.e.on_message(
            "n4",
            &Message {
                cluster_id: "test".into(),
                sender: Standing {
                    voter: true,
                    priority: 3,
                },
                sender_data_id: data_id_of("n4"),
                recipient_data_id: None,
                body: Body::Join { members: vec![] },
            }
            .encode(),
            &mut n.env,
        );
        n.e.take_actions();
        n.e.peer_unreachable("n1", &mut n.env);
        timers(&n.e.take_actions()).last().expect("re-armed").1
    };
    // Slots are 10 ms (a fifth of the 50 ms heartbeat), jitter up to 5 ms.
    let n4 = turn("n4", 3);
    let n2 = turn("n2", 0);
    let n3 = turn("n3", 0);
    assert!(n4 <= MS, "n4, of top priority, goes first: {n4}");
    assert!((10 * MS..=15 * MS).contains(&n2), "n2 second: {n2}");
    assert!((20 * MS..=25 * MS).contains(&n3), "n3 third: {n3}");
}

#[test]
fn campaign_starts_a_pre_vote_now_and_a_leader_ignores_it() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    n.e.campaign(&mut n.env).expect("a fresh node may stand");
    let actions = n.e.take_actions();
    assert!(sent(&actions).iter().all(|(_, b)| matches!(
        b,
        Body::RequestPreVote {
            epoch: 0,
            term: 1,
            ..
        }
    )));
    assert_eq!(sent(&actions).len(), 2);
    let (mut l, _) = leader();
    assert_eq!(
        l.e.campaign(&mut l.env),
        Err(crate::Refusal::Leading { term: 1 })
    );
    assert!(sent(&l.e.take_actions()).is_empty());
    assert_eq!(l.e.status().role, Role::Leader);
}

#[test]
fn a_leader_hands_leadership_over_and_refuses_bad_targets() {
    let (mut n, _) = leader();
    use crate::refusal::ChangeRefusal;
    let refused = |n: &mut Node, to: &str| n.e.transfer_leadership(to, &mut n.env).unwrap_err();
    assert_eq!(
        refused(&mut n, "n1"),
        ChangeRefusal::AlreadyLeads { node: "n1".into() }
    );
    let unknown = refused(&mut n, "n9");
    assert_eq!(unknown, ChangeRefusal::UnknownNode { node: "n9".into() });
    assert!(unknown.to_string().contains("not a member"), "{unknown}");
    assert_eq!(
        refused(&mut n, "n3"),
        ChangeRefusal::NotHeardLately { node: "n3".into() }
    );
    n.deliver(
        "n3",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 0,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    n.e.take_actions();
    n.e.transfer_leadership("n3", &mut n.env)
        .expect("transfers");
    let actions = n.e.take_actions();
    // A heartbeat round naming the target goes out first...
    let out = sent(&actions);
    assert!(out.iter().all(|(_, b)| matches!(b,
        Body::Heartbeat { round: 2, transfer_to: Some(t), .. } if t == "n3")));
    assert_eq!(out.len(), 2, "{out:?}");
    // ...and once a majority acknowledged it (n2 and the leader), the
    // TimeoutNow.
    let actions = n.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 2,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    assert_eq!(
        sent(&actions),
        vec![("n3".into(), Body::TimeoutNow { term: 1, round: 2 })]
    );
    // The target campaigns at once, skipping the pre-vote.
    let (mut t, _) = Node::with_options(pre_vote_options("n3", &["n1", "n2", "n3"]), None);
    t.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 0,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    let actions = t.deliver("n1", Body::TimeoutNow { term: 1, round: 2 });
    assert_eq!((t.e.status().role, t.e.status().term), (Role::Candidate, 2));
    assert!(sent(&actions).iter().all(|(_, b)| matches!(
        b,
        Body::RequestVote {
            epoch: 0,
            term: 2,
            transfer: true,
            ..
        }
    )));
    // The others grant it although they heard from the leader just now,
    // since the leader's heartbeat named it...
    let (mut f, _) = Node::with_options(pre_vote_options("n2", &["n1", "n2", "n3"]), None);
    f.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 1,
            members: vec![],
            alive: vec![],
            removed: vec![],
            transfer_to: Some("n3".into()),
            generation: 1,
            full: true,
        },
    );
    let vote = f.deliver(
        "n3",
        Body::RequestVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
            transfer: true,
        },
    );
    assert_eq!(
        sent(&vote),
        vec![(
            "n3".into(),
            Body::Vote {
                term: 2,
                granted: true
            }
        )]
    );
    // ...and the old leader gave its lease up when it handed over.
    assert_eq!(n.e.lease_expires_ns(), None);
    // A hand-over from a node that is not its leader is ignored.
    let stale = t.deliver("n2", Body::TimeoutNow { term: 2, round: 2 });
    assert!(sent(&stale).is_empty());
    let (mut f, _) = Node::start("n2", &["n1", "n2", "n3"]);
    f.e.transfer_leadership("n1", &mut f.env)
        .expect_err("a follower cannot transfer");
}

#[test]
fn a_refused_pre_vote_while_replacing_a_dead_leader_is_retried_a_slot_later() {
    let (mut n, _) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    n.deliver(
        "n2",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 1,
            members: vec![],
            alive: vec!["n3".into()],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    n.e.peer_unreachable("n2", &mut n.env);
    let (timer, _) = *timers(&n.e.take_actions()).last().expect("re-armed");
    let pre = n.fire(timer);
    assert!(
        sent(&pre)
            .iter()
            .any(|(_, b)| matches!(b, Body::RequestPreVote { .. }))
    );
    // n3 has not seen n2 die yet and refuses.
    let refused = n.deliver(
        "n3",
        Body::PreVote {
            term: 2,
            granted: false,
            current: 1,
        },
    );
    let (retry, after) = *timers(&refused).last().expect("a retry is armed");
    // The line is n1 then n3 (10 ms slots): the retry comes after both
    // turns, so it cannot race n3's own turn and split the vote.
    assert!(
        (20 * MS..=25 * MS).contains(&after),
        "retried after everyone's turn: {after}"
    );
    // When it fires, the pre-vote goes out again.
    let again = n.fire(retry);
    assert!(
        sent(&again)
            .iter()
            .any(|(_, b)| matches!(b, Body::RequestPreVote { .. }))
    );
    // Outside a failover, a refusal re-arms nothing.
    let (mut m, start) = Node::with_options(pre_vote_options("n1", &["n1", "n2", "n3"]), None);
    m.fire(last_timer(&start));
    let plain = m.deliver(
        "n3",
        Body::PreVote {
            term: 1,
            granted: false,
            current: 0,
        },
    );
    assert!(timers(&plain).is_empty());
}

#[test]
fn granting_a_pre_vote_while_replacing_a_dead_leader_defers_this_nodes_turn() {
    let (mut n, _) = Node::with_options(pre_vote_options("n3", &["n1", "n2", "n3"]), None);
    n.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round: 1,
            members: vec![],
            alive: vec!["n2".into()],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    );
    n.e.peer_unreachable("n1", &mut n.env);
    let (_, turn) = *timers(&n.e.take_actions()).last().expect("armed");
    assert!((10 * MS..=15 * MS).contains(&turn), "n3 is second: {turn}");
    // n2, first in line, asks: n3 grants and steps back a whole line.
    let answer = n.deliver(
        "n2",
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
        },
    );
    assert!(
        sent(&answer)
            .iter()
            .any(|(_, b)| matches!(b, Body::PreVote { granted: true, .. }))
    );
    let (_, later) = *timers(&answer).last().expect("re-armed");
    assert!(
        (20 * MS..=25 * MS).contains(&later),
        "after the line: {later}"
    );
}

/// Survivors learn of a death a few ms apart. The first in line may ask
/// before the next has seen it, and be refused for loyalty; that voter
/// then answers again the moment it sees the death itself, rather than
/// leave the first in line to wait out the whole line of turns (which
/// let the second in line win after 20 ms: `tenure-bench failover
/// --fault kill` tail at 3 nodes).
#[test]
fn a_voter_that_refused_for_loyalty_grants_once_it_sees_the_leader_die() {
    let (mut n, _) = Node::with_options(pre_vote_options("n3", &["n1", "n2", "n3"]), None);
    heartbeat_from(&mut n, "n1", 2, 0);
    let ask = || Body::RequestPreVote {
        term: 3,
        epoch: 0,
        epoch_term: 0,
    };
    let refused = n.deliver("n2", ask());
    assert!(
        matches!(&sent(&refused)[..], [(to, Body::PreVoteLater { term: 3, .. })] if to == "n2"),
        "{:?}",
        sent(&refused)
    );
    // Another peer's death changes nothing; the leader's answers n2 now.
    n.e.peer_unreachable("n2", &mut n.env);
    assert!(n.e.take_actions().is_empty());
    n.e.peer_unreachable("n1", &mut n.env);
    let answered = sent(&n.e.take_actions());
    assert!(
        answered.iter().any(|(to, b)| to == "n2"
            && matches!(
                b,
                Body::PreVote {
                    term: 3,
                    granted: true,
                    ..
                }
            )),
        "{answered:?}"
    );
    // Once: a second death notice (a later reconnect refused) repeats
    // nothing.
    n.e.peer_unreachable("n1", &mut n.env);
    assert!(
        !sent(&n.e.take_actions())
            .iter()
            .any(|(_, b)| matches!(b, Body::PreVote { .. }))
    );
}

/// The pre-candidate's side: a grant that follows a refusal counts, and
/// wins the pre-vote.
#[test]
fn a_grant_after_a_loyalty_refusal_wins_the_pre_vote() {
    let (mut n, _) = Node::with_options(pre_vote_options("n2", &["n1", "n2", "n3"]), None);
    heartbeat_from(&mut n, "n1", 2, 0);
    n.e.peer_unreachable("n1", &mut n.env);
    let (timer, _) = *timers(&n.e.take_actions()).last().expect("its turn");
    n.fire(timer);
    n.deliver(
        "n3",
        Body::PreVoteLater {
            term: 3,
            current: 2,
            after_ms: 140,
        },
    );
    assert_eq!(n.e.status().role, Role::Follower);
    n.deliver(
        "n3",
        Body::PreVote {
            term: 3,
            granted: true,
            current: 2,
        },
    );
    let s = n.e.status();
    assert_eq!((s.role, s.term), (Role::Candidate, 3));
}

/// With more survivors, the first in line can be refused by a majority
/// before any of them has seen the death: its pre-vote stays open, and
/// their grants, as each sees the death, still elect it (at 7 nodes it
/// used to give up and wait out six turns: a 70 ms tail).
#[test]
fn a_pre_vote_refused_by_a_majority_that_had_not_seen_the_death_still_wins() {
    let seven = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"];
    let (mut n, _) = Node::with_options(pre_vote_options("n2", &seven), None);
    heartbeat_from(&mut n, "n1", 2, 0);
    n.e.peer_unreachable("n1", &mut n.env);
    let (timer, _) = *timers(&n.e.take_actions()).last().expect("its turn");
    n.fire(timer);
    let later = |n: &mut Node, from| {
        n.deliver(
            from,
            Body::PreVoteLater {
                term: 3,
                current: 2,
                after_ms: 140,
            },
        )
    };
    for voter in ["n3", "n4", "n5", "n6", "n7"] {
        later(&mut n, voter);
    }
    assert_eq!(n.e.status().role, Role::Follower, "refused by everyone");
    for voter in ["n3", "n4", "n5"] {
        n.deliver(
            voter,
            Body::PreVote {
                term: 3,
                granted: true,
                current: 2,
            },
        );
    }
    let s = n.e.status();
    assert_eq!((s.role, s.term), (Role::Candidate, 3));
}
