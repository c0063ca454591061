//! The checker: reads every node's `events.log` (lease grants and
//! revocations on the shared monotonic clock, leaders by term) and the
//! store's writes, and finds what must never happen — two nodes' leases
//! overlapping in real time, two leaders in one term, a fenced write
//! accepted below a token already accepted, two nodes writing with one
//! token — and measures the leaderless time each fault kind cost.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::Context as _;
use serde_json::Value;

use super::nemesis::Kind;
use super::nodes::Cluster;
use super::store::Write;

/// One node's hold of the fencing token, on the monotonic clock.
#[derive(Clone, Debug)]
pub struct Lease {
    /// Who held it.
    pub node: String,
    /// Its token.
    pub term: u64,
    /// When it was granted.
    pub start_ns: u64,
    /// The last moment the token was promised good; or when the node was
    /// killed, if that came first; or the end of the run.
    pub end_ns: u64,
    /// How the end is known: `revoked`, `killed`, `still held` (at the
    /// end of the run), or `unrevoked` (a grant with no revocation or kill
    /// before the node's next grant: should not happen).
    pub end: &'static str,
}

/// What the nodes recorded.
#[derive(Debug, Default)]
pub struct History {
    /// Every lease, by start.
    pub leases: Vec<Lease>,
    /// Term → the nodes that became leader in it.
    pub leaders: BTreeMap<u64, BTreeSet<String>>,
}

/// One fault cycle, as the nemesis ran it.
#[derive(Clone, Debug)]
pub struct Cycle {
    /// The fault's kind.
    pub kind: Kind,
    /// The fault, in words.
    pub what: String,
    /// When it was applied.
    pub applied_ns: u64,
    /// When it was healed.
    pub healed_ns: u64,
    /// When every node agreed on a leader again after the heal.
    pub settled_ns: u64,
}

