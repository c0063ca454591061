//! [`Transport`]: the handle the node holds.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::address::PeerAddr;
use crate::config::{Mode, TransportConfig, check_node_id};
use crate::error::{SendError, TransportError};
use crate::event::{Channel, Inbound, PeerEvent};
use crate::frame;
use crate::limits::{Admission, AdmissionLimits, LogLimit, NodeConnections};
use crate::peers::PeerBook;
use crate::shared::{Shared, lock, log_join};
use crate::stats::{Counters, TransportStats};
use crate::tls::{TlsConfigs, TlsError, TlsIdentity};
use crate::{accept, outbound};

/// Capacity of the channel of [`Inbound`] messages.
pub const INBOUND_CAPACITY: usize = 1024;

/// Capacity of the channel of [`PeerEvent`]s (events beyond it are dropped).
pub const EVENT_CAPACITY: usize = 1024;

/// At most one warning a second about connections the listener's bounds
/// closed (each is counted regardless).
const BOUNDS_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A node's endpoint: listens for its peers' frames and sends its own.
///
/// Start it with [`Transport::start`], which returns the handle and the
/// receivers of inbound messages and peer events. Dropping the handle stops
/// every task (abruptly); [`Transport::shutdown`] stops them and waits.
///
/// ```
/// use tenure_transport::{Channel, Transport, TransportConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let secret = b"shared cluster secret".to_vec();
/// let any_port = "127.0.0.1:0".parse()?;
/// let (a, _a_inbox, _a_events) =
///     Transport::start(TransportConfig::new("a", "demo", secret.clone(), any_port)).await?;
/// let (b, mut b_inbox, _b_events) =
///     Transport::start(TransportConfig::new("b", "demo", secret, any_port)).await?;
///
/// a.add_peer("b", b.local_addr());
/// a.send("b", Channel::Protocol, b"hello, b".to_vec())?;
/// let message = b_inbox.recv().await.ok_or("b's inbox closed")?;
/// assert_eq!((message.from.as_str(), message.payload.as_slice()), ("a", &b"hello, b"[..]));
///
/// // b learned a's address from the connection's hello, so it can answer.
/// assert_eq!(b.peers().get("a"), Some(&a.local_addr()));
///
/// a.shutdown().await;
/// b.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Transport {
    shared: Arc<Shared>,
    /// The queue of each peer's connection task, made on first send.
    outbound: Mutex<HashMap<String, mpsc::Sender<outbound::Outgoing>>>,
    tasks: Mutex<JoinSet<()>>,
    runtime: Handle,
}

impl Transport {
    /// Binds the listener and starts the accept loop; outbound connections are made lazily per peer on first send (and kept, with reconnect).
    ///
    /// Fails if the configuration is invalid (a secret under 16 bytes, an
    /// empty or over-long id, ...) or the address cannot be bound. Must be
    /// called within a Tokio runtime, which runs every task.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<
        (
            Transport,
            mpsc::Receiver<Inbound>,
            mpsc::Receiver<PeerEvent>,
        ),
        TransportError,
    > {
        let mode = config.validate()?;
        let bind_error = |source| TransportError::Bind {
            addr: config.listen,
            source,
        };
        // On Unix, Tokio binds with SO_REUSEADDR, so a restarted node can
        // listen again on its port while old connections sit in TIME_WAIT.
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;

        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let shared = Arc::new(Shared {
            node_id: config.node_id,
            cluster_id: config.cluster_id,
            mode,
            local_addr,
            max_frame_bytes: config.max_frame_bytes,
            queue_capacity: config.queue_capacity,
            reconnect_min: config.reconnect_min,
            reconnect_max: config.reconnect_max,
            handshake_timeout: config.handshake_timeout,
            max_connections_per_node: config.max_connections_per_node,
            max_frames_per_sec: config.max_frames_per_sec,
            frame_burst: config.frame_burst,
            admission: Arc::new(Mutex::new(Admission::new(AdmissionLimits {
                max_connections: config.max_connections,
                max_pending: config.max_pending,
                max_pending_per_ip: config.max_pending_per_ip,
            }))),
            nodes: Mutex::new(NodeConnections::default()),
            bounds_log: Mutex::new(LogLimit::new(BOUNDS_LOG_EVERY)),
            peers: Mutex::new(PeerBook::new(config.peers)),
            resolver: config.resolver,
            evidence: Mutex::new(BTreeMap::new()),
            incarnation: rand::random(),
            claims: Mutex::new(crate::claims::Claims::default()),
            stats: Counters::default(),
            events: events_tx,
            cancel: CancellationToken::new(),
        });
        let runtime = Handle::current();
        let mut tasks = JoinSet::new();
        tasks.spawn_on(
            accept::accept_loop(listener, shared.clone(), inbound_tx),
            &runtime,
        );
        tracing::info!(node = %shared.node_id, addr = %local_addr, "transport listening");
        let transport = Transport {
            shared,
            outbound: Mutex::new(HashMap::new()),
            tasks: Mutex::new(tasks),
            runtime,
        };
        Ok((transport, inbound_rx, events_rx))
    }

