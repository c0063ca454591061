//! The example plugins, tested the way a plugin author tests theirs: with
//! `tenure_host::testing`, their built `.wasm` on a simulated cluster
//! beside the real election component, asserting on what each behaviour
//! did — its log lines, its answers, its inspect — through crashes,
//! partitions and hot swaps.
//!
//! `scripts/build-guests.sh` builds the plugins first (the README's test
//! command does).

use std::collections::BTreeMap;
use std::time::Duration;

use tenure_host::testing::{Cluster, Leadership, Plugin, PluginLog};

#[path = "egress/server.rs"]
mod server;

/// The example plugin `tenure_plugin_{name}.wasm` from this workspace's
/// build.
fn example(name: &str) -> Plugin {
    let path = tenure_host::component_path::election_wasm()
        .with_file_name(format!("tenure_plugin_{name}.wasm"));
    Plugin::load(path).unwrap_or_else(|e| panic!("{e}"))
}

/// A scheduler run read from its log line `run N of JOB by NODE in term T`.
#[derive(Debug)]
struct Run {
    at: Duration,
    node: String,
    term: u64,
}

fn runs(logs: &[PluginLog]) -> Vec<Run> {
    logs.iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.message.split_whitespace().collect();
            match words[..] {
                ["run", _, "of", _, "by", node, "in", "term", term, ..] => Some(Run {
                    at: line.at,
                    node: node.to_string(),
                    term: term.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Who led each term.
fn leaders(leaderships: &[Leadership]) -> BTreeMap<u64, String> {
    leaderships
        .iter()
        .map(|l| (l.term, l.node.clone()))
        .collect()
}

#[test]
fn the_scheduler_runs_once_per_period_across_the_cluster_and_never_on_two_nodes_in_a_term() {
    let period = Duration::from_millis(500);
    let scheduler = example("scheduler").config("period-ms", "500");
    for seed in 0..3 {
        let mut cluster = Cluster::builder(3)
            .seed(seed)
            .plugin(&scheduler)
            .start()
            .unwrap();
        let first = cluster.elect().unwrap();
        cluster.run_for(Duration::from_secs(10));
        cluster.crash(first.index);
        let second = cluster.elect().unwrap();
        cluster.run_for(Duration::from_secs(10));
        cluster.check_safety().unwrap();

        let runs = runs(&cluster.logs());
        let leaders = leaders(&cluster.leaderships());
        // Only the leader of a term runs the job in that term: never two
        // nodes in one term.
        for run in &runs {
            assert_eq!(
                leaders.get(&run.term),
                Some(&run.node),
                "seed {seed}: {run:?}"
            );
        }
        // Exactly once per period across the cluster: back to back runs
        // are one period apart, but for the hand-over to the new leader.
        for pair in runs.windows(2) {
            let gap = pair[1].at - pair[0].at;
            if pair[0].term == pair[1].term {
                assert_eq!(gap, period, "seed {seed}: {pair:?}");
            } else {
                assert_eq!((&pair[0].node, &pair[1].node), (&first.id, &second.id));
            }
        }
        let terms: Vec<u64> = runs.iter().map(|r| r.term).collect();
        assert!(terms.is_sorted(), "seed {seed}: terms went back: {terms:?}");
        assert!(
            (37..=40).contains(&runs.len()),
            "seed {seed}: {} runs",
            runs.len()
        );
    }
}

#[test]
fn a_leader_cut_off_in_a_minority_stops_running_within_an_election_timeout() {
    let scheduler = example("scheduler").config("period-ms", "50");
    let mut cluster = Cluster::builder(3)
        .seed(11)
        .plugin(&scheduler)
        .start()
        .unwrap();
    let old = cluster.elect().unwrap();
    cluster.run_for(Duration::from_secs(1));
    let cut = cluster.now();
    let others: Vec<usize> = (0..3).filter(|&n| n != old.index).collect();
    cluster.partition(&[&[old.index], &others]);
    cluster.run_for(Duration::from_secs(3));

    let runs = runs(&cluster.logs());
    // Check-quorum: the old leader steps down one minimum election timeout
    // (150 ms) after it last heard from a majority, and its ticks stop.
    let last_old_run = runs.iter().filter(|r| r.node == old.id).map(|r| r.at).max();
    let last_old_run = last_old_run.expect("the old leader ran");
    assert!(
        last_old_run <= cut + Duration::from_millis(200),
        "{last_old_run:?}"
    );
    // The majority elected a new leader of a higher term, which runs.
    let new_runs: Vec<&Run> = runs.iter().filter(|r| r.node != old.id).collect();
    assert!(new_runs.len() > 40, "{} runs after the cut", new_runs.len());
    assert!(new_runs.iter().all(|r| r.term > old.term));
    // Healed, the old leader follows and still never runs.
    cluster.heal();
    let leader = cluster.elect().unwrap();
    assert_ne!(leader.id, old.id);
    cluster.check_safety().unwrap();
}

#[test]
fn the_scheduler_keeps_counting_through_a_rolling_hot_swap() {
    let v1 = example("scheduler").config("period-ms", "200");
    let v2 = example("scheduler_v2");
    let mut cluster = Cluster::new(3, &v1).unwrap();
    let leader = cluster.elect().unwrap();
    cluster.run_for(Duration::from_secs(1));
    let followers: Vec<usize> = (0..3).filter(|&n| n != leader.index).collect();
    for node in followers.into_iter().chain([leader.index]) {
        cluster.swap(node, &v2).unwrap();
        cluster.run_for(Duration::from_millis(300));
    }
    cluster.run_for(Duration::from_secs(1));
    assert_eq!(cluster.elect().unwrap(), leader, "a swap cost leadership");

    let lines: Vec<String> = cluster
        .logs_of(&leader.id)
        .into_iter()
        .map(|l| l.message)
        .collect();
    let numbers: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("run ")?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "{lines:#?}"
    );
    assert!(
        lines.last().is_some_and(|l| l.ends_with("(v2)")),
        "{lines:#?}"
    );
    let inspect: BTreeMap<String, String> =
        cluster.inspect(leader.index).unwrap().into_iter().collect();
    assert_eq!(inspect["runs"], numbers.len().to_string());
    cluster.check_safety().unwrap();
}

#[test]
fn the_logger_sees_peers_leave_and_come_back() {
    let mut cluster = Cluster::new(3, &example("logger")).unwrap();
    let leader = cluster.elect().unwrap();
    for node in ["n1", "n2", "n3"].into_iter().filter(|n| *n != leader.id) {
        let lines: Vec<String> = cluster
            .logs_of(node)
            .into_iter()
            .map(|l| l.message)
            .collect();
        let follows = format!(
            "on-become-follower leader={} term={}",
            leader.id, leader.term
        );
        assert!(lines.contains(&follows), "{node}: {lines:#?}");
    }
    cluster.crash(leader.index);
    cluster.run_for(Duration::from_secs(2));
    cluster.restart(leader.index).unwrap();
    cluster.run_for(Duration::from_secs(1));

    let survivor = (leader.index + 1) % 3;
    let survivor_id = format!("n{}", survivor + 1);
    let lines: Vec<String> = cluster
        .logs_of(&survivor_id)
        .into_iter()
        .map(|l| l.message)
        .collect();
    let left = lines
        .iter()
        .position(|l| *l == format!("on-peer-left peer={}", leader.id));
    let back = lines
        .iter()
        .rposition(|l| *l == format!("on-peer-joined peer={}", leader.id));
    assert!(left.is_some() && left < back, "{lines:#?}");
    // The restarted node's plugin is a fresh instance: init again.
    let inits = cluster
        .logs_of(&leader.id)
        .iter()
        .filter(|l| l.message.starts_with("init "))
        .count();
    assert_eq!(inits, 2);
    assert_eq!(cluster.call(survivor, b"echo"), Some(Ok(b"echo".to_vec())));
    cluster.check_safety().unwrap();
}

#[test]
fn lock_tokens_grow_across_a_failover_and_survive_a_hot_swap() {
    let lock = example("lock")
        .config("grace-ms", "1000")
        .config("max-ttl-ms", "1000");
    let mut cluster = Cluster::new(3, &lock).unwrap();
    let first = cluster.elect().unwrap();
    let refused = cluster.call(first.index, b"acquire db alice 1000").unwrap();
    assert!(refused.is_err_and(|e| e.contains("warming up")));
    cluster.run_for(Duration::from_millis(1_100));
    let granted = cluster
        .call(first.index, b"acquire db alice 1000")
        .unwrap()
        .unwrap();
    let token = format!("granted db to alice token {}.1", first.term);
    assert_eq!(String::from_utf8_lossy(&granted), token);

    // A hot swap of the leader's plugin keeps the grant and its token.
    cluster.swap(first.index, &lock).unwrap();
    let held = cluster.call(first.index, b"query db").unwrap().unwrap();
    let expected = format!("held db by alice token {}.1 ttl 1000", first.term);
    assert_eq!(String::from_utf8_lossy(&held), expected);

    // The next leader's tokens carry its higher term.
    cluster.crash(first.index);
    let second = cluster.elect().unwrap();
    cluster.run_for(Duration::from_millis(1_100));
    let granted = cluster
        .call(second.index, b"acquire db bob 500")
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&granted),
        format!("granted db to bob token {}.1", second.term)
    );
    assert!(second.term > first.term);
    cluster.check_safety().unwrap();
}

/// The webhook plugin's leader-only job, from the simulator to a real
/// HTTP server the test runs, allowed with `Plugin::allow_http` as a
/// node's `[plugin] allow-http` would: only the leader's requests arrive,
/// each carrying its term as the fencing token.
#[test]
fn the_webhook_job_reaches_a_real_server_from_the_simulator_fenced_by_the_lease() {
    let store = server::Server::start();
    let webhook = example("webhook")
        .config("job-url", &format!("{}/store", store.origin()))
        .config("period-ms", "100")
        .allow_http(&store.origin(), true)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cluster = Cluster::builder(3)
        .seed(7)
        .plugin(&webhook)
        .start()
        .unwrap();
    let leader = cluster.elect().unwrap();
    // Virtual time outruns the server's real time: step it, and give the
    // requests (real, on the plugin I/O thread) a moment between steps.
    for _ in 0..20 {
        cluster.run_for(Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.check_safety().unwrap();
    let accepted = store.accepted(Some(&leader.id));
    assert!(accepted.len() >= 5, "{:?}", store.seen());
    assert!(accepted.iter().all(|t| *t == leader.term), "{accepted:?}");
    assert!(
        store.seen().iter().all(|s| s.is_from(&leader.id)),
        "a follower reached the store: {:?}",
        store.seen()
    );
}
