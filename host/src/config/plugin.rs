//! `[plugin]` and `[plugin-limits]`: the behaviour plugin, what it may
//! reach over HTTP, and what it may ask of its node.
//!
//! ```toml
//! [plugin]
//! path = "webhook.wasm"
//! deadline-ms = 100                  # each callback's time limit, waiting included
//! memory-mib = 64
//! # Outgoing HTTP, denied unless listed: scheme, host and port. A bare URL
//! # is fenced: allowed only while this node leads with a lease, and
//! # stamped with the fencing token. `mode = "any"` lets every node call.
//! allow-http = [
//!     "http://127.0.0.1:9000",
//!     { url = "https://hooks.example.com", mode = "any" },
//! ]
//! http-connect-timeout-ms = 2000
//! http-timeout-ms = 10000            # sending to the whole response read
//! http-max-response-bytes = 1048576
//! http-max-concurrent = 8
//! fencing-header = "Tenure-Fencing-Token"
//!
//! [plugin-limits]                    # defaults shown
//! messages-per-sec = 1000            # send/broadcast, a broadcast once per peer
//! message-bytes-per-sec = 1048576
//! max-message-bytes = 16384          # below the transport's 64 KiB frame
//! log-lines-per-sec = 200            # log, stdout and stderr together
//! log-bytes-per-sec = 262144
//! max-log-line-bytes = 4096
//! max-wakeups = 1024                 # pending schedule()s
//! max-inspect-bytes = 65536
//! max-snapshot-bytes = 16777216
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use super::in_range;
use crate::plugin::PluginLimits;
use crate::plugin::egress::{EgressMode, EgressPolicy, EgressRule};
use crate::plugin::quota::PluginQuota;

/// Default callback deadline for plugins.
pub const DEFAULT_DEADLINE_MS: u64 = 100;
/// Default plugin memory cap.
pub const DEFAULT_MEMORY_MIB: u64 = 64;

/// The `[plugin]` table, with `[plugin-limits]`.
#[derive(Clone, Debug)]
pub struct PluginConfig {
    /// The plugin component's path.
    pub path: PathBuf,
    /// Each callback's deadline, in milliseconds.
    pub deadline_ms: u64,
    /// The plugin's memory cap, in MiB.
    pub memory_mib: u64,
    /// Watch the file and hot-swap each new version.
    pub watch: bool,
    /// Key/value configuration handed to `init`.
    pub config: BTreeMap<String, String>,
    /// Where the plugin may send HTTP requests.
    pub egress: EgressPolicy,
    /// What the plugin may ask of its node.
    pub quota: PluginQuota,
}

impl PluginConfig {
    /// The limits a node holds this plugin to (with fresh counters).
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            deadline: Duration::from_millis(self.deadline_ms),
            memory_bytes: usize::try_from(self.memory_mib << 20).unwrap_or(usize::MAX),
            egress: Arc::new(self.egress.clone()),
            ..PluginLimits::default()
        }
        .with_quota(self.quota)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPlugin {
    path: PathBuf,
    deadline_ms: Option<u64>,
    memory_mib: Option<u64>,
    #[serde(default)]
    watch: bool,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    allow_http: Vec<RawAllow>,
    http_connect_timeout_ms: Option<u64>,
    http_timeout_ms: Option<u64>,
    http_max_response_bytes: Option<u64>,
    http_max_concurrent: Option<u64>,
    fencing_header: Option<String>,
}

/// An `allow-http` entry: a URL (leader mode), or a table with its mode.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawAllow {
    Url(String),
    Entry(RawAllowEntry),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllowEntry {
    url: String,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPluginLimits {
    messages_per_sec: Option<u64>,
    message_bytes_per_sec: Option<u64>,
    max_message_bytes: Option<u64>,
    log_lines_per_sec: Option<u64>,
    log_bytes_per_sec: Option<u64>,
    max_log_line_bytes: Option<u64>,
    max_wakeups: Option<u64>,
    max_inspect_bytes: Option<u64>,
    max_snapshot_bytes: Option<u64>,
}

/// `[plugin]` and `[plugin-limits]`, checked, with the path resolved.
pub(super) fn plugin(
    p: RawPlugin,
    limits: &RawPluginLimits,
    resolve: impl Fn(&std::path::Path) -> PathBuf,
) -> anyhow::Result<PluginConfig> {
    let deadline_ms = p.deadline_ms.unwrap_or(DEFAULT_DEADLINE_MS);
    in_range("plugin.deadline-ms", deadline_ms, 1..=60_000)?;
    let memory_mib = p.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB);
    in_range("plugin.memory-mib", memory_mib, 1..=4096)?;
    let egress = egress(&p)?;
    let mut config = BTreeMap::new();
    for (key, value) in p.config {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => bail!("`plugin.config.{key}`: must be a string, number or boolean"),
        };
        config.insert(key, text);
    }
    Ok(PluginConfig {
        path: resolve(&p.path),
        deadline_ms,
        memory_mib,
        watch: p.watch,
        config,
        egress,
        quota: quota(limits)?,
    })
}

