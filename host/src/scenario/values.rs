//! Reading one step's value: durations (`"2s"`), node names
//! (`"leader"`, `"n2"`), patterns, and each action's table.

use std::collections::BTreeSet;
use std::time::Duration;

use regex::Regex;
use toml::{Table, Value};

use super::model::{Action, Count, LogExpectation, NodeRef, Pattern, Since, Targets};
use crate::sim::NetworkConfig;

/// Every step action, as the file spells it.
pub const ACTIONS: [&str; 13] = [
    "elect",
    "run",
    "crash",
    "restart",
    "pause",
    "partition",
    "cut",
    "heal",
    "network",
    "call",
    "swap",
    "transfer",
    "expect",
];

/// What a step may refer to.
pub struct Context {
    /// How many nodes the cluster has.
    pub nodes: usize,
    /// The names of `[builds]`.
    pub builds: BTreeSet<String>,
}

/// The action `key` with `value`.
pub fn action(key: &str, value: &Value, cx: &Context) -> Result<Action, String> {
    Ok(match key {
        "elect" => elect(value, cx)?,
        "run" => Action::Run(duration(value)?),
        "crash" => Action::Crash(targets(value, cx)?),
        "restart" => Action::Restart(targets(value, cx)?),
        "pause" => {
            let t = table(value, &["node", "for"])?;
            Action::Pause {
                nodes: targets(required(t, "node")?, cx)?,
                duration: duration(required(t, "for")?)?,
            }
        }
        "partition" => {
            let groups = value
                .as_array()
                .ok_or("expected a list of groups, e.g. [[\"leader\"], [\"n2\", \"n3\"]]")?;
            if groups.is_empty() {
                return Err("expected at least one group".into());
            }
            Action::Partition(
                groups
                    .iter()
                    .map(|g| targets(g, cx))
                    .collect::<Result<_, _>>()?,
            )
        }
        "cut" => {
            let t = table(value, &["from", "to"])?;
            Action::Cut {
                from: targets(required(t, "from")?, cx)?,
                to: targets(required(t, "to")?, cx)?,
            }
        }
        "heal" => match value {
            Value::Boolean(true) => Action::Heal,
            _ => return Err("expected `heal = true`".into()),
        },
        "network" => network(value)?,
        "call" => {
            let t = table(value, &["on", "request", "reply", "error"])?;
            let reply = t.get("reply").map(pattern).transpose()?;
            let error = t.get("error").map(pattern).transpose()?;
            if reply.is_some() && error.is_some() {
                return Err("give `reply` or `error`, not both".into());
            }
            Action::Call {
                on: t
                    .get("on")
                    .map_or(Ok(Targets::Nodes(vec![NodeRef::Leader])), |v| {
                        targets(v, cx)
                    })?,
                request: string(required(t, "request")?, "request")?,
                reply,
                error,
            }
        }
        "swap" => {
            let t = table(value, &["on", "to", "refused"])?;
            let to = string(required(t, "to")?, "to")?;
            if !cx.builds.contains(&to) {
                return Err(format!(
                    "to: no build {to:?}; name one of [builds] ({})",
                    list(&cx.builds)
                ));
            }
            Action::Swap {
                on: t.get("on").map_or(Ok(Targets::All), |v| targets(v, cx))?,
                to,
                refused: t.get("refused").map(pattern).transpose()?,
            }
        }
        "transfer" => {
            let to = match value {
                Value::Table(t) => {
                    check_keys(t, &["to"])?;
                    required(t, "to")?
                }
                other => other,
            };
            Action::Transfer { to: node(to, cx)? }
        }
        "expect" => Action::Expect(expectation(value, cx)?),
        _ => {
            return Err(format!(
                "unknown action; expected one of {}",
                ACTIONS.join(", ")
            ));
        }
    })
}

