//! The node's TOML configuration: parsing, defaults and validation.
//!
//! Every key, with its default (see also `examples/cluster/*.toml`):
//!
//! ```toml
//! node-id = "n1"                 # required: unique within the cluster; `${VAR}`
//!                                #   is expanded (`"${HOSTNAME}"` in a StatefulSet)
//! cluster-id = "demo"            # required: nodes of other clusters are ignored
//! listen = "127.0.0.1:7101"      # required: address peers connect to
//! admin = "127.0.0.1:0"          # default: loopback, any free port (logged, and
//!                                #   written to DATA-DIR/admin.addr)
//! data-dir = "tenure-data/n1"    # default: tenure-data/NODE-ID; holds durable state
//! cache-dir = "cache"            # default: DATA-DIR/cache; compiled components,
//!                                #   safe to share between nodes of one machine
//! secret = "…"                   # the cluster secret (at least 16 bytes), or:
//! secret-file = "secret.txt"     #   read from a file (trailing newline trimmed);
//!                                #   exactly one of the two is required
//!
//! [peers]                        # default: none (a cluster of one that grows by join)
//! n2 = "127.0.0.1:7102"          # bootstrap members and their addresses: IP:port,
//! n3 = "n3.example.net:7103"     #   [IPv6]:port, or host:port (resolved on every
//!                                #   dial, so a peer that moves is found again);
//!                                #   an entry with this node's own id is skipped
//!
//! [timings]                      # the protocol's timings; defaults shown
//! election-timeout-min-ms = 150
//! election-timeout-max-ms = 300
//! heartbeat-interval-ms = 50
//! peer-timeout-heartbeats = 10
//! lease-drift-margin-ms = 15     # taken off the leader's lease for clock drift
//! stability-window-ms = 2000     # before a priority hand-over (see priority)
//!
//! [protocol]
//! component = "election.wasm"    # default: the election component built into tenure
//! pre-vote = true                # ask before campaigning (default true)
//! priority = 0                   # 0-255: a leader hands over to a healthy
//!                                #   voter of higher priority
//! observer = false               # true: follow and report, never vote or stand
//! fast-failover = true           # replace a leader seen to die at once
//! join = false                   # true: join the running cluster of [peers]
//!                                #   (votes once its leader admits it) rather
//!                                #   than bootstrap a new one with them
//!
//! [plugin]                       # default: no plugin
//! path = "scheduler.wasm"        # the behaviour plugin component
//! deadline-ms = 100              # each callback's time limit
//! memory-mib = 64                # the plugin's memory cap
//! watch = false                  # swap in each new version of the file
//! [plugin.config]                # handed to the plugin's init, as strings
//! period-ms = "1000"
//! ```
//!
//! The rest of `[plugin]` (outgoing HTTP) and `[plugin-limits]` are in
//! [`plugin`]; `[admin-auth]` and `[admin-limits]` are in [`admin`]; `[tls]` (mutual
//! TLS between nodes, instead of the secret) and `[peer-limits]` in
//! [`transport`]. The secret must also be strong enough: see [`secret`].
//!
//! Every key can also be set in the environment (`TENURE_NODE_ID`,
//! `TENURE_TIMINGS_HEARTBEAT_INTERVAL_MS`) or by `tenure run --set KEY=VALUE`,
//! with flag > environment > file > default: see [`overrides`].
//!
//! Relative paths are resolved against the config file's directory. A bad
//! config fails at start with the key and the problem named.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use tenure_transport::PeerAddr;

use crate::bindings::types::Timings;

pub mod admin;
pub mod env_vars;
pub mod overrides;
pub mod plugin;
pub mod secret;
pub mod transport;

pub use admin::{AdminAuthConfig, AdminLimits, AdminTlsConfig, AdminToken};
pub use plugin::{DEFAULT_DEADLINE_MS, DEFAULT_MEMORY_MIB, PluginConfig};
pub use transport::{PeerLimits, TlsConfig};