fn egress(p: &RawPlugin) -> anyhow::Result<EgressPolicy> {
    let d = EgressPolicy::default();
    let mut rules = Vec::new();
    for (i, entry) in p.allow_http.iter().enumerate() {
        let (url, mode) = match entry {
            RawAllow::Url(url) => (url, EgressMode::Leader),
            RawAllow::Entry(e) => {
                let mode = match e.mode.as_deref() {
                    None | Some("leader") => EgressMode::Leader,
                    Some("any") => EgressMode::Any,
                    Some(other) => {
                        bail!(
                            "`plugin.allow-http[{i}].mode`: must be \"leader\" or \"any\", got {other:?}"
                        )
                    }
                };
                (&e.url, mode)
            }
        };
        let rule =
            EgressRule::parse(url, mode).with_context(|| format!("`plugin.allow-http[{i}]`"))?;
        if let Some(same) = rules
            .iter()
            .find(|r: &&EgressRule| r.origin() == rule.origin())
        {
            bail!(
                "`plugin.allow-http[{i}]`: {} is listed twice (modes {:?} and {:?})",
                rule.origin(),
                same.mode,
                rule.mode
            );
        }
        rules.push(rule);
    }
    let ms = |key: &str, value: Option<u64>, default: Duration| -> anyhow::Result<Duration> {
        let value = value.unwrap_or(default.as_millis() as u64);
        in_range(&format!("plugin.{key}"), value, 10..=600_000)?;
        Ok(Duration::from_millis(value))
    };
    let policy = EgressPolicy {
        rules,
        connect_timeout: ms(
            "http-connect-timeout-ms",
            p.http_connect_timeout_ms,
            d.connect_timeout,
        )?,
        total_timeout: ms("http-timeout-ms", p.http_timeout_ms, d.total_timeout)?,
        max_response_bytes: p.http_max_response_bytes.unwrap_or(d.max_response_bytes),
        max_concurrent: p.http_max_concurrent.unwrap_or(d.max_concurrent),
        fencing_header: match &p.fencing_header {
            None => d.fencing_header,
            Some(name) => http::HeaderName::try_from(name.as_str()).map_err(|_| {
                anyhow::anyhow!("`plugin.fencing-header`: {name:?} is not a header name")
            })?,
        },
    };
    in_range(
        "plugin.http-max-response-bytes",
        policy.max_response_bytes,
        1..=(256 << 20),
    )?;
    in_range(
        "plugin.http-max-concurrent",
        policy.max_concurrent,
        1..=1024,
    )?;
    Ok(policy)
}

fn quota(raw: &RawPluginLimits) -> anyhow::Result<PluginQuota> {
    let d = PluginQuota::default();
    let pick = |key: &str, value: Option<u64>, default: u64, range| -> anyhow::Result<u64> {
        let value = value.unwrap_or(default);
        in_range(&format!("plugin-limits.{key}"), value, range)?;
        Ok(value)
    };
    Ok(PluginQuota {
        messages_per_sec: pick(
            "messages-per-sec",
            raw.messages_per_sec,
            d.messages_per_sec,
            1..=1_000_000,
        )?,
        message_bytes_per_sec: pick(
            "message-bytes-per-sec",
            raw.message_bytes_per_sec,
            d.message_bytes_per_sec,
            1..=(1 << 30),
        )?,
        // The transport refuses frames over 64 KiB; a plugin message and
        // its envelope must fit one.
        max_message_bytes: pick(
            "max-message-bytes",
            raw.max_message_bytes,
            d.max_message_bytes,
            1..=(48 << 10),
        )?,
        log_lines_per_sec: pick(
            "log-lines-per-sec",
            raw.log_lines_per_sec,
            d.log_lines_per_sec,
            1..=1_000_000,
        )?,
        log_bytes_per_sec: pick(
            "log-bytes-per-sec",
            raw.log_bytes_per_sec,
            d.log_bytes_per_sec,
            1..=(1 << 30),
        )?,
        max_log_line_bytes: pick(
            "max-log-line-bytes",
            raw.max_log_line_bytes,
            d.max_log_line_bytes,
            16..=(1 << 20),
        )?,
        max_wakeups: pick("max-wakeups", raw.max_wakeups, d.max_wakeups, 1..=1_000_000)?,
        max_inspect_bytes: pick(
            "max-inspect-bytes",
            raw.max_inspect_bytes,
            d.max_inspect_bytes,
            64..=(16 << 20),
        )?,
        max_snapshot_bytes: pick(
            "max-snapshot-bytes",
            raw.max_snapshot_bytes,
            d.max_snapshot_bytes,
            1..=(1 << 30),
        )?,
    })
}
