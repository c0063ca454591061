//! Adding a node to a running cluster of real processes: `[protocol] join
//! = true` in its config, its `[peers]` naming some members.
//!
//! Built as an integration test of the host package (see host/Cargo.toml).

#[path = "kit/mod.rs"]
mod kit;

use std::time::{Duration, Instant};

use kit::{BOUND, Cluster};

/// Two joiners started at once: the leader admits them one at a time,
/// every node ends with the same five-member view at epoch 2, and a
/// joiner never leads on its way in. Then the leader is killed: the four
/// survivors (joiners among them) elect one leader of the five-member
/// view. Each joiner lists only some members (j2 not the first leader's
/// likely pick): the others, and the other joiner, learn its address as
/// the nodes pass addresses on (see `host/src/node/addresses.rs`).
#[test]
fn two_nodes_joining_a_running_cluster_are_admitted_one_at_a_time() {
    let mut cluster = Cluster::start("joins", 3, |_| String::new());
    let (leader, _) = cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
    cluster.add_joiner("j1", &["n1"]);
    cluster.add_joiner("j2", &["n2", "n3"]);
    let all = ["n1", "n2", "n3", "j1", "j2"];
    let deadline = Instant::now() + BOUND;
    let agreed = loop {
        let statuses = cluster.statuses();
        let views: Vec<(Vec<String>, u64)> = all
            .iter()
            .filter_map(|id| statuses.get(*id))
            .map(|s| (s.members.clone(), s.epoch))
            .collect();
        if views.len() == all.len()
            && views
                .iter()
                .all(|v| v.0.len() == 5 && v.1 == 2 && *v == views[0])
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        agreed,
        "no common five-member view at epoch 2: {:#?}\n{}",
        cluster.statuses(),
        cluster.logs()
    );
    cluster.assert_one_leader_per_term();
    let leaders = cluster.leaders_by_term();
    assert!(
        leaders.values().flatten().all(|l| !l.starts_with('j')),
        "a joiner led on its way in: {leaders:?}"
    );
    cluster.kill9(&leader);
    let rest: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
    let (new, _) = cluster.wait_for_leader(&rest, BOUND);
    assert_ne!(new, leader);
    cluster.assert_one_leader_per_term();
}