/// Reads the history from every node's event log; leases still open at
/// `end_ns` end there.
pub fn read(cluster: &Cluster, end_ns: u64) -> anyhow::Result<History> {
    let mut history = History::default();
    for id in cluster.ids() {
        let path = cluster.data_dir(&id).join("events.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let kills = cluster.kills.get(&id).cloned().unwrap_or_default();
        // A lease open at (term, start) ends at the first kill after its
        // start and before `before`, or else at `otherwise`.
        let close = |(term, start_ns): (u64, u64), before: u64, otherwise: (u64, &'static str)| {
            let (end_ns, end) = match kills.iter().find(|k| **k > start_ns && **k < before) {
                Some(k) => (*k, "killed"),
                None => otherwise,
            };
            Lease {
                node: id.clone(),
                term,
                start_ns,
                end_ns,
                end,
            }
        };
        let mut open: Option<(u64, u64)> = None;
        for line in text.lines() {
            let event: Value = serde_json::from_str(line)
                .with_context(|| format!("{}: not JSON: {line}", path.display()))?;
            let at = event["mono-ns"]
                .as_u64()
                .context("a line without mono-ns")?;
            let term = event["term"].as_u64().unwrap_or(0);
            match event["event"].as_str() {
                Some("became-leader") => {
                    history.leaders.entry(term).or_default().insert(id.clone());
                }
                Some("lease-granted") => {
                    if let Some(was) = open.take() {
                        // Only a kill ends a lease without a revocation.
                        history.leases.push(close(was, at, (at, "unrevoked")));
                    }
                    let start = event["granted-mono-ns"].as_u64().unwrap_or(at);
                    open = Some((term, start));
                }
                Some("lease-revoked") => {
                    let until = event["valid-until-mono-ns"].as_u64().unwrap_or(at);
                    if let Some(was) = open.take() {
                        history.leases.push(close(was, at, (until, "revoked")));
                    }
                }
                _ => {}
            }
        }
        if let Some(was) = open {
            history
                .leases
                .push(close(was, u64::MAX, (end_ns, "still held")));
        }
    }
    history.leases.sort_by_key(|l| l.start_ns);
    Ok(history)
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Two nodes' leases overlapping in real time.
    pub overlaps: Vec<String>,
    /// Two leaders in one term.
    pub split_terms: Vec<String>,
    /// A fenced write accepted below a token already accepted, or two
    /// nodes writing with one token.
    pub fencing: Vec<String>,
}

impl Verdict {
    /// Whether nothing that must never happen happened.
    pub fn clean(&self) -> bool {
        self.overlaps.is_empty() && self.split_terms.is_empty() && self.fencing.is_empty()
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Checks the history and the store's writes.
pub fn check(history: &History, writes: &[Write]) -> Verdict {
    let mut verdict = Verdict::default();
    let leases = &history.leases;
    for (i, a) in leases.iter().enumerate() {
        for b in &leases[i + 1..] {
            if b.start_ns >= a.end_ns {
                continue;
            }
            if a.node != b.node && a.start_ns < b.end_ns {
                verdict.overlaps.push(format!(
                    "{} (term {}) held its lease until {:.3} ms ({}), {} (term {}) from {:.3} ms: \
                     {:.3} ms of overlap",
                    a.node,
                    a.term,
                    ms(a.end_ns),
                    a.end,
                    b.node,
                    b.term,
                    ms(b.start_ns),
                    ms(a.end_ns.min(b.end_ns) - b.start_ns),
                ));
            }
        }
    }
    for (term, nodes) in &history.leaders {
        if nodes.len() > 1 {
            verdict
                .split_terms
                .push(format!("term {term}: leaders {nodes:?}"));
        }
    }
    let mut highest = 0u64;
    let mut writers: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for w in writes {
        writers.entry(w.token).or_default().insert(&w.node);
        if w.accepted && w.token < highest {
            verdict.fencing.push(format!(
                "{} wrote token {} at {:.3} ms, accepted after token {highest}",
                w.node,
                w.token,
                ms(w.at_ns)
            ));
        }
        if w.accepted {
            highest = highest.max(w.token);
        }
    }
    for (token, nodes) in writers {
        if nodes.len() > 1 {
            verdict
                .fencing
                .push(format!("token {token} written by {nodes:?}"));
        }
    }
    verdict
}

/// The parts of `[from, to)` that no lease covers, in ns.
fn leaderless_ns(leases: &[Lease], from: u64, to: u64) -> u64 {
    let mut covered: Vec<(u64, u64)> = leases
        .iter()
        .filter(|l| l.end_ns > from && l.start_ns < to)
        .map(|l| (l.start_ns.max(from), l.end_ns.min(to)))
        .collect();
    covered.sort_unstable();
    let (mut gap, mut reached) = (0, from);
    for (start, end) in covered {
        if start > reached {
            gap += start - reached;
        }
        reached = reached.max(end);
    }
    gap + to.saturating_sub(reached)
}

/// The median and the 99th percentile (nearest rank) of `values`.
pub fn median_p99(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.5), rank(0.99))
}

/// The run's figures, as Markdown: faults by kind with leaderless time
/// (from the fault's apply to the next one's) and time to settle after
/// the heal, then the checks.
pub fn report(
    cycles: &[Cycle],
    end_ns: u64,
    history: &History,
    writes: &[Write],
    verdict: &Verdict,
    promises: &[(String, u64, u64)],
) -> String {
    let mut by_kind: BTreeMap<Kind, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (i, c) in cycles.iter().enumerate() {
        let next = cycles.get(i + 1).map_or(end_ns, |n| n.applied_ns);
        let entry = by_kind.entry(c.kind).or_default();
        entry
            .0
            .push(ms(leaderless_ns(&history.leases, c.applied_ns, next)));
        entry.1.push(ms(c.settled_ns.saturating_sub(c.healed_ns)));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| fault | cycles | leaderless median | leaderless p99 | heal → one leader median | p99 |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (kind, (gaps, settle)) in &by_kind {
        let (g50, g99) = median_p99(gaps);
        let (s50, s99) = median_p99(settle);
        let _ = writeln!(
            out,
            "| {kind} | {} | {g50:.0} ms | {g99:.0} ms | {s50:.0} ms | {s99:.0} ms |",
            gaps.len()
        );
    }
    let accepted = writes.iter().filter(|w| w.accepted).count();
    let refused = writes.len() - accepted;
    // The closest hand-over: one node's lease end to another's start.
    let closest = history
        .leases
        .windows(2)
        .filter(|p| p[0].node != p[1].node)
        .map(|p| p[1].start_ns as i128 - p[0].end_ns as i128)
        .min();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- leases: {} ({} ended by revocation, {} by kill -9); terms with a leader: {}",
        history.leases.len(),
        history.leases.iter().filter(|l| l.end == "revoked").count(),
        history.leases.iter().filter(|l| l.end == "killed").count(),
        history.leaders.len(),
    );
    if let Some(gap) = closest {
        let _ = writeln!(
            out,
            "- closest hand-over (a lease's end to another node's next start): {:.1} ms",
            gap as f64 / 1e6
        );
    }
    let _ = writeln!(out, "- lease overlaps: {}", verdict.overlaps.len());
    // A killed leader's lease ends at the kill; what its /leader had
    // promised just before may reach past the next leader's start (fast
    // failover: survivors campaign at once on a certain death).
    let outlived: Vec<f64> = promises
        .iter()
        .filter_map(|(node, killed, until)| {
            let next = history
                .leases
                .iter()
                .find(|l| l.node != *node && l.start_ns >= *killed)?;
            Some(ms(*until) - ms(next.start_ns))
        })
        .collect();
    if !outlived.is_empty() {
        let past = outlived.iter().filter(|d| **d > 0.0).count();
        let most = outlived.iter().copied().fold(f64::MIN, f64::max);
        let _ = writeln!(
            out,
            "- killed leaders whose last /leader promise reached past the next lease's start: \
             {past} of {} (by up to {most:.1} ms; not counted as overlaps: the holder was dead)",
            outlived.len()
        );
    }
    let _ = writeln!(
        out,
        "- terms with two leaders: {}",
        verdict.split_terms.len()
    );
    let _ = writeln!(
        out,
        "- fenced writes: {} ({accepted} accepted, {refused} refused as stale); violations: {}",
        writes.len(),
        verdict.fencing.len()
    );
    for line in verdict
        .overlaps
        .iter()
        .chain(&verdict.split_terms)
        .chain(&verdict.fencing)
    {
        let _ = writeln!(out, "  - VIOLATION: {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(node: &str, start: u64, end: u64) -> Lease {
        Lease {
            node: node.into(),
            term: 1,
            start_ns: start,
            end_ns: end,
            end: "revoked",
        }
    }

    #[test]
    fn overlaps_gaps_and_percentiles() {
        let history = History {
            leases: vec![lease("a", 0, 10), lease("b", 20, 30), lease("c", 25, 40)],
            leaders: BTreeMap::new(),
        };
        let verdict = check(&history, &[]);
        assert_eq!(verdict.overlaps.len(), 1, "{verdict:?}");
        assert_eq!(leaderless_ns(&history.leases, 5, 50), 10 + 10);
        assert_eq!(median_p99(&[3.0, 1.0, 2.0]), (2.0, 3.0));
    }
}
