//! Config keys from the environment and the command line, over the file.
//!
//! Precedence: `--set KEY=VALUE` (flag) > `TENURE_…` (environment) > the
//! file > the default. Every key has both forms:
//!
//! | in the file | flag | environment |
//! |---|---|---|
//! | `node-id = "n1"` | `--set node-id=n1` | `TENURE_NODE_ID=n1` |
//! | `[timings] heartbeat-interval-ms = 40` | `--set timings.heartbeat-interval-ms=40` | `TENURE_TIMINGS_HEARTBEAT_INTERVAL_MS=40` |
//! | `[peers] n2 = "10.0.0.2:7101"` | `--set peers.n2=10.0.0.2:7101` | `TENURE_PEERS_N2=10.0.0.2:7101` |
//! | `[plugin.config] period-ms = "500"` | `--set plugin.config.period-ms=500` | `TENURE_PLUGIN_CONFIG_PERIOD_MS=500` |
//!
//! An environment name is the key's table and name, upper-cased, dashes
//! and dots as underscores; the longest table that fits wins
//! (`TENURE_PLUGIN_LIMITS_MAX_WAKEUPS` is `[plugin-limits] max-wakeups`).
//! So keys come out lower-case with dashes: a peer named `N2` or a plugin
//! config key with an underscore needs the file or `--set`. A `TENURE_…`
//! name that is no table's and no top-level key (`TENURE_ADMIN_TOKEN`,
//! `TENURE_LOG_FORMAT`, `TENURE_TOOLS_DIR`) is not a config key and is left
//! alone; one that names a table but a key it does not have is an error,
//! naming the variable.
//!
//! `node-id` is the one value with `${VAR}` expanded
//! ([`super::env_vars`]), after these overrides: `TENURE_NODE_ID=n2`
//! replaces the file's `node-id = "${HOSTNAME}"`, and
//! `TENURE_NODE_ID='${POD_NAME}'` is expanded in turn. So a StatefulSet's
//! pods can share one file with `node-id = "${HOSTNAME}"`, and a host that
//! needs another id sets `TENURE_NODE_ID` or `--set node-id=…`.
//!
//! A value is read as TOML when it is one (`40`, `true`, `["a", "b"]`,
//! `{ url = "…", mode = "any" }`) and as a string otherwise; ids,
//! addresses and secrets are always strings.

use anyhow::{Context as _, bail};

/// The prefix of every config variable.
pub const ENV_PREFIX: &str = "TENURE_";

/// The tables a key may be in, longest first so the longest match wins.
const TABLES: [&str; 13] = [
    "plugin.config",
    "plugin-limits",
    "admin-limits",
    "peer-limits",
    "admin-auth",
    "admin-tls",
    "protocol",
    "timings",
    "command",
    "plugin",
    "hooks",
    "peers",
    "tls",
];

/// The keys outside any table.
const TOP_LEVEL: [&str; 8] = [
    "node-id",
    "cluster-id",
    "listen",
    "admin",
    "data-dir",
    "cache-dir",
    "secret",
    "secret-file",
];

/// One key set from outside the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The table (`""` for the top level) and the key.
    pub table: String,
    pub key: String,
    /// The value, as written.
    pub value: String,
    /// Where it came from, for error messages: `TENURE_…` or `--set`.
    pub source: String,
}

/// The overrides in force: the environment's `TENURE_…` config
/// variables, then each `--set KEY=VALUE` (later ones win).
pub fn collect(
    env: impl IntoIterator<Item = (String, String)>,
    sets: &[String],
) -> anyhow::Result<Vec<Override>> {
    let mut out: Vec<Override> = env
        .into_iter()
        .filter_map(|(name, value)| from_env(&name, value))
        .collect();
    out.sort_by(|a, b| a.source.cmp(&b.source));
    for set in sets {
        out.push(from_flag(set)?);
    }
    Ok(out)
}

/// The override a `TENURE_…` variable names, if it names a key.
fn from_env(name: &str, value: String) -> Option<Override> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    let dashed = rest.to_ascii_lowercase().replace('_', "-");
    let (table, key) = TABLES
        .iter()
        .find_map(|t| {
            let prefix = format!("{}-", t.replace('.', "-"));
            dashed
                .strip_prefix(&prefix)
                .filter(|k| !k.is_empty())
                .map(|k| (t.to_string(), k.to_string()))
        })
        .or_else(|| {
            TOP_LEVEL
                .contains(&dashed.as_str())
                .then(|| (String::new(), dashed.clone()))
        })?;
    Some(Override {
        table,
        key,
        value,
        source: name.to_string(),
    })
}