fn elect(value: &Value, cx: &Context) -> Result<Action, String> {
    let default = Duration::from_secs(3);
    Ok(match value {
        Value::Boolean(true) => Action::Elect {
            within: default,
            is: None,
            changed: false,
        },
        Value::String(_) => Action::Elect {
            within: duration(value)?,
            is: None,
            changed: false,
        },
        Value::Table(t) => {
            check_keys(t, &["within", "is", "changed"])?;
            Action::Elect {
                within: t.get("within").map_or(Ok(default), duration)?,
                is: t.get("is").map(|v| node(v, cx)).transpose()?,
                changed: t
                    .get("changed")
                    .map_or(Ok(false), |v| boolean(v, "changed"))?,
            }
        }
        _ => return Err("expected true, a bound like \"3s\", or { within, is, changed }".into()),
    })
}

fn network(value: &Value) -> Result<Action, String> {
    let t = table(value, &["delay-ms", "loss", "duplicate", "reorder"])?;
    let mut network = NetworkConfig::default();
    if let Some(delay) = t.get("delay-ms") {
        let bad = || "delay-ms: expected [MIN, MAX] in milliseconds, e.g. [1, 20]".to_string();
        let pair = delay.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
        let ms = |v: &Value| {
            v.as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .filter(|m| m.is_finite() && *m >= 0.0 && *m <= 60_000.0)
                .ok_or_else(bad)
        };
        let (min, max) = (ms(&pair[0])?, ms(&pair[1])?);
        if min > max {
            return Err(bad());
        }
        network.min_delay_ns = (min * 1e6) as u64;
        network.max_delay_ns = (max * 1e6) as u64;
    }
    for (key, slot) in [
        ("loss", &mut network.loss),
        ("duplicate", &mut network.duplicate),
        ("reorder", &mut network.reorder),
    ] {
        if let Some(v) = t.get(key) {
            let p = v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("{key}: expected a probability from 0 to 1"))?;
            *slot = p;
        }
    }
    Ok(Action::Network(network))
}

fn expectation(value: &Value, cx: &Context) -> Result<LogExpectation, String> {
    let keys = [
        "log",
        "on",
        "since",
        "count",
        "at-least",
        "at-most",
        "nodes",
        "while-leading",
        "one-node-per-term",
    ];
    let t = table(value, &keys)?;
    let count_of = |key: &str| -> Result<Option<usize>, String> {
        t.get(key)
            .map(|v| {
                v.as_integer()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| format!("{key}: expected a whole number, 0 or more"))
            })
            .transpose()
    };
    let mut count = Count {
        exactly: count_of("count")?,
        at_least: count_of("at-least")?,
        at_most: count_of("at-most")?,
    };
    if count.exactly.is_some() && (count.at_least.is_some() || count.at_most.is_some()) {
        return Err("give `count`, or `at-least`/`at-most`, not both".into());
    }
    let flag = |key: &str| t.get(key).map_or(Ok(false), |v| boolean(v, key));
    let while_leading = flag("while-leading")?;
    let one_node_per_term = flag("one-node-per-term")?;
    let nodes = t.get("nodes").map(|v| targets(v, cx)).transpose()?;
    let says_something =
        count != Count::default() || nodes.is_some() || while_leading || one_node_per_term;
    if !says_something {
        count.at_least = Some(1);
    }
    let since = match t
        .get("since")
        .map(|v| string(v, "since"))
        .transpose()?
        .as_deref()
    {
        None | Some("start") => Since::Start,
        Some("previous-step") => Since::PreviousStep,
        Some("leader-elected") => Since::LeaderElected,
        Some(other) => {
            return Err(format!(
                "since: expected \"start\", \"previous-step\" or \"leader-elected\", found {other:?}"
            ));
        }
    };
    Ok(LogExpectation {
        log: pattern(required(t, "log")?)?,
        on: t.get("on").map_or(Ok(Targets::All), |v| targets(v, cx))?,
        since,
        count,
        nodes,
        while_leading,
        one_node_per_term,
    })
}

/// `"2s"`, `"250ms"`, `"1.5s"`, `"1m"`.
pub fn duration(value: &Value) -> Result<Duration, String> {
    let text = value
        .as_str()
        .ok_or("expected a duration with its unit, e.g. \"500ms\" or \"2s\"")?;
    parse_duration(text)
}

