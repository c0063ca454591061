//! `GET /metrics` on real `tenure run` processes, read by a real
//! Prometheus text parser (the prometheus-parse crate): the values agree
//! with `/status` across a failover, exactly one node reports
//! `tenure_is_leader 1` once settled, and counters never go down across a
//! plugin hot swap.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::collections::BTreeMap;

use kit::{BOUND, Cluster};
use prometheus_parse::{Scrape, Value};

/// One node's scrape: sample name (with its labels, sorted) to value.
#[derive(Debug)]
struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    fn scrape(cluster: &Cluster, id: &str) -> Metrics {
        let (code, text) = kit::get(cluster.admin(id), "/metrics");
        assert_eq!(code, 200, "{text}");
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = Scrape::parse(lines).expect("a Prometheus text-format scrape");
        let mut values = BTreeMap::new();
        for sample in scrape.samples {
            let mut labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            let key = format!("{}{{{}}}", sample.metric, labels.join(","));
            let value = match sample.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
                Value::Summary(_) => continue,
            };
            values.insert(key, value);
        }
        assert!(!values.is_empty(), "an empty scrape:\n{text}");
        Metrics(values)
    }

    /// The value of `name{labels}` (labels as `k=v,k=v`, sorted).
    fn get(&self, name: &str, labels: &str) -> f64 {
        let key = format!("{name}{{{labels}}}");
        *self
            .0
            .get(&key)
            .unwrap_or_else(|| panic!("no {key} in {:#?}", self.0))
    }

    /// Every counter (`*_total`) and histogram count, for monotonicity.
    fn counters(&self) -> BTreeMap<&String, f64> {
        self.0
            .iter()
            .filter(|(k, _)| k.contains("_total{") || k.contains("_count{"))
            .map(|(k, v)| (k, *v))
            .collect()
    }
}

fn scheduler(version: &str) -> std::path::PathBuf {
    tenure_host::component_path::election_wasm()
        .with_file_name(format!("tenure_plugin_scheduler{version}.wasm"))
}

#[test]
fn metrics_agree_with_status_across_a_failover_and_counters_never_go_down() {
    let plugin = format!(
        "[plugin]\npath = \"{}\"\n[plugin.config]\nperiod-ms = \"100\"\n",
        scheduler("").display()
    );
    let mut cluster = Cluster::start("metrics", 3, |_| plugin.clone());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);

    let check = |cluster: &Cluster, nodes: &[&str], leader: &str, term: u64| {
        // A follower counts its leader's contact from the second message
        // it hears from it (the first is what made it a follower).
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut leaders = 0.0;
        for id in nodes {
            let m = Metrics::scrape(cluster, id);
            let status = cluster.status(id).expect("answers");
            assert_eq!(m.get("tenure_term", ""), status.term as f64, "{id}");
            assert_eq!(status.term, term, "{id}");
            let leads = f64::from(u8::from(*id == leader));
            assert_eq!(m.get("tenure_is_leader", ""), leads, "{id}");
            assert_eq!(
                m.get("leader_election_master_status", "name=proc"),
                leads,
                "{id}: client-go's name agrees"
            );
            assert_eq!(m.get("tenure_has_leader", ""), 1.0, "{id}");
            assert!(m.get("tenure_leader_changes_seen_total", "") >= 1.0, "{id}");
            assert!(
                m.get("tenure_state_persist_seconds_count", "") >= 1.0,
                "{id} persisted"
            );
            assert!(
                m.get("tenure_frames_total", "kind=any,outcome=received") > 0.0,
                "{id}"
            );
            if *id == leader {
                assert!(m.get("tenure_lease_remaining_seconds", "") > 0.0);
            } else {
                assert!(
                    m.get("tenure_leader_last_contact_seconds", "") < 1.0,
                    "{id}"
                );
                assert_eq!(m.get("tenure_lease_remaining_seconds", ""), 0.0);
            }
            leaders += m.get("tenure_is_leader", "");
        }
        assert_eq!(leaders, 1.0, "sum(tenure_is_leader) over the cluster");
    };
    check(&cluster, &all, &leader, term);
    let won = Metrics::scrape(&cluster, &leader);
    assert!(won.get("tenure_elections_total", "outcome=won") >= 1.0);
    assert!(won.get("tenure_election_duration_seconds_count", "") >= 1.0);

    // Counters never go down across a plugin hot swap.
    let before: Vec<Metrics> = all.iter().map(|id| Metrics::scrape(&cluster, id)).collect();
    let v2 = std::fs::read(scheduler("_v2")).expect("the v2 scheduler: scripts/build-guests.sh");
    let (code, body, _) = kit::post(cluster.admin(&leader), "/plugin?name=v2.wasm", &v2);
    assert_eq!(code, 200, "{body}");
    let (again, again_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!((again.as_str(), again_term), (leader.as_str(), term));
    for (id, before) in all.iter().zip(&before) {
        let after = Metrics::scrape(&cluster, id);
        for (key, was) in before.counters() {
            let now = after.0.get(key).copied().unwrap_or(0.0);
            assert!(now >= was, "{id}: {key} went from {was} to {now}");
        }
    }
    let swapped = Metrics::scrape(&cluster, &leader);
    assert_eq!(swapped.get("tenure_plugin_swaps_total", "outcome=ok"), 1.0);
    assert!(
        swapped.get(
            "tenure_plugin_callback_duration_seconds_count",
            "callback=on-scheduled"
        ) >= 1.0
    );

    // kill -9 the leader: the survivors agree on the new one.
    cluster.kill9(&leader);
    let rest: Vec<&str> = all.iter().copied().filter(|n| *n != leader).collect();
    let (next, next_term) = cluster.wait_for_leader(&rest, BOUND);
    check(&cluster, &rest, &next, next_term);
    let next_metrics = Metrics::scrape(&cluster, &next);
    assert!(next_metrics.get("tenure_leader_changes_seen_total", "") >= 2.0);
    assert!(next_metrics.get("tenure_elections_total", "outcome=won") >= 1.0);
    println!(
        "metrics: {} samples from {next}; {leader} led term {term}, {next} term {next_term}; \
         sum(tenure_is_leader) = 1 before and after",
        next_metrics.0.len()
    );
}