    /// The address the listener is bound to (the real port when the
    /// configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Never blocks and never awaits: queues the frame for `to`'s connection task. Full queue -> dropped and counted (returns Err(SendError::QueueFull)); no known address -> Err(SendError::UnknownPeer) and counted.
    ///
    /// A frame larger than `max_frame_bytes` is refused with
    /// [`SendError::TooLarge`]. Delivery is at most once: frames queued or
    /// in flight when a connection breaks may be lost.
    pub fn send(&self, to: &str, channel: Channel, payload: Vec<u8>) -> Result<(), SendError> {
        if !lock(&self.shared.peers).knows(to) {
            Counters::add(&self.shared.stats.dropped_unknown_peer, 1);
            return Err(SendError::UnknownPeer {
                peer: to.to_owned(),
            });
        }
        let shared = &self.shared;
        let len = frame::encoded_len(&shared.cluster_id, &shared.node_id, to, payload.len());
        if len > shared.max_frame_bytes {
            return Err(SendError::TooLarge {
                len,
                max: shared.max_frame_bytes,
            });
        }
        let out = outbound::Outgoing {
            kind: channel.kind(),
            payload: Bytes::from(payload),
        };
        match self.queue_for(to).try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::add(&shared.stats.dropped_queue_full, 1);
                Err(SendError::QueueFull {
                    peer: to.to_owned(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed {
                peer: to.to_owned(),
            }),
        }
    }

    /// The queue of `peer`'s connection task, starting the task on first use.
    fn queue_for(&self, peer: &str) -> mpsc::Sender<outbound::Outgoing> {
        let mut outbound = lock(&self.outbound);
        if let Some(tx) = outbound.get(peer) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(self.shared.queue_capacity);
        lock(&self.tasks).spawn_on(
            outbound::run(peer.to_owned(), self.shared.clone(), rx),
            &self.runtime,
        );
        outbound.insert(peer.to_owned(), tx.clone());
        tx
    }

    /// Records (or replaces) the address of peer `id`: a socket address,
    /// or a [`PeerAddr::Name`] resolved afresh on every dial. A connection
    /// task uses the new address from its next (re)connection on. An id
    /// that cannot go on the wire (empty, or over 255 bytes) is ignored
    /// with a warning.
    ///
    /// A name stays the address dialled even when the peer's hellos report
    /// another (its IP changes when it moves; its name does not); a socket
    /// address is replaced by what the peer's hello reports. Use
    /// [`Transport::knows_peer`] first to only fill gaps.
    pub fn add_peer(&self, id: &str, addr: impl Into<PeerAddr>) {
        if let Err(reason) = check_node_id(id) {
            tracing::warn!(peer = id, %reason, "add_peer: invalid peer id ignored");
            return;
        }
        lock(&self.shared.peers).set(id, addr.into());
    }

    /// Whether this transport has an address or a name for `id` (so
    /// [`Transport::send`] to it is not refused as an unknown peer).
    pub fn knows_peer(&self, id: &str) -> bool {
        lock(&self.shared.peers).knows(id)
    }

    /// The last socket address known of each peer: configured, added,
    /// learned from hellos, or what a peer's name last resolved to on a
    /// connection that opened. A peer known only by a name that has not
    /// yet answered is not in it (see [`Transport::knows_peer`]).
    pub fn peers(&self) -> BTreeMap<String, SocketAddr> {
        lock(&self.shared.peers).addresses()
    }

    /// Makes connections from now on use `identity` (e.g. on SIGHUP, after
    /// new certificate files were written); open connections keep theirs.
    ///
    /// Fails, keeping the current identity, if the transport is not in
    /// mutual-TLS mode, or the identity's certificate does not name this
    /// node of this cluster, or rustls refuses it.
    pub fn reload_tls(&self, identity: TlsIdentity) -> Result<(), TlsError> {
        let Mode::Tls(configs) = &self.shared.mode else {
            return Err(TlsError::NotTls);
        };
        let shared = &self.shared;
        let fresh = TlsConfigs::new(&identity, &shared.cluster_id, &shared.node_id)?;
        *lock(configs) = Arc::new(fresh);
        tracing::info!(node = %shared.node_id, "TLS identity reloaded; new connections use it");
        Ok(())
    }

    /// A snapshot of the counters and gauges.
    pub fn stats(&self) -> TransportStats {
        let mut stats = self.shared.stats.snapshot();
        let (open, pending) = lock(&self.shared.admission).counts();
        stats.open_connections = open as u64;
        stats.pending_handshakes = pending as u64;
        stats
    }

    /// Stops the accept loop and every connection task; returns when they are gone.
    ///
    /// Frames still queued are discarded. The receivers returned by
    /// [`Transport::start`] then yield `None` once drained.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        while let Some(done) = tasks.join_next().await {
            log_join(done, "transport");
        }
        tracing::info!(node = %self.shared.node_id, "transport stopped");
    }
}

impl Drop for Transport {
    /// Tells every task to stop; the tasks still in the set are aborted
    /// when it drops.
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node_id", &self.shared.node_id)
            .field("cluster_id", &self.shared.cluster_id)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}
