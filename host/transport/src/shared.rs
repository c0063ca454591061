//! State shared by the [`Transport`](crate::Transport) handle and its tasks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::LengthDelimitedCodec;
use tokio_util::sync::CancellationToken;

use crate::address::Resolve;
use crate::claims::Claims;
use crate::config::Mode;
use crate::death::DeathEvidence;
use crate::event::PeerEvent;
use crate::limits::{Admission, LogLimit, NodeConnections};
use crate::peers::{PeerBook, Target};
use crate::stats::Counters;

/// A connection's byte stream: plain TCP, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection's byte stream, whichever it is.
pub(crate) type BoxIo = Box<dyn Io>;

/// Writes one frame body with its 4-byte length prefix, and flushes.
pub(crate) async fn write_body(io: &mut BoxIo, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too long"))?;
    let mut bytes = Vec::with_capacity(4 + body.len());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(body);
    io.write_all(&bytes).await?;
    io.flush().await
}

pub(crate) struct Shared {
    pub node_id: String,
    pub cluster_id: String,
    /// The cluster secret's key, or the TLS configurations.
    pub mode: Mode,
    /// The bound listen address, sent in hellos.
    pub local_addr: SocketAddr,
    pub max_frame_bytes: usize,
    pub queue_capacity: usize,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// The listener's bounds ([`crate::limits`]; see
    /// [`TransportConfig`](crate::TransportConfig) for each).
    pub handshake_timeout: Duration,
    pub max_connections_per_node: usize,
    pub max_frames_per_sec: u32,
    pub frame_burst: u32,
    pub admission: std::sync::Arc<Mutex<Admission>>,
    pub nodes: Mutex<NodeConnections>,
    /// Paces the warnings about connections the bounds closed.
    pub bounds_log: Mutex<LogLimit>,
    /// Every peer's name and last address ([`PeerBook`]).
    pub peers: Mutex<PeerBook>,
    /// Resolves peers configured by name, on every dial.
    pub resolver: std::sync::Arc<dyn Resolve>,
    /// Per peer, what its connections say about whether its process lives.
    pub evidence: Mutex<BTreeMap<String, DeathEvidence>>,
    /// This process's incarnation, sent in every hello (see
    /// [`crate::claims`]).
    pub incarnation: u64,
    /// Which incarnation of each peer this node listens to.
    pub claims: Mutex<Claims>,
    pub stats: Counters,
    pub events: mpsc::Sender<PeerEvent>,
    pub cancel: CancellationToken,
}

impl Shared {
    /// The length-delimited codec of every connection: 4-byte big-endian
    /// length, bodies of at most `max_frame_bytes`.
    pub fn codec(&self) -> LengthDelimitedCodec {
        LengthDelimitedCodec::builder()
            .length_field_length(4)
            .big_endian()
            .max_frame_length(self.max_frame_bytes)
            .new_codec()
    }

    /// Where to dial `id`, if anything is known of it.
    pub fn dial_target(&self, id: &str) -> Option<Target> {
        lock(&self.peers).target(id)
    }

    /// Records where `id` listens (from its hello, or a dial that
    /// answered), keeping its name as the dial target; returns the address
    /// it replaced, if any.
    pub fn learn_peer_addr(&self, id: &str, addr: SocketAddr) -> Option<SocketAddr> {
        lock(&self.peers).learn(id, addr)
    }

    /// Updates what `peer`'s connections say about it, and reports it
    /// [`PeerEvent::Unreachable`] if that now means its process is dead
    /// (see [`crate::death`]).
    pub fn witness(&self, peer: &str, update: impl FnOnce(&mut DeathEvidence) -> bool) {
        let dead = update(lock(&self.evidence).entry(peer.to_owned()).or_default());
        if dead {
            self.emit(PeerEvent::Unreachable {
                peer: peer.to_owned(),
            });
        }
    }

    /// Warns that the listener's bounds closed a connection, at most once
    /// per [`LogLimit`] period (counting is the caller's).
    pub fn warn_bounds(&self, peer: SocketAddr, reason: &str) {
        if let Some(suppressed) = lock(&self.bounds_log).allow(std::time::Instant::now()) {
            tracing::warn!(%peer, %reason, suppressed, "closing connection: listener bound reached");
        } else {
            tracing::debug!(%peer, %reason, "closing connection: listener bound reached");
        }
    }

    /// Hands an event to the application without ever waiting: events are
    /// rare state changes, and the channel is large, so a full channel
    /// means nobody reads it.
    pub fn emit(&self, event: PeerEvent) {
        if let Err(e) = self.events.try_send(event) {
            tracing::debug!(event = ?e.into_inner(), "peer event dropped: event channel full or closed");
        }
    }
}

/// Locks a mutex, recovering the data if a holder panicked: every critical
/// section here is a single map operation, which cannot leave it half-done.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Logs a task that ended other than by returning or being aborted (a panic).
pub(crate) fn log_join(done: Result<(), tokio::task::JoinError>, task: &str) {
    if let Err(e) = done
        && !e.is_cancelled()
    {
        tracing::error!(error = %e, "{task} task failed");
    }
}