/// The override of a `--set KEY=VALUE` (KEY dotted: `timings.x`).
fn from_flag(set: &str) -> anyhow::Result<Override> {
    let Some((path, value)) = set.split_once('=') else {
        bail!("--set {set:?}: write KEY=VALUE, e.g. --set timings.heartbeat-interval-ms=40");
    };
    let path = path.trim();
    let (table, key) = TABLES
        .iter()
        .find_map(|t| {
            path.strip_prefix(&format!("{t}."))
                .map(|k| (t.to_string(), k.to_string()))
        })
        .unwrap_or_else(|| (String::new(), path.to_string()));
    if key.is_empty() || (table.is_empty() && !TOP_LEVEL.contains(&key.as_str())) {
        bail!(
            "--set {set:?}: {path:?} is not a config key (a top-level key, or TABLE.KEY with TABLE one of {})",
            TABLES.join(", ")
        );
    }
    Ok(Override {
        table,
        key,
        value: value.to_string(),
        source: format!("--set {path}"),
    })
}

/// Whether a key's value is always a string, however it looks.
fn always_string(table: &str, key: &str) -> bool {
    table == "peers"
        || table == "plugin.config"
        || (table.is_empty() && key != "data-dir" && key != "cache-dir")
}

/// `value` as TOML if it is a TOML value, else as a string.
fn value_of(o: &Override) -> toml::Value {
    if always_string(&o.table, &o.key) {
        return toml::Value::String(o.value.clone());
    }
    match toml::from_str::<toml::Table>(&format!("v = {}", o.value)) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(o.value.clone())),
        Err(_) => toml::Value::String(o.value.clone()),
    }
}

/// Sets every override in `file`, the config file's table.
pub fn apply(file: &mut toml::Table, overrides: &[Override]) -> anyhow::Result<()> {
    for o in overrides {
        let mut table = &mut *file;
        for part in o.table.split('.').filter(|p| !p.is_empty()) {
            let entry = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().with_context(|| {
                format!("{}: `{part}` is not a table in the config file", o.source)
            })?;
        }
        table.insert(o.key.clone(), value_of(o));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_names_map_to_the_longest_table_and_others_are_left_alone() {
        let o = collect(
            env(&[
                ("TENURE_NODE_ID", "n7"),
                ("TENURE_TIMINGS_HEARTBEAT_INTERVAL_MS", "40"),
                ("TENURE_PLUGIN_LIMITS_MAX_WAKEUPS", "9"),
                ("TENURE_PLUGIN_CONFIG_PERIOD_MS", "500"),
                ("TENURE_PEERS_N2", "127.0.0.1:7102"),
                ("TENURE_ADMIN", "127.0.0.1:7201"),
                ("TENURE_ADMIN_TOKEN", "not a key"),
                ("TENURE_LOG_FORMAT", "json"),
                ("TENURE_TOOLS_DIR", "/tmp"),
                ("HOME", "/root"),
            ]),
            &[],
        )
        .expect("collects");
        let got: Vec<(&str, &str)> = o
            .iter()
            .map(|o| (o.table.as_str(), o.key.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("", "admin"),
                ("", "node-id"),
                ("peers", "n2"),
                ("plugin.config", "period-ms"),
                ("plugin-limits", "max-wakeups"),
                ("timings", "heartbeat-interval-ms"),
            ]
        );
    }

    #[test]
    fn flags_win_and_values_are_typed_unless_they_must_be_strings() {
        let o = collect(
            env(&[
                ("TENURE_TIMINGS_HEARTBEAT_INTERVAL_MS", "40"),
                ("TENURE_SECRET", "123456"),
            ]),
            &[
                "timings.heartbeat-interval-ms=30".into(),
                "plugin.allow-http=[\"http://x\"]".into(),
            ],
        )
        .expect("collects");
        let mut file: toml::Table =
            toml::from_str("node-id = \"n1\"\n[timings]\nheartbeat-interval-ms = 50\n")
                .expect("toml");
        apply(&mut file, &o).expect("applies");
        assert_eq!(
            file["timings"]["heartbeat-interval-ms"].as_integer(),
            Some(30)
        );
        assert_eq!(
            file["secret"].as_str(),
            Some("123456"),
            "a numeric secret stays a string"
        );
        assert!(file["plugin"]["allow-http"].is_array());
        for bad in ["nokey", "timings.", "colour=red", "tables.x=1"] {
            assert!(collect(Vec::new(), &[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
