//! The admin endpoint's refusals on real `tenure run` processes: every
//! refusal comes with a status code a script can branch on, the reason in
//! words, and `Retry-After` when asking again later may succeed.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use kit::{BOUND, Cluster};
use tenure_host::admin_client::{ACTION_TIMEOUT, AdminReply, exchange};

fn post(cluster: &Cluster, id: &str, path: &str) -> AdminReply {
    kit::block_on(exchange(
        cluster.admin(id),
        "POST",
        path,
        &[],
        ACTION_TIMEOUT,
    ))
    .expect("the admin endpoint answers")
}

#[test]
fn refusals_carry_a_status_code_the_reason_and_when_to_retry() {
    let cluster = Cluster::start("admin", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];
    let (leader, _) = cluster.wait_for_leader(&all, BOUND);
    let follower = all
        .iter()
        .copied()
        .find(|id| *id != leader)
        .expect("two followers");

    // A follower does not transfer: 409, naming the leader to ask.
    let reply = post(&cluster, follower, &format!("/transfer?to={follower}"));
    assert_eq!(reply.code, 409, "{reply:?}");
    assert!(
        reply.body.contains("does not lead") && reply.body.contains(&format!("ask {leader}")),
        "{reply:?}"
    );
    // No such member: 404, for a transfer and for a removal.
    for path in ["/transfer?to=n9", "/leave?node=n9"] {
        let reply = post(&cluster, &leader, path);
        assert_eq!(reply.code, 404, "{path}: {reply:?}");
        assert!(reply.body.contains("n9 is not a member"), "{reply:?}");
    }
    // The leader may not remove itself, nor hand over to itself: 409.
    let reply = post(&cluster, &leader, &format!("/leave?node={leader}"));
    assert_eq!(reply.code, 409, "{reply:?}");
    assert!(
        reply.body.contains("transfer leadership before"),
        "{reply:?}"
    );
    let reply = post(&cluster, &leader, &format!("/transfer?to={leader}"));
    assert_eq!(reply.code, 409, "{reply:?}");
    // The leader does not campaign: 409.
    let reply = post(&cluster, &leader, "/campaign");
    assert_eq!(reply.code, 409, "{reply:?}");
    assert!(reply.body.contains("already leads"), "{reply:?}");
    // A follower loyal to a live leader may stand later: 503, Retry-After.
    let reply = post(&cluster, follower, "/campaign");
    assert_eq!(reply.code, 503, "{reply:?}");
    assert!(reply.body.contains("loyal to leader"), "{reply:?}");
    let retry: u64 = reply
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("seconds");
    assert!((1..=1).contains(&retry), "retry after {retry} s");
    // Nothing of this moved leadership.
    assert_eq!(cluster.wait_for_leader(&all, BOUND).0, leader);
    cluster.assert_one_leader_per_term();
}
