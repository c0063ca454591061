//! Node identity on real processes: a node's durable state belongs to that
//! node of that cluster, and is refused anywhere else.
//!
//! Built as an integration test of the host package (see host/Cargo.toml).

#[path = "kit/mod.rs"]
mod kit;

use std::time::Duration;

use kit::{BOUND, Cluster};

/// How long a node given a foreign state file may take to refuse it.
const REFUSAL_BOUND: Duration = Duration::from_secs(10);

#[test]
fn a_state_file_of_another_node_is_refused_at_start() {
    let mut cluster = Cluster::start("foreign-node", 3, |_| String::new());
    cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
    cluster.kill9("n3");
    // A careless copy: n1's data directory's state (its vote, its term)
    // lands in n3's.
    std::fs::copy(
        cluster.data_dir("n1").join("state.json"),
        cluster.data_dir("n3").join("state.json"),
    )
    .expect("copy n1's state over n3's");
    let Some((status, log)) = cluster.spawn_expecting_exit("n3", REFUSAL_BOUND) else {
        panic!(
            "n3 started with n1's state file instead of refusing it\n{}",
            cluster.logs()
        );
    };
    assert!(!status.success(), "{log}");
    assert!(log.contains("belongs to node \"n1\""), "{log}");
    // The others are unharmed.
    cluster.wait_for_leader(&["n1", "n2"], BOUND);
}

#[test]
fn a_state_file_of_another_cluster_is_refused_at_start() {
    // A one-node cluster of its own writes a state file...
    let mut elsewhere = Cluster::start("other-cluster", 1, |_| String::new());
    elsewhere.wait_for_leader(&["n1"], BOUND);
    elsewhere.kill9("n1");
    let text = std::fs::read_to_string(elsewhere.data_dir("n1").join("state.json"))
        .expect("its state file");
    // ...of cluster "proc", like every kit cluster's; renamed, it is the
    // file of a second deployment that uses the same node ids.
    let foreign = text.replace("\"cluster-id\": \"proc\"", "\"cluster-id\": \"elsewhere\"");
    let mut cluster = Cluster::start("foreign-cluster", 3, |_| String::new());
    cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
    cluster.kill9("n1");
    std::fs::write(cluster.data_dir("n1").join("state.json"), &foreign).expect("write");
    let Some((status, log)) = cluster.spawn_expecting_exit("n1", REFUSAL_BOUND) else {
        panic!(
            "n1 started with another cluster's state file\n{}",
            cluster.logs()
        );
    };
    assert!(!status.success(), "{log}");
    assert!(log.contains("belongs to cluster \"elsewhere\""), "{log}");
    cluster.wait_for_leader(&["n2", "n3"], BOUND);
}
