//! `[tls]` and `[peer-limits]`: how nodes prove who they are to each other,
//! and how much an unknown or flooding connection may hold.
//!
//! ```toml
//! [tls]                          # mutual TLS between nodes (instead of the
//! ca = "ca.pem"                  #   shared secret, which is then not needed):
//! cert = "n1.pem"                #   the cluster CA, this node's certificate
//! key = "n1.key"                 #   (naming it: `tenure certs` makes them)
//!                                #   and its key; re-read on SIGHUP
//!
//! [peer-limits]                  # defaults shown
//! handshake-timeout-ms = 2000    # to complete a connection's handshake
//! max-connections = 256          # accepted connections at once
//! max-pending = 128              # of those, still in their handshake
//! max-pending-per-ip = 8         # ... from one address (an IPv6 /64)
//! max-frames-per-sec = 5000      # per connection, beyond a burst of
//! frame-burst = 2000             #   this many; then it is closed
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use tenure_transport::{TlsIdentity, TransportConfig};

/// The `[tls]` table: where this node's certificate files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// The cluster CA certificate (PEM).
    pub ca: PathBuf,
    /// This node's certificate chain (PEM, its own first).
    pub cert: PathBuf,
    /// This node's private key (PEM).
    pub key: PathBuf,
}

impl TlsConfig {
    /// Reads the three files and checks that the certificate names
    /// `node` of `cluster`: how the node starts, and reloads on SIGHUP.
    pub fn load(&self, cluster: &str, node: &str) -> anyhow::Result<TlsIdentity> {
        let identity = TlsIdentity::load(&self.ca, &self.cert, &self.key)
            .context("`tls`: loading the certificate files")?;
        let (named_cluster, named_node) = identity
            .names()
            .with_context(|| format!("`tls.cert` {}", self.cert.display()))?;
        if (named_cluster.as_str(), named_node.as_str()) != (cluster, node) {
            bail!(
                "`tls.cert` {} names node {named_node:?} of cluster {named_cluster:?}, not this \
                 node {node:?} of cluster {cluster:?}",
                self.cert.display()
            );
        }
        Ok(identity)
    }
}

/// The `[peer-limits]` table (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// Time to complete a connection's handshake.
    pub handshake_timeout: Duration,
    /// Accepted connections at once.
    pub max_connections: usize,
    /// Connections still in their handshake.
    pub max_pending: usize,
    /// Of those, from one address.
    pub max_pending_per_ip: usize,
    /// Frames per second one connection may send beyond its burst.
    pub max_frames_per_sec: u32,
    /// The burst.
    pub frame_burst: u32,
}

impl Default for PeerLimits {
    fn default() -> PeerLimits {
        PeerLimits {
            handshake_timeout: tenure_transport::DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: tenure_transport::DEFAULT_MAX_CONNECTIONS,
            max_pending: tenure_transport::DEFAULT_MAX_PENDING,
            max_pending_per_ip: tenure_transport::DEFAULT_MAX_PENDING_PER_IP,
            max_frames_per_sec: tenure_transport::DEFAULT_MAX_FRAMES_PER_SEC,
            frame_burst: tenure_transport::DEFAULT_FRAME_BURST,
        }
    }
}

impl PeerLimits {
    /// Sets these limits on a transport's configuration.
    pub fn apply(&self, config: &mut TransportConfig) {
        config.handshake_timeout = self.handshake_timeout;
        config.max_connections = self.max_connections;
        config.max_pending = self.max_pending;
        config.max_pending_per_ip = self.max_pending_per_ip;
        config.max_frames_per_sec = self.max_frames_per_sec;
        config.frame_burst = self.frame_burst;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPeerLimits {
    handshake_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    max_pending: Option<usize>,
    max_pending_per_ip: Option<usize>,
    max_frames_per_sec: Option<u32>,
    frame_burst: Option<u32>,
}

/// `[tls]` with its paths resolved; the files are read at start.
pub(super) fn tls(raw: &RawTls, resolve: impl Fn(&Path) -> PathBuf) -> TlsConfig {
    TlsConfig {
        ca: resolve(&raw.ca),
        cert: resolve(&raw.cert),
        key: resolve(&raw.key),
    }
}

/// `[peer-limits]`, checked.
pub(super) fn peer_limits(raw: &RawPeerLimits) -> anyhow::Result<PeerLimits> {
    let d = PeerLimits::default();
    let in_range =
        |key: &str, value: u64, range| super::in_range(&format!("peer-limits.{key}"), value, range);
    let limits = PeerLimits {
        handshake_timeout: raw
            .handshake_timeout_ms
            .map_or(d.handshake_timeout, Duration::from_millis),
        max_connections: raw.max_connections.unwrap_or(d.max_connections),
        max_pending: raw.max_pending.unwrap_or(d.max_pending),
        max_pending_per_ip: raw.max_pending_per_ip.unwrap_or(d.max_pending_per_ip),
        max_frames_per_sec: raw.max_frames_per_sec.unwrap_or(d.max_frames_per_sec),
        frame_burst: raw.frame_burst.unwrap_or(d.frame_burst),
    };
    in_range(
        "handshake-timeout-ms",
        limits.handshake_timeout.as_millis() as u64,
        50..=60_000,
    )?;
    in_range("max-connections", limits.max_connections as u64, 4..=65_536)?;
    in_range("max-pending", limits.max_pending as u64, 1..=65_536)?;
    in_range(
        "max-pending-per-ip",
        limits.max_pending_per_ip as u64,
        1..=65_536,
    )?;
    // A heartbeat every 50 ms is 20 frames a second; far below these.
    in_range(
        "max-frames-per-sec",
        u64::from(limits.max_frames_per_sec),
        100..=1_000_000,
    )?;
    in_range("frame-burst", u64::from(limits.frame_burst), 10..=1_000_000)?;
    Ok(limits)
}
