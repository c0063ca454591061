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
        cluster.data_dir("n1").join("state.slots"),
        cluster.data_dir("n3").join("state.slots"),
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
    // The state file of a second deployment that uses the same node ids,
    // as an earlier Tenure wrote it (`state.json`, which a node migrates
    // into its slots at start — after the same checks).
    let foreign = r#"{"version":1,"node-id":"n1","cluster-id":"elsewhere","term":9,"voted-for":"n1","members":["n1"]}"#;
    let mut cluster = Cluster::start("foreign-cluster", 3, |_| String::new());
    cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
    cluster.kill9("n1");
    std::fs::remove_file(cluster.data_dir("n1").join("state.slots")).expect("remove n1's own");
    std::fs::write(cluster.data_dir("n1").join("state.json"), foreign).expect("write");
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

/// Every `(term, process)` that became leader, from the event logs in
/// `dirs` (one per process: two processes may share a node id).
fn leaders_by_term_and_process(
    cluster: &Cluster,
    dirs: &[&str],
) -> std::collections::BTreeMap<u64, Vec<String>> {
    let mut by_term: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    for dir in dirs {
        let text =
            std::fs::read_to_string(cluster.data_dir(dir).join("events.log")).unwrap_or_default();
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            if event["event"] == "became-leader" {
                let term = event["term"].as_u64().expect("term");
                let leaders = by_term.entry(term).or_default();
                if !leaders.contains(&dir.to_string()) {
                    leaders.push(dir.to_string());
                }
            }
        }
    }
    by_term
}

/// A careless operator copies n1's config and data directory to a second
/// host and starts it there: two live processes claim node id n1. Before
/// hellos carried an incarnation, both could lead one term (14 of 40
/// forced rounds in the review). Now the peers refuse the second process
/// loudly, and forced elections never give one term two leaders.
#[test]
fn a_second_process_with_a_running_nodes_id_is_refused_and_never_co_leads() {
    let mut cluster = Cluster::start("duplicate-id", 3, |_| String::new());
    cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
    // The copy: n1's data directory and config, another listen and admin
    // port (another host), its own event log.
    let copy = cluster.data_dir("n1dup");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(cluster.data_dir("n1"))
        .arg(&copy)
        .status()
        .expect("cp runs");
    assert!(copied.success());
    std::fs::write(copy.join("events.log"), "").expect("fresh event log");
    // Its own ports (planned by the kit), n1's node id and peers.
    cluster.local.add_node("n1dup").expect("ports");
    let config = std::fs::read_to_string(cluster.local.config_path("n1")).expect("n1's config");
    let text: String = config
        .lines()
        .map(|line| {
            if line.starts_with("listen") {
                format!("listen = \"{}\"", cluster.listen("n1dup"))
            } else if line.starts_with("admin") {
                format!("admin = \"{}\"", cluster.admin("n1dup"))
            } else if line.starts_with("data-dir") {
                "data-dir = \"n1dup\"".to_string()
            } else {
                line.to_string()
            }
        })
        .map(|line| line + "\n")
        .collect();
    std::fs::write(cluster.local.config_path("n1dup"), text).expect("the copy's config");
    cluster.spawn("n1dup");
    std::thread::sleep(Duration::from_secs(2));

    // Force elections: step whoever leads down, ten times.
    for _ in 0..10 {
        let (leader, _) = cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
        kit::post(cluster.admin(&leader), "/step-down", b"");
        std::thread::sleep(Duration::from_millis(700));
    }
    let by_term = leaders_by_term_and_process(&cluster, &["n1", "n2", "n3", "n1dup"]);
    for (term, leaders) in &by_term {
        assert_eq!(
            leaders.len(),
            1,
            "term {term} had leaders {leaders:?}\n{}",
            cluster.logs()
        );
    }
    assert!(by_term.len() >= 5, "too few elections: {by_term:?}");
    // The peers said so, loudly.
    let statuses = cluster.statuses();
    let refused: u64 = ["n2", "n3"]
        .iter()
        .filter_map(|id| statuses.get(*id))
        .map(|s| s.transport.duplicate_ids)
        .sum();
    assert!(refused > 0, "{statuses:#?}");
    let logs = ["n2", "n3"]
        .iter()
        .map(|id| cluster.log(id))
        .collect::<String>();
    assert!(
        logs.contains("two live processes claim one node id"),
        "{logs}"
    );
    // And the duplicate, told so, stopped with the reason.
    let exited = cluster.wait_exit("n1dup", Duration::ZERO);
    assert!(
        exited.is_some_and(|status| !status.success()),
        "the duplicate kept running: {exited:?}"
    );
    let dup_log = cluster.log("n1dup");
    assert!(
        dup_log.contains("another live process already runs as node n1"),
        "{dup_log}"
    );
}

/// The newest slot's JSON in a `state.slots` file (sequence at bytes
/// 4..12, length at 12..16, payload from 20; 32 KiB slots).
fn newest_slot_json(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("the slots file");
    let slot = |k: usize| {
        let s = &bytes[k * 32 * 1024..];
        let sequence = u64::from_le_bytes(s[4..12].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(s[12..16].try_into().expect("4 bytes")) as usize;
        (sequence, s[20..20 + len].to_vec())
    };
    let (a, b) = (slot(0), slot(1));
    if a.0 > b.0 { a.1 } else { b.1 }
}

#[test]
fn a_data_directory_from_before_the_slots_is_migrated_at_start() {
    let mut cluster = Cluster::start("migrate", 3, |_| String::new());
    cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
    cluster.kill9("n3");
    // What an earlier Tenure kept: the same state, as state.json.
    let slots = cluster.data_dir("n3").join("state.slots");
    let json = newest_slot_json(&slots);
    let saved: serde_json::Value = serde_json::from_slice(&json).expect("JSON state");
    std::fs::remove_file(&slots).expect("remove the slots");
    std::fs::write(cluster.data_dir("n3").join("state.json"), &json).expect("write state.json");

    cluster.spawn("n3");
    let (leader, _) = cluster.wait_for_leader(&["n1", "n2", "n3"], BOUND);
    let report = cluster.status("n3").expect("n3 answers");
    let saved_term = saved["term"].as_u64().expect("a term");
    assert!(
        report.term >= saved_term,
        "n3 forgot its term {saved_term}: {report:?}"
    );
    assert_eq!(
        report.leader.as_deref(),
        Some(leader.as_str()),
        "{report:?}"
    );
    assert!(
        !cluster.data_dir("n3").join("state.json").exists(),
        "state.json was migrated away"
    );
    let migrated: serde_json::Value =
        serde_json::from_slice(&newest_slot_json(&slots)).expect("JSON state");
    assert_eq!(
        migrated["data-id"], saved["data-id"],
        "the same copy of the state"
    );
    cluster.assert_one_leader_per_term();
}