/// The shortest cluster secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// A node's configuration, validated and with paths resolved.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub node_id: String,
    /// The cluster's id.
    pub cluster_id: String,
    /// Where peers connect.
    pub listen: SocketAddr,
    /// Where the admin HTTP endpoint listens.
    pub admin: SocketAddr,
    /// Where durable state lives.
    pub data_dir: PathBuf,
    /// Where compiled components are cached (`cache-dir`, default
    /// `DATA-DIR/cache`).
    pub cache_dir: PathBuf,
    /// The cluster secret (HMAC key for every frame); empty with `[tls]`,
    /// which does not use it.
    pub secret: Vec<u8>,
    /// Mutual TLS between nodes (`[tls]`), instead of the secret.
    pub tls: Option<TlsConfig>,
    /// What unknown or flooding peer connections may hold
    /// (`[peer-limits]`).
    pub peer_limits: PeerLimits,
    /// Bootstrap peers and their addresses (self excluded): IP literals,
    /// or DNS names resolved on every dial.
    pub peers: BTreeMap<String, PeerAddr>,
    /// Election timings.
    pub timings: Timings,
    /// A protocol component to use instead of the built-in one.
    pub protocol_component: Option<PathBuf>,
    /// Whether the protocol runs pre-votes.
    pub pre_vote: bool,
    /// Leadership priority (`protocol.priority`, default 0).
    pub priority: u8,
    /// False for an observer (`protocol.observer = true`).
    pub voter: bool,
    /// Whether a leader seen to die (connection closed, reconnect refused)
    /// is replaced without waiting out the election timeout
    /// (`protocol.fast-failover`, default true).
    pub fast_failover: bool,
    /// Whether this node joins the running cluster of its peers rather
    /// than bootstrapping one with them (`protocol.join`, default false).
    pub join: bool,
    /// The behaviour plugin, if any.
    pub plugin: Option<PluginConfig>,
    /// How long before the protocol's lease would lapse the node revokes
    /// the fencing token it hands applications (`protocol.lease-guard-ms`,
    /// default [`DEFAULT_LEASE_GUARD_MS`]): the time leader-only work has
    /// to stop while no other leader can exist yet.
    pub lease_guard: std::time::Duration,
    /// How `tenure run … -- CMD` supervises its command (`[command]`).
    pub command: CommandConfig,
    /// Commands run on protocol events (`[hooks]`).
    pub hooks: HooksConfig,
    /// Who may use the admin endpoint (`[admin-auth]`).
    pub admin_auth: AdminAuthConfig,
    /// What one admin client may ask (`[admin-limits]`).
    pub admin_limits: AdminLimits,
    /// HTTPS for the admin endpoint (`[admin-tls]`).
    pub admin_tls: Option<AdminTlsConfig>,
}

/// The `[hooks]` table: shell commands (`sh -c`) run on protocol events,
/// one at a time in event order, with `TENURE_EVENT`, `TENURE_NODE_ID`,
/// `TENURE_TERM` and, when known, `TENURE_LEADER` in the environment
/// (`TENURE_FENCING_TOKEN` for `became-leader`, `TENURE_OLD_TERM` for
/// `term-changed`). A `became-leader` hook that fails (exits non-zero or
/// overruns `timeout-ms`) refuses leadership, as a plugin error does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HooksConfig {
    /// Run when this node wins an election (`became-leader`).
    pub became_leader: Option<String>,
    /// Run when it follows a leader, or none (`became-follower`).
    pub became_follower: Option<String>,
    /// Run when its term changes (`term-changed`).
    pub term_changed: Option<String>,
    /// How long a hook may run before it is killed (`timeout-ms`, default
    /// 5000).
    pub timeout: std::time::Duration,
}

/// The `[command]` table: how `tenure run --config FILE -- CMD…` runs CMD
/// while the node leads (see `tenure_host::supervise`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandConfig {
    /// After SIGTERM (the fencing token was revoked), how long the command
    /// has before SIGKILL (`grace-ms`); below `protocol.lease-guard-ms`, so
    /// the SIGKILL lands before the lease could lapse. Default: half the
    /// guard.
    pub grace: std::time::Duration,
    /// What a command that exits on its own while the node leads causes
    /// (`on-exit`).
    pub on_exit: OnExit,
    /// The first wait before a restart (`restart-backoff-ms`, default
    /// 1000); it doubles with each exit in a row, up to 30 s.
    pub restart_backoff: std::time::Duration,
}