/// Parses `"2s"`, `"250ms"`, `"1.5s"`, `"1m"` (at most a day).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration like \"500ms\", \"2s\" or \"1m\", found {text:?}");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(bad()),
    };
    let seconds = number * scale;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text:?}: expected more than 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `n3` → 2, if the cluster has it.
pub fn node_index(name: &str, nodes: usize) -> Option<usize> {
    let number: usize = name.strip_prefix('n')?.parse().ok()?;
    (number >= 1 && number <= nodes && name == format!("n{number}")).then(|| number - 1)
}

/// One node: `"leader"`, `"previous-leader"` or `"nK"`.
fn node(value: &Value, cx: &Context) -> Result<NodeRef, String> {
    let name = value
        .as_str()
        .ok_or("expected a node: \"leader\", \"previous-leader\" or an id like \"n2\"")?;
    match name {
        "leader" => Ok(NodeRef::Leader),
        "previous-leader" => Ok(NodeRef::PreviousLeader),
        id => node_index(id, cx.nodes).map(NodeRef::Node).ok_or_else(|| {
            format!(
                "no node {id:?}: expected \"leader\", \"previous-leader\" or n1 to n{}",
                cx.nodes
            )
        }),
    }
}

/// Nodes: one node, `"all"`, `"followers"`, `"crashed"`, or a list of nodes.
fn targets(value: &Value, cx: &Context) -> Result<Targets, String> {
    match value {
        Value::String(s) if s == "all" => Ok(Targets::All),
        Value::String(s) if s == "followers" => Ok(Targets::Followers),
        Value::String(s) if s == "crashed" => Ok(Targets::Crashed),
        Value::String(_) => Ok(Targets::Nodes(vec![node(value, cx)?])),
        Value::Array(items) if !items.is_empty() => {
            let parts: Vec<Targets> = items
                .iter()
                .map(|v| match v {
                    Value::String(_) => targets(v, cx),
                    _ => Err("expected node names in the list, e.g. [\"n1\", \"leader\"]".into()),
                })
                .collect::<Result<_, _>>()?;
            let nodes: Option<Vec<NodeRef>> = parts
                .iter()
                .map(|p| match p {
                    Targets::Nodes(n) if n.len() == 1 => Some(n[0]),
                    _ => None,
                })
                .collect();
            Ok(nodes.map_or(Targets::Union(parts), Targets::Nodes))
        }
        _ => Err("expected nodes: \"leader\", \"n2\", [\"n1\", \"n3\"], \"followers\", \"crashed\" or \"all\"".into()),
    }
}

fn pattern(value: &Value) -> Result<Pattern, String> {
    let text = value
        .as_str()
        .ok_or("expected a regular expression, as a string")?;
    Regex::new(text)
        .map(|regex| Pattern { regex })
        .map_err(|e| format!("bad regular expression {text:?}: {e}"))
}

fn table<'a>(value: &'a Value, allowed: &[&str]) -> Result<&'a Table, String> {
    let t = value
        .as_table()
        .ok_or_else(|| format!("expected a table with {}", allowed.join(", ")))?;
    check_keys(t, allowed)?;
    Ok(t)
}

fn check_keys(t: &Table, allowed: &[&str]) -> Result<(), String> {
    match t.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown key `{k}`; expected {}",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn required<'a>(t: &'a Table, key: &str) -> Result<&'a Value, String> {
    t.get(key).ok_or_else(|| format!("missing `{key}`"))
}

fn string(value: &Value, key: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{key}: expected a string"))
}

fn boolean(value: &Value, key: &str) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("{key}: expected true or false"))
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "none defined".into();
    }
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Expands `${VAR}` and `${VAR:-default}` in a plugin path (a variable set
/// to the empty string counts as unset), with the config's scanner
/// ([`crate::config::env_vars::substitute`]).
pub fn expand_env(text: &str) -> Result<String, String> {
    crate::config::env_vars::substitute(
        text,
        || format!("unclosed `${{` in {text:?}"),
        |reference| {
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            match (std::env::var(name).ok().filter(|v| !v.is_empty()), default) {
                (Some(value), _) => Ok(value),
                (None, Some(default)) => Ok(default.to_string()),
                (None, None) => Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-DEFAULT}} for a fallback)"
                )),
            }
        },
    )
}
