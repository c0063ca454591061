//! One node's `GET /metrics`, read by a real Prometheus text parser (the
//! prometheus-parse crate), for the process tests that check what
//! operators see.

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};

use super::Cluster;

/// One node's scrape: sample name (with its labels, sorted) to value.
#[derive(Debug)]
pub struct Metrics {
    pub values: BTreeMap<String, f64>,
}

impl Metrics {
    pub fn scrape(cluster: &Cluster, id: &str) -> Metrics {
        let (code, text) = super::get(cluster.admin(id), "/metrics");
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
        Metrics { values }
    }

    /// The value of `name{labels}` (labels as `k=v,k=v`, sorted).
    pub fn get(&self, name: &str, labels: &str) -> f64 {
        let key = format!("{name}{{{labels}}}");
        *self
            .values
            .get(&key)
            .unwrap_or_else(|| panic!("no {key} in {:#?}", self.values))
    }

    /// Every counter (`*_total`) and histogram count, for monotonicity.
    pub fn counters(&self) -> BTreeMap<&String, f64> {
        self.values
            .iter()
            .filter(|(k, _)| k.contains("_total{") || k.contains("_count{"))
            .map(|(k, v)| (k, *v))
            .collect()
    }
}
