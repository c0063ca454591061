//! Checking an `expect` step against the plugins' log lines and the
//! cluster's leadership history.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::model::{LogExpectation, show_time};
use crate::testing::{Leadership, PluginLog};

/// The span of virtual time whose lines an expectation reads (both ends
/// included).
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// From.
    pub from: Duration,
    /// To.
    pub to: Duration,
}

/// How many matching lines a failure message lists.
const SHOWN: usize = 8;

/// Checks `e` over `logs` in `window`, counting lines of the nodes in
/// `on`; `nodes`, if given, is the exact set of nodes that must have
/// written matching lines. `Ok` says what was found.
pub fn check(
    e: &LogExpectation,
    logs: &[PluginLog],
    leaderships: &[Leadership],
    window: Window,
    on: &BTreeSet<String>,
    nodes: Option<&BTreeSet<String>>,
) -> Result<String, String> {
    let matching: Vec<&PluginLog> = logs
        .iter()
        .filter(|l| l.at >= window.from && l.at <= window.to)
        .filter(|l| on.contains(&l.node) && e.log.matches(&l.message))
        .collect();
    let found = matching.len();
    let writers: BTreeSet<String> = matching.iter().map(|l| l.node.clone()).collect();
    let count = e.count;
    let count_error = if let Some(n) = count.exactly.filter(|&n| n != found) {
        Some(format!("exactly {n}"))
    } else if let Some(n) = count.at_least.filter(|&n| found < n) {
        Some(format!("at least {n}"))
    } else {
        count
            .at_most
            .filter(|&n| found > n)
            .map(|n| format!("at most {n}"))
    };
    if let Some(wanted) = count_error {
        return Err(format!(
            "expected {wanted} line(s) matching {} from {}, found {found}{}",
            e.log,
            join(on),
            listing(&matching)
        ));
    }
    if let Some(nodes) = nodes
        && writers != *nodes
    {
        return Err(format!(
            "expected lines matching {} from exactly {}, found them from {}{}",
            e.log,
            join(nodes),
            if writers.is_empty() {
                "no node".to_string()
            } else {
                join(&writers)
            },
            listing(&matching)
        ));
    }
    if e.while_leading {
        let strays: Vec<String> = matching
            .iter()
            .filter_map(|line| {
                let leading = leader_at(leaderships, line.at);
                let by_leader = leading.is_some_and(|l| l.node == line.node);
                (!by_leader).then(|| {
                    let who = leading.map_or("no node led yet".to_string(), |l| {
                        format!("{} led term {}", l.node, l.term)
                    });
                    format!(
                        "  at {} {}: {:?}, while {who}",
                        show_time(line.at),
                        line.node,
                        line.message
                    )
                })
            })
            .collect();
        if !strays.is_empty() {
            return Err(format!(
                "expected lines matching {} only from the node leading at the time; {} were not:\n{}",
                e.log,
                strays.len(),
                strays
                    .iter()
                    .take(SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    if e.one_node_per_term {
        let mut by_term: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
        for line in &matching {
            by_term
                .entry(term_of(e, line, leaderships))
                .or_default()
                .insert(&line.node);
        }
        if let Some((term, writers)) = by_term.iter().find(|(_, w)| w.len() > 1) {
            let lines: Vec<&PluginLog> = matching
                .iter()
                .copied()
                .filter(|l| term_of(e, l, leaderships) == *term)
                .collect();
            return Err(format!(
                "expected at most one node per term to write lines matching {}; in term {term} {} did{}",
                e.log,
                and_list(writers.iter().copied()),
                listing(&lines)
            ));
        }
    }
    Ok(format!(
        "{found} line(s) from {}",
        if writers.is_empty() {
            "no node".to_string()
        } else {
            join(&writers)
        }
    ))
}

/// The leadership in effect at `at`: the latest election won by then.
fn leader_at(leaderships: &[Leadership], at: Duration) -> Option<&Leadership> {
    leaderships.iter().rev().find(|l| l.at <= at)
}

/// The term a line belongs to: the pattern's `term` group if it has one
/// that parses, else the term led at the time (0 before any).
fn term_of(e: &LogExpectation, line: &PluginLog, leaderships: &[Leadership]) -> u64 {
    e.log
        .regex
        .captures(&line.message)
        .and_then(|c| c.name("term"))
        .and_then(|m| m.as_str().parse().ok())
        .unwrap_or_else(|| leader_at(leaderships, line.at).map_or(0, |l| l.term))
}

fn join(nodes: &BTreeSet<String>) -> String {
    if nodes.is_empty() {
        return "no node".into();
    }
    nodes.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn listing(lines: &[&PluginLog]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from(":");
    for line in lines.iter().take(SHOWN) {
        out.push_str(&format!(
            "\n  at {} {}: {:?}",
            show_time(line.at),
            line.node,
            line.message
        ));
    }
    if lines.len() > SHOWN {
        out.push_str(&format!("\n  … and {} more", lines.len() - SHOWN));
    }
    out
}

/// `n1, n2 and n3`.
fn and_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}
