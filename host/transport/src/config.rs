//! [`TransportConfig`]: who this node is, where it listens, whom it knows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::TransportError;
use crate::frame::{self, FrameKey};

/// Default [`TransportConfig::max_frame_bytes`]: 64 KiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Default [`TransportConfig::queue_capacity`]: 256 frames per peer.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
/// Default [`TransportConfig::reconnect_min`]: 20 ms.
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(20);
/// Default [`TransportConfig::reconnect_max`]: 1 s.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(1);

/// Everything [`Transport::start`](crate::Transport::start) needs.
///
/// Build it with [`TransportConfig::new`], which fills in the defaults,
/// then adjust the public fields.
///
/// ```
/// use tenure_transport::TransportConfig;
/// let mut config = TransportConfig::new("n1", "prod", b"a secret of 16+ bytes".to_vec(), "127.0.0.1:0".parse().unwrap());
/// config.peers.insert("n2".into(), "127.0.0.1:7002".parse().unwrap());
/// assert_eq!(config.queue_capacity, 256);
/// ```
#[derive(Clone)]
pub struct TransportConfig {
    /// This node's id (1 to 255 bytes of UTF-8).
    pub node_id: String,
    /// The cluster's id; frames carrying another are refused (at most 65535 bytes).
    pub cluster_id: String,
    /// The HMAC-SHA256 key shared by the cluster; at least 16 bytes.
    pub secret: Vec<u8>,
    /// Where to listen. Port 0 picks a free port; see
    /// [`Transport::local_addr`](crate::Transport::local_addr).
    pub listen: SocketAddr,
    /// Known peer addresses by node id. More are learned from hellos and
    /// [`Transport::add_peer`](crate::Transport::add_peer).
    pub peers: BTreeMap<String, SocketAddr>,
    /// Largest frame body, in bytes, sent or accepted (the 4-byte length
    /// prefix not included). Default 64 KiB.
    pub max_frame_bytes: usize,
    /// Frames each peer's outbound queue holds. Default 256.
    pub queue_capacity: usize,
    /// First reconnect delay. Default 20 ms.
    pub reconnect_min: Duration,
    /// Longest reconnect delay. Default 1 s.
    pub reconnect_max: Duration,
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
            listen,
            peers: BTreeMap::new(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            reconnect_min: DEFAULT_RECONNECT_MIN,
            reconnect_max: DEFAULT_RECONNECT_MAX,
        }
    }

    /// Checks every field and keys the MAC.
    pub(crate) fn validate(&self) -> Result<FrameKey, TransportError> {
        let key = FrameKey::new(&self.secret)?;
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
        Ok(key)
    }
}

impl std::fmt::Debug for TransportConfig {
    /// Everything but the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportConfig")
            .field("node_id", &self.node_id)
            .field("cluster_id", &self.cluster_id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
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