/// `command.on-exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnExit {
    /// Start it again after the back-off, while the node still leads.
    Restart,
    /// Step down: another node's command takes over.
    StepDown,
}

/// `protocol.lease-guard-ms` when not configured.
pub const DEFAULT_LEASE_GUARD_MS: u32 = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    node_id: String,
    cluster_id: String,
    listen: String,
    admin: Option<String>,
    data_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default)]
    peers: BTreeMap<String, String>,
    #[serde(default)]
    timings: RawTimings,
    #[serde(default)]
    protocol: RawProtocol,
    plugin: Option<plugin::RawPlugin>,
    #[serde(default)]
    plugin_limits: plugin::RawPluginLimits,
    #[serde(default)]
    command: RawCommand,
    #[serde(default)]
    hooks: RawHooks,
    #[serde(default)]
    admin_auth: admin::RawAdminAuth,
    #[serde(default)]
    admin_limits: admin::RawAdminLimits,
    admin_tls: Option<admin::RawAdminTls>,
    tls: Option<transport::RawTls>,
    #[serde(default)]
    peer_limits: transport::RawPeerLimits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHooks {
    became_leader: Option<String>,
    became_follower: Option<String>,
    term_changed: Option<String>,
    timeout_ms: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCommand {
    grace_ms: Option<u32>,
    on_exit: Option<String>,
    restart_backoff_ms: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTimings {
    election_timeout_min_ms: Option<u32>,
    election_timeout_max_ms: Option<u32>,
    heartbeat_interval_ms: Option<u32>,
    peer_timeout_heartbeats: Option<u32>,
    lease_drift_margin_ms: Option<u32>,
    stability_window_ms: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProtocol {
    component: Option<PathBuf>,
    pre_vote: Option<bool>,
    priority: Option<u8>,
    observer: Option<bool>,
    fast_failover: Option<bool>,
    join: Option<bool>,
    lease_guard_ms: Option<u32>,
}

impl NodeConfig {
    /// Reads and validates the config file at `path`, and adds the admin
    /// token in the environment ([`admin::ADMIN_TOKEN_ENV`]), if any.
    ///
    /// Config keys set in the environment (`TENURE_…`, see [`overrides`])
    /// take precedence over the file's.
    pub fn load(path: &Path) -> anyhow::Result<NodeConfig> {
        Self::load_with(path, &[])
    }

    /// [`NodeConfig::load`], with `sets` (`KEY=VALUE`, as `--set` takes
    /// them) over the environment's keys, over the file's.
    pub fn load_with(path: &Path, sets: &[String]) -> anyhow::Result<NodeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        let overrides = overrides::collect(env, sets)?;
        let mut config = Self::parse_with(&text, base, &overrides)
            .with_context(|| format!("in config {}", path.display()))?;
        config
            .admin_auth
            .add_env_token(std::env::var(admin::ADMIN_TOKEN_ENV).ok())?;
        Ok(config)
    }

    /// Parses and validates config text; relative paths resolve against
    /// `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<NodeConfig> {
        Self::parse_with(text, base, &[])
    }

    /// [`NodeConfig::parse`] with `overrides` set over the text's keys.
    pub fn parse_with(
        text: &str,
        base: &Path,
        overrides: &[overrides::Override],
    ) -> anyhow::Result<NodeConfig> {
        let raw: RawConfig = if overrides.is_empty() {
            // Straight from the text: errors point at its lines.
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?
        } else {
            let mut table: toml::Table =
                toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
            overrides::apply(&mut table, overrides)?;
            let sources: Vec<&str> = overrides.iter().map(|o| o.source.as_str()).collect();
            toml::Value::Table(table)
                .try_into()
                .map_err(|e| anyhow::anyhow!("{e} (with {} set)", sources.join(", ")))?
        };
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut raw = raw;
        raw.node_id = env_vars::expand("node-id", &raw.node_id, |name| std::env::var(name).ok())?;
        check_id("node-id", &raw.node_id)?;
        if raw.cluster_id.is_empty() {
            bail!("`cluster-id`: must not be empty");
        }
        let listen = addr("listen", &raw.listen)?;
        let admin = match &raw.admin {
            Some(a) => addr("admin", a)?,
            None => SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let secret = match (&raw.secret, &raw.secret_file) {
            (Some(s), None) => s.as_bytes().to_vec(),
            (None, Some(file)) => {
                let file = resolve(file);
                let text = std::fs::read(&file)
                    .with_context(|| format!("`secret-file`: cannot read {}", file.display()))?;
                let trimmed = text.trim_ascii_end();
                trimmed.to_vec()
            }
            (Some(_), Some(_)) => bail!("`secret` and `secret-file`: give only one of them"),
            (None, None) if raw.tls.is_some() => Vec::new(),
            (None, None) => bail!("`secret`: required (or `secret-file`, or `[tls]`)"),
        };
        if raw.tls.is_some() && !secret.is_empty() {
            bail!(
                "`secret` and `[tls]`: with mutual TLS the secret is not used; leave it out so \
                 nobody relies on it"
            );
        }
        if raw.tls.is_none() && secret.len() < MIN_SECRET_BYTES {
            bail!(
                "`secret`: must be at least {MIN_SECRET_BYTES} bytes, got {}",
                secret.len()
            );
        }
        let mut peers = BTreeMap::new();
        for (id, address) in &raw.peers {
            check_id(&format!("peers.{id}"), id)?;
            if *id == raw.node_id {
                continue;
            }
            let peer: PeerAddr = address
                .parse()
                .map_err(|e| anyhow::anyhow!("`peers.{id}`: {e}"))?;
            peers.insert(id.clone(), peer);
        }
        let off_loopback = [listen, admin].iter().any(|a| !a.ip().is_loopback())
            || peers.values().any(|p| !p.is_loopback());
        if raw.tls.is_none() {
            secret::check_cluster_secret(&secret, off_loopback)
                .map_err(|why| anyhow::anyhow!("`secret`: refused: {why}"))?;
        }
        if admin.port() != 0
            && admin.port() == listen.port()
            && (admin.ip() == listen.ip()
                || admin.ip().is_unspecified()
                || listen.ip().is_unspecified())
        {
            bail!("`admin` and `listen`: both are {admin}; give the admin endpoint its own port");
        }
        let d = Timings::default();
        let t = &raw.timings;
        let timings = Timings {
            election_timeout_min_ms: t
                .election_timeout_min_ms
                .unwrap_or(d.election_timeout_min_ms),
            election_timeout_max_ms: t
                .election_timeout_max_ms
                .unwrap_or(d.election_timeout_max_ms),
            heartbeat_interval_ms: t.heartbeat_interval_ms.unwrap_or(d.heartbeat_interval_ms),
            peer_timeout_heartbeats: t
                .peer_timeout_heartbeats
                .unwrap_or(d.peer_timeout_heartbeats),
            lease_drift_margin_ms: t.lease_drift_margin_ms.unwrap_or(d.lease_drift_margin_ms),
            stability_window_ms: t.stability_window_ms.unwrap_or(d.stability_window_ms),
        };
        let lease_guard_ms = raw
            .protocol
            .lease_guard_ms
            .unwrap_or(DEFAULT_LEASE_GUARD_MS);
        let lease_ms = timings
            .election_timeout_min_ms
            .saturating_sub(timings.lease_drift_margin_ms);
        if lease_guard_ms >= lease_ms {
            bail!(
                "`protocol.lease-guard-ms`: must be below the lease (election-timeout-min-ms \
                 less lease-drift-margin-ms, {lease_ms} ms), got {lease_guard_ms}"
            );
        }
        let command = command_config(&raw.command, lease_guard_ms)?;
        let hook_timeout_ms = raw.hooks.timeout_ms.unwrap_or(5_000);
        in_range("hooks.timeout-ms", hook_timeout_ms, 1..=600_000)?;
        for (key, hook) in [
            ("became-leader", &raw.hooks.became_leader),
            ("became-follower", &raw.hooks.became_follower),
            ("term-changed", &raw.hooks.term_changed),
        ] {
            if hook.as_ref().is_some_and(|h| h.trim().is_empty()) {
                bail!("`hooks.{key}`: must not be empty (leave it out instead)");
            }
        }
        let hooks = HooksConfig {
            became_leader: raw.hooks.became_leader.clone(),
            became_follower: raw.hooks.became_follower.clone(),
            term_changed: raw.hooks.term_changed.clone(),
            timeout: std::time::Duration::from_millis(u64::from(hook_timeout_ms)),
        };
        let plugin = match raw.plugin {
            None => None,
            Some(p) => Some(plugin::plugin(p, &raw.plugin_limits, resolve)?),
        };
        let data_dir = resolve(
            &raw.data_dir
                .unwrap_or_else(|| PathBuf::from("tenure-data").join(&raw.node_id)),
        );
        let cache_dir = raw
            .cache_dir
            .as_deref()
            .map_or_else(|| data_dir.join("cache"), resolve);
        Ok(NodeConfig {
            node_id: raw.node_id,
            cluster_id: raw.cluster_id,
            listen,
            admin,
            data_dir,
            cache_dir,
            secret,
            peers,
            timings,
            protocol_component: raw.protocol.component.as_deref().map(resolve),
            pre_vote: raw.protocol.pre_vote.unwrap_or(true),
            priority: raw.protocol.priority.unwrap_or(0),
            voter: !raw.protocol.observer.unwrap_or(false),
            fast_failover: raw.protocol.fast_failover.unwrap_or(true),
            join: raw.protocol.join.unwrap_or(false),
            plugin,
            lease_guard: std::time::Duration::from_millis(u64::from(lease_guard_ms)),
            command,
            hooks,
            admin_auth: admin::auth(&raw.admin_auth, resolve)?,
            admin_limits: admin::limits(&raw.admin_limits)?,
            admin_tls: raw.admin_tls.as_ref().map(|t| admin::admin_tls(t, resolve)),
            tls: raw.tls.as_ref().map(|t| transport::tls(t, resolve)),
            peer_limits: transport::peer_limits(&raw.peer_limits)?,
        })
    }
}

/// Validates `[command]` against the lease guard it must fit in.
fn command_config(raw: &RawCommand, lease_guard_ms: u32) -> anyhow::Result<CommandConfig> {
    let grace_ms = raw.grace_ms.unwrap_or(lease_guard_ms / 2);
    if grace_ms >= lease_guard_ms {
        bail!(
            "`command.grace-ms`: must be below `protocol.lease-guard-ms` ({lease_guard_ms}), so \
             the SIGKILL lands before the lease could lapse; got {grace_ms}"
        );
    }
    let on_exit = match raw.on_exit.as_deref() {
        None | Some("restart") => OnExit::Restart,
        Some("step-down") => OnExit::StepDown,
        Some(other) => {
            bail!("`command.on-exit`: must be \"restart\" or \"step-down\", got {other:?}")
        }
    };
    let backoff_ms = raw.restart_backoff_ms.unwrap_or(1_000);
    in_range("command.restart-backoff-ms", backoff_ms, 10..=60_000)?;
    Ok(CommandConfig {
        grace: std::time::Duration::from_millis(u64::from(grace_ms)),
        on_exit,
        restart_backoff: std::time::Duration::from_millis(u64::from(backoff_ms)),
    })
}

/// Refuses `value` of `key` outside `range`, naming both.
pub(crate) fn in_range(
    key: &str,
    value: impl Into<u64>,
    range: std::ops::RangeInclusive<u64>,
) -> anyhow::Result<()> {
    let value = value.into();
    if !range.contains(&value) {
        bail!(
            "`{key}`: must be between {} and {}, got {value}",
            range.start(),
            range.end()
        );
    }
    Ok(())
}

fn check_id(key: &str, id: &str) -> anyhow::Result<()> {
    if id.is_empty() || id.len() > 255 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("`{key}`: {id:?} is not a valid node id (1-255 bytes, no whitespace)");
    }
    Ok(())
}

fn addr(key: &str, text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .map_err(|e| anyhow::anyhow!("`{key}`: {text:?} is not an IP:port address ({e})"))
}

#[cfg(test)]
mod tests;
