//! What a test reads back from a run: the simulator's trace lines, parsed
//! into plugin log lines and leadership changes.
//!
//! Trace lines look like `    812.345ms c/n2 plugin: run 3 of job by n2
//! in term 4`: a virtual timestamp, `CLUSTER/NODE`, then what happened.

use std::time::Duration;

/// One log line a behaviour wrote (info, warn or error: debug and trace
/// lines are not kept), with when and where.
///
/// ```
/// use std::time::Duration;
/// use tenure_host::testing::PluginLog;
///
/// let line = PluginLog {
///     at: Duration::from_millis(812),
///     node: "n2".into(),
///     message: "run 3 of job by n2 in term 4".into(),
/// };
/// assert!(line.message.starts_with("run "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginLog {
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// The node's id.
    pub node: String,
    /// The line, as the plugin wrote it.
    pub message: String,
}

/// A node became leader of a term.
///
/// ```
/// use std::time::Duration;
/// use tenure_host::testing::Leadership;
///
/// let won = Leadership { at: Duration::from_millis(230), node: "n1".into(), term: 2 };
/// assert_eq!(won.term, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// The new leader's id.
    pub node: String,
    /// The term it leads.
    pub term: u64,
}

/// Splits a trace line into (time, cluster, node, what).
fn split(line: &str) -> Option<(Duration, &str, &str, &str)> {
    let (stamp, rest) = line.trim_start().split_once("ms ")?;
    let (ms, us) = stamp.split_once('.')?;
    let at = Duration::from_millis(ms.parse().ok()?) + Duration::from_micros(us.parse().ok()?);
    let (who, what) = rest.split_once(' ')?;
    let (cluster, node) = who.split_once('/')?;
    Some((at, cluster, node, what))
}

/// The plugin log lines of `cluster` in `trace`.
pub(super) fn plugin_logs(trace: &[String], cluster: &str) -> Vec<PluginLog> {
    trace
        .iter()
        .filter_map(|line| {
            let (at, c, node, what) = split(line)?;
            let message = what.strip_prefix("plugin: ")?;
            (c == cluster).then(|| PluginLog {
                at,
                node: node.to_string(),
                message: message.to_string(),
            })
        })
        .collect()
}

/// Every `became leader` of `cluster` in `trace`.
pub(super) fn leaderships(trace: &[String], cluster: &str) -> Vec<Leadership> {
    trace
        .iter()
        .filter_map(|line| {
            let (at, c, node, what) = split(line)?;
            let term = what.strip_prefix("became leader term=")?.parse().ok()?;
            (c == cluster).then(|| Leadership {
                at,
                node: node.to_string(),
                term,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> Vec<String> {
        [
            "     0.000ms c/n1 started at term 0",
            "   230.125ms c/n1 became leader term=2",
            "   230.125ms c/n1 plugin: on-become-leader term=2",
            "   231.000ms d/n1 plugin: another cluster",
            "   240.000ms c/n2 plugin swapped to 0123456789ab",
            "   250.000ms c/n3 plugin: a line with plugin: inside",
            "network NetworkConfig { .. }",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn plugin_lines_of_one_cluster() {
        let logs = plugin_logs(&trace(), "c");
        assert_eq!(
            logs,
            [
                PluginLog {
                    at: Duration::from_micros(230_125),
                    node: "n1".into(),
                    message: "on-become-leader term=2".into()
                },
                PluginLog {
                    at: Duration::from_millis(250),
                    node: "n3".into(),
                    message: "a line with plugin: inside".into()
                },
            ]
        );
    }

    #[test]
    fn leadership_lines() {
        assert_eq!(
            leaderships(&trace(), "c"),
            [Leadership {
                at: Duration::from_micros(230_125),
                node: "n1".into(),
                term: 2
            }]
        );
    }
}
