//! Reading a scenario file: TOML into [`Scenario`], with every mistake
//! reported by line, key and what was expected.
//!
//! The tables (`[cluster]`, `[plugin]`, `[builds.NAME]`, `[nodes.ID]`) go
//! through serde with unknown keys refused; each `[[step]]` is read by hand
//! (`values.rs`), because a step is a one-key table whose key says what
//! the value means, and hand-reading names the step's line in every error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::ScenarioError;
use super::model::{Action, PluginSpec, Scenario, Step};
use super::values::{self, Context};

/// What the `[cluster]` table says.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCluster {
    nodes: usize,
    seed: Option<u64>,
    seeds: Option<u64>,
    election_timeout_min_ms: Option<u32>,
    election_timeout_max_ms: Option<u32>,
    heartbeat_ms: Option<u32>,
}

/// `[plugin]` or `[builds.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlugin {
    path: String,
    #[serde(default)]
    config: BTreeMap<String, Value>,
    deadline_ms: Option<u64>,
    memory_mib: Option<usize>,
}

/// `[nodes.ID]`: how one node differs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    build: Option<String>,
    plugin: Option<bool>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScenario {
    name: Option<String>,
    cluster: RawCluster,
    plugin: Option<RawPlugin>,
    #[serde(default)]
    builds: BTreeMap<String, RawPlugin>,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
    #[serde(default, rename = "step")]
    steps: Vec<Spanned<toml::Table>>,
}

/// The most nodes a scenario may start.
pub const MAX_NODES: usize = 15;

/// Parses a scenario's text; `path` names it in errors and anchors the
/// plugin paths.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        ScenarioError::at(path, line, e.message().trim_end().to_string())
    })?;
    let fail = |line: Option<usize>, message: String| ScenarioError::at(path, line, message);
    let cluster = &raw.cluster;
    if cluster.nodes == 0 || cluster.nodes > MAX_NODES {
        return Err(fail(
            None,
            format!(
                "cluster.nodes: expected 1 to {MAX_NODES}, found {}",
                cluster.nodes
            ),
        ));
    }
    let timings = (
        cluster.election_timeout_min_ms.unwrap_or(150),
        cluster.election_timeout_max_ms.unwrap_or(300),
        cluster.heartbeat_ms.unwrap_or(50),
    );
    if timings.0 == 0 || timings.0 >= timings.1 || timings.2 == 0 || timings.2 >= timings.0 {
        return Err(fail(
            None,
            format!(
                "cluster: expected 0 < heartbeat-ms < election-timeout-min-ms < \
                 election-timeout-max-ms, found {} < {} < {}",
                timings.2, timings.0, timings.1
            ),
        ));
    }
    let seeds = cluster.seeds.unwrap_or(1);
    if seeds == 0 {
        return Err(fail(None, "cluster.seeds: expected at least 1".into()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let spec = |key: &str, raw: &RawPlugin| -> Result<PluginSpec, ScenarioError> {
        let resolved =
            values::expand_env(&raw.path).map_err(|e| fail(None, format!("{key}.path: {e}")))?;
        Ok(PluginSpec {
            path: dir.join(resolved),
            config: config_strings(&format!("{key}.config"), &raw.config)
                .map_err(|e| fail(None, e))?,
            deadline_ms: raw.deadline_ms,
            memory_mib: raw.memory_mib,
        })
    };
    let base = raw.plugin.as_ref().map(|p| spec("plugin", p)).transpose()?;
    let mut builds = BTreeMap::new();
    for (name, build) in &raw.builds {
        builds.insert(name.clone(), spec(&format!("builds.{name}"), build)?);
    }
    let mut plugins = vec![base.clone(); cluster.nodes];
    for (id, node) in &raw.nodes {
        let index = values::node_index(id, cluster.nodes).ok_or_else(|| {
            fail(
                None,
                format!(
                    "nodes.{id}: no such node (this cluster has n1 to n{})",
                    cluster.nodes
                ),
            )
        })?;
        plugins[index] =
            node_plugin(id, node, base.as_ref(), &builds).map_err(|e| fail(None, e))?;
    }
    let context = Context {
        nodes: cluster.nodes,
        builds: builds.keys().cloned().collect(),
    };
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (number, step) in raw.steps.iter().enumerate() {
        let line = line_of(text, step.span().start);
        let action = step_action(step.get_ref(), &context)
            .map_err(|e| fail(Some(line), format!("step {}: {e}", number + 1)))?;
        steps.push(Step { line, action });
    }
    if steps.is_empty() {
        return Err(fail(
            None,
            "no steps: add at least one [[step]] (e.g. `elect = true`)".into(),
        ));
    }
    let name = raw.name.clone().unwrap_or_else(|| {
        path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    });
    Ok(Scenario {
        path: path.to_path_buf(),
        name,
        nodes: cluster.nodes,
        first_seed: cluster.seed.unwrap_or(1),
        seeds,
        timings,
        plugins,
        builds,
        steps,
    })
}

/// What `[nodes.ID]` makes the node run.
fn node_plugin(
    id: &str,
    node: &RawNode,
    base: Option<&PluginSpec>,
    builds: &BTreeMap<String, PluginSpec>,
) -> Result<Option<PluginSpec>, String> {
    if node.plugin == Some(false) {
        if node.build.is_some() || !node.config.is_empty() {
            return Err(format!(
                "nodes.{id}: `plugin = false` runs no plugin; drop `build` and `config`"
            ));
        }
        return Ok(None);
    }
    let mut spec = match &node.build {
        Some(name) => builds
            .get(name)
            .cloned()
            .ok_or_else(|| format!("nodes.{id}.build: no build {name:?} in [builds]"))?,
        None => base
            .cloned()
            .ok_or_else(|| format!("nodes.{id}: no [plugin] to run; name a `build`"))?,
    };
    spec.config
        .extend(config_strings(&format!("nodes.{id}.config"), &node.config)?);
    Ok(Some(spec))
}

/// A config table's values as the strings `init` receives.
fn config_strings(
    key: &str,
    table: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, String>, String> {
    table
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "{key}.{k}: expected a string, number or boolean, found {}",
                        other.type_str()
                    ));
                }
            };
            Ok((k.clone(), text))
        })
        .collect()
}

/// The action of one `[[step]]`: its one key and that key's value.
fn step_action(table: &toml::Table, context: &Context) -> Result<Action, String> {
    let mut keys = table.keys();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        let found: Vec<&str> = table.keys().map(String::as_str).collect();
        return Err(format!(
            "a step has exactly one action ({}), found {}",
            values::ACTIONS.join(", "),
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(" and ")
            }
        ));
    };
    let value = &table[key];
    values::action(key, value, context).map_err(|e| format!("`{key}`: {e}"))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}
