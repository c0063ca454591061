//! The timeout path: followers of a leader that goes silent (frozen, cut
//! off) stand in turns, and a pre-vote refused for a moment of loyalty is
//! asked again right after it.

use super::*;

/// A follower `id` of {n1..n4} that heard two heartbeats from leader n1
/// (the first tells it who is alive, the second arms its turn): the
/// election timer it armed last, in ns.
fn timer_after_heartbeats(id: &str) -> u64 {
    let (mut n, _) = Node::with_options(pre_vote_options(id, &["n1", "n2", "n3", "n4"]), None);
    let mut last = Vec::new();
    for round in 1..=2 {
        last = heartbeat_from_vouching(&mut n, round);
    }
    timers(&last).last().expect("re-armed").1
}

fn heartbeat_from_vouching(n: &mut Node, round: u64) -> Vec<Action> {
    n.deliver(
        "n1",
        Body::Heartbeat {
            epoch: 0,
            term: 1,
            round,
            members: vec![],
            alive: vec!["n2".into(), "n3".into(), "n4".into()],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        },
    )
}

#[test]
fn followers_of_a_silent_leader_take_turns_after_the_minimum_timeout() {
    let t = Timings::default();
    let min = u64::from(t.election_timeout_min_ms) * MS;
    let slot = (u64::from(t.heartbeat_interval_ms) * MS / 5).max(5 * MS);
    // The line is the followers by priority (all 0), then id: n2, n3, n4.
    for (rank, id) in ["n2", "n3", "n4"].iter().enumerate() {
        let after = timer_after_heartbeats(id);
        let turn = min + rank as u64 * slot;
        assert!(
            (turn..=turn + slot / 2).contains(&after),
            "{id}, rank {rank}: timer {after} ns, expected its turn {turn} ns plus at most half a slot"
        );
    }
}

#[test]
fn turns_never_run_past_the_maximum_timeout() {
    let timings = Timings {
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 160,
        ..Timings::default()
    };
    let mut options = pre_vote_options("n4", &["n1", "n2", "n3", "n4"]);
    options.timings = timings;
    let (mut n, _) = Node::with_options(options, None);
    let mut last = Vec::new();
    for round in 1..=2 {
        last = heartbeat_from_vouching(&mut n, round);
    }
    let after = timers(&last).last().expect("re-armed").1;
    assert!(
        (150 * MS..=160 * MS).contains(&after),
        "third in line, 10 ms slots, 10 ms window: {after}"
    );
}

/// `p` of {p, q, r} follows q, hears nothing for a minimum election
/// timeout, and starts a pre-vote for term 2.
fn pre_candidate() -> Node {
    let (mut p, _) = Node::with_options(pre_vote_options("p", &["p", "q", "r"]), None);
    let hb = heartbeat_from(&mut p, "q", 1, 1);
    let timer = last_timer(&hb);
    p.env.now += 150 * MS;
    let pre = p.fire(timer);
    assert!(
        sent(&pre)
            .iter()
            .any(|(_, b)| matches!(b, Body::RequestPreVote { term: 2, .. })),
        "a pre-vote went out: {:?}",
        sent(&pre)
    );
    p
}

#[test]
fn a_pre_vote_refused_for_a_moment_of_loyalty_is_asked_again_right_after() {
    let mut p = pre_candidate();
    // r heard the leader's last heartbeat 2 ms after p did.
    let later = p.deliver(
        "r",
        Body::PreVoteLater {
            term: 2,
            current: 1,
            after_ms: 2,
        },
    );
    let (timer, after) = *timers(&later).last().expect("a retry was armed");
    assert_eq!(after, 3 * MS, "right after r's loyalty ends (2 ms + 1 ms)");
    p.env.now += after;
    let again = p.fire(timer);
    assert!(
        sent(&again)
            .iter()
            .any(|(to, b)| to == "r" && matches!(b, Body::RequestPreVote { term: 2, .. })),
        "asked again: {:?}",
        sent(&again)
    );
    // This time r grants it, and p stands.
    p.deliver(
        "r",
        Body::PreVote {
            term: 2,
            granted: true,
            current: 1,
        },
    );
    assert_eq!(p.e.status().role, Role::Candidate);
}

#[test]
fn a_refusal_from_a_voter_that_still_hears_its_leader_is_not_asked_again_early() {
    let mut p = pre_candidate();
    // r heard its leader 30 ms ago: 120 ms of loyalty left. The leader is
    // alive; only p is cut off from it. No early retry: p waits out a
    // normal timeout, as before.
    let later = p.deliver(
        "r",
        Body::PreVoteLater {
            term: 2,
            current: 1,
            after_ms: 120,
        },
    );
    assert!(timers(&later).is_empty(), "no retry armed: {later:?}");
}

#[test]
fn a_loyal_voter_says_how_long_its_loyalty_lasts() {
    let (mut r, _) = Node::with_options(pre_vote_options("r", &["p", "q", "r"]), None);
    heartbeat_from(&mut r, "q", 1, 1);
    r.env.now += 148 * MS;
    let a = r.deliver(
        "p",
        Body::RequestPreVote {
            epoch_term: NEWEST_VIEW,
            epoch: 0,
            term: 2,
        },
    );
    assert_eq!(
        sent(&a),
        vec![(
            "p".into(),
            Body::PreVoteLater {
                term: 2,
                current: 1,
                after_ms: 2
            }
        )]
    );
}
