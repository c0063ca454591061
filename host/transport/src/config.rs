//! [`TransportConfig`]: who this node is, where it listens, whom it knows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::{Arc, Mutex};

use crate::address::{PeerAddr, Resolve, SystemResolver};
use crate::error::TransportError;
use crate::frame::{self, FrameKey};
use crate::tls::{TlsConfigs, TlsIdentity};

/// Default [`TransportConfig::max_frame_bytes`]: 64 KiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Default [`TransportConfig::queue_capacity`]: 256 frames per peer.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
/// Default [`TransportConfig::reconnect_min`]: 20 ms.
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(20);
/// Default [`TransportConfig::reconnect_max`]: 1 s.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(1);
/// Default [`TransportConfig::handshake_timeout`]: 2 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default [`TransportConfig::max_connections`]: 256.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default [`TransportConfig::max_pending`]: 128.
pub const DEFAULT_MAX_PENDING: usize = 128;
/// Default [`TransportConfig::max_pending_per_ip`]: 8.
pub const DEFAULT_MAX_PENDING_PER_IP: usize = 8;
/// Default [`TransportConfig::max_connections_per_node`]: 1.
pub const DEFAULT_MAX_CONNECTIONS_PER_NODE: usize = 1;
/// Default [`TransportConfig::max_frames_per_sec`]: 5,000.
pub const DEFAULT_MAX_FRAMES_PER_SEC: u32 = 5_000;
/// Default [`TransportConfig::frame_burst`]: 2,000.
pub const DEFAULT_FRAME_BURST: u32 = 2_000;

/// How a transport authenticates its connections.
///
/// ```
/// use tenure_transport::{certs, Security, TlsIdentity, TransportConfig};
/// let mut config = TransportConfig::new("n1", "prod", Vec::new(), "127.0.0.1:0".parse().unwrap());
/// let ca = certs::new_cluster_ca("prod")?;
/// let n1 = certs::issue_node(&ca, "prod", "n1", &[], 365)?;
/// config.security = Security::MutualTls(TlsIdentity::from_pem(&ca.cert_pem, &n1.cert_pem, &n1.key_pem)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub enum Security {
    /// Frames are MAC'd with keys derived from the cluster secret
    /// ([`TransportConfig::secret`]) and per-connection nonces; payloads
    /// travel in clear, and any member can claim any node id. The default.
    #[default]
    SharedSecret,
    /// Every connection is TLS 1.3 with certificates of the cluster CA that
    /// name each node ([`crate::tls`]): confidential, and a node can only
    /// speak as the node its certificate names. The secret is not used.
    MutualTls(TlsIdentity),
}

/// The validated security of a running transport.
pub(crate) enum Mode {
    /// The cluster secret, keyed.
    Secret(FrameKey),
    /// The current TLS configurations; swapped by a reload.
    Tls(Mutex<Arc<TlsConfigs>>),
}

/// Everything [`Transport::start`](crate::Transport::start) needs.
///
/// Build it with [`TransportConfig::new`], which fills in the defaults,
/// then adjust the public fields.
///
/// ```
/// use tenure_transport::TransportConfig;
/// let mut config = TransportConfig::new("n1", "prod", b"a secret of 16+ bytes".to_vec(), "127.0.0.1:0".parse().unwrap());
/// config.peers.insert("n2".into(), "127.0.0.1:7002".parse().unwrap());
/// config.peers.insert("n3".into(), "tenure-2.tenure.prod.svc:7001".parse().unwrap());
/// assert_eq!(config.queue_capacity, 256);
/// ```
#[derive(Clone)]
pub struct TransportConfig {
    /// This node's id (1 to 255 bytes of UTF-8).
    pub node_id: String,
    /// The cluster's id; frames carrying another are refused (at most 65535 bytes).
    pub cluster_id: String,
    /// The HMAC-SHA256 key shared by the cluster; at least 16 bytes in
    /// [`Security::SharedSecret`] mode, unused in [`Security::MutualTls`].
    pub secret: Vec<u8>,
    /// How connections are authenticated. Default
    /// [`Security::SharedSecret`].
    pub security: Security,
    /// Where to listen. Port 0 picks a free port; see
    /// [`Transport::local_addr`](crate::Transport::local_addr).
    pub listen: SocketAddr,
    /// Known peer addresses by node id: socket addresses, or names
    /// resolved with [`TransportConfig::resolver`] on every dial. More are
    /// learned from hellos and
    /// [`Transport::add_peer`](crate::Transport::add_peer).
    pub peers: BTreeMap<String, PeerAddr>,
    /// Resolves the peers given by name, on every (re)connection. Default
    /// [`SystemResolver`] (getaddrinfo).
    pub resolver: Arc<dyn Resolve>,
    /// Largest frame body, in bytes, sent or accepted (the 4-byte length
    /// prefix not included). Default 64 KiB.
    pub max_frame_bytes: usize,
    /// Frames each peer's outbound queue holds. Default 256.
    pub queue_capacity: usize,
    /// First reconnect delay. Default 20 ms.
    pub reconnect_min: Duration,
    /// Longest reconnect delay. Default 1 s.
    pub reconnect_max: Duration,
    /// How long an accepted connection may take, from accept to a checked
    /// hello (TLS handshake included), before it is closed and counted in
    /// `closed_handshake_timeout`: a peer that dribbles its hello, or says
    /// nothing, cannot keep an unauthenticated connection. Default 2 s.
    pub handshake_timeout: Duration,
    /// Most accepted connections open at once, authenticated or not; a
    /// connection beyond it is closed at once and counted in
    /// `refused_max_connections`. Keep it well under the process's file
    /// descriptor limit. Default 256.
    pub max_connections: usize,
    /// Most accepted connections still in their handshake at once; beyond
    /// it, closed at once and counted in `refused_max_pending`. Default 128.
    pub max_pending: usize,
    /// Most connections in their handshake from one source address (an
    /// IPv6 source counts by its /64); beyond it, closed at once and
    /// counted in `refused_max_pending_per_ip`. Default 8.
    pub max_pending_per_ip: usize,
    /// Most authenticated connections per claimed node id. A newer one
    /// closes the oldest (counted in `closed_superseded`), so a peer that
    /// reconnects after a network blip, while its old connection still
    /// looks open here, is never locked out. Default 1 (a real peer dials
    /// once).
    pub max_connections_per_node: usize,
    /// Frames a second one connection may send on average (a token bucket
    /// refilled continuously); a connection over it is closed and counted
    /// in `closed_frame_rate`. Default 5,000.
    pub max_frames_per_sec: u32,
    /// Frames one connection may send at once above the rate (the bucket's
    /// size; a reconnecting peer flushes up to `queue_capacity` held
    /// frames at once). Default 2,000.
    pub frame_burst: u32,
}

impl TransportConfig {
    /// A configuration with no known peers and the default limits.
    pub fn new(
        node_id: impl Into<String>,
        cluster_id: impl Into<String>,
        secret: impl Into<Vec<u8>>,
        listen: SocketAddr,
    ) -> TransportConfig {
        TransportConfig {
            node_id: node_id.into(),
            cluster_id: cluster_id.into(),
            secret: secret.into(),
            security: Security::SharedSecret,
            listen,
            peers: BTreeMap::new(),
            resolver: Arc::new(SystemResolver),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            reconnect_min: DEFAULT_RECONNECT_MIN,
            reconnect_max: DEFAULT_RECONNECT_MAX,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_per_ip: DEFAULT_MAX_PENDING_PER_IP,
            max_connections_per_node: DEFAULT_MAX_CONNECTIONS_PER_NODE,
            max_frames_per_sec: DEFAULT_MAX_FRAMES_PER_SEC,
            frame_burst: DEFAULT_FRAME_BURST,
        }
    }

    /// Checks every field, and keys the MAC or builds the TLS
    /// configurations.
    pub(crate) fn validate(&self) -> Result<Mode, TransportError> {
        check_node_id(&self.node_id).map_err(|reason| invalid("node_id", reason))?;
        if self.cluster_id.len() > frame::MAX_CLUSTER_ID_LEN {
            return Err(invalid(
                "cluster_id",
                format!("is longer than {} bytes", frame::MAX_CLUSTER_ID_LEN),
            ));
        }
        for id in self.peers.keys() {
            check_node_id(id)
                .map_err(|reason| invalid("peers", format!("peer id {id:?} {reason}")))?;
        }
        // A hello from this node must fit: its ids, the two nonces, then
        // its address as text (at most 47 bytes for an IPv6 socket address
        // with scope) and its incarnation.
        let min = frame::encoded_len(&self.cluster_id, &self.node_id, "", 0)
            + frame::MAX_NODE_ID_LEN
            + 2 * crate::handshake::NONCE_LEN
            + 64;
        if self.max_frame_bytes < min {
            return Err(invalid(
                "max_frame_bytes",
                format!("must be at least {min} for this node's ids"),
            ));
        }
        if u32::try_from(self.max_frame_bytes).is_err() {
            return Err(invalid(
                "max_frame_bytes",
                "must fit the 4-byte length prefix".into(),
            ));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1".into()));
        }
        if self.reconnect_min.is_zero() {
            return Err(invalid("reconnect_min", "must be above zero".into()));
        }
        if self.reconnect_max < self.reconnect_min {
            return Err(invalid(
                "reconnect_max",
                "must be at least reconnect_min".into(),
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(invalid("handshake_timeout", "must be above zero".into()));
        }
        let at_least_one: [(&'static str, usize); 6] = [
            ("max_connections", self.max_connections),
            ("max_pending", self.max_pending),
            ("max_pending_per_ip", self.max_pending_per_ip),
            ("max_connections_per_node", self.max_connections_per_node),
            ("max_frames_per_sec", self.max_frames_per_sec as usize),
            ("frame_burst", self.frame_burst as usize),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(invalid(field, "must be at least 1".into()));
            }
        }
        Ok(match &self.security {
            Security::SharedSecret => Mode::Secret(FrameKey::new(&self.secret)?),
            Security::MutualTls(identity) => Mode::Tls(Mutex::new(Arc::new(TlsConfigs::new(
                identity,
                &self.cluster_id,
                &self.node_id,
            )?))),
        })
    }
}

impl std::fmt::Debug for TransportConfig {
    /// Everything but the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportConfig")
            .field("node_id", &self.node_id)
            .field("cluster_id", &self.cluster_id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("security", &self.security)
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_pending", &self.max_pending)
            .field("max_pending_per_ip", &self.max_pending_per_ip)
            .field("max_connections_per_node", &self.max_connections_per_node)
            .field("max_frames_per_sec", &self.max_frames_per_sec)
            .field("frame_burst", &self.frame_burst)
            .finish()
    }
}

/// Whether `id` can be a node id on the wire: 1 to 255 bytes.
pub(crate) fn check_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("is empty".into())
    } else if id.len() > frame::MAX_NODE_ID_LEN {
        Err(format!("is longer than {} bytes", frame::MAX_NODE_ID_LEN))
    } else {
        Ok(())
    }
}

fn invalid(field: &'static str, reason: String) -> TransportError {
    TransportError::InvalidConfig { field, reason }
}
