//! Counters: lock-free while running, read as a [`TransportStats`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a transport's counters since it started.
///
/// ```
/// use tenure_transport::TransportStats;
/// let stats = TransportStats::default();
/// assert_eq!((stats.rejected(), stats.refused()), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Frames (protocol or plugin) written to a peer's socket and flushed.
    pub sent: u64,
    /// Frames (protocol or plugin) accepted and handed to the inbound channel.
    pub received: u64,
    /// Frames dropped because a peer's outbound queue was full: refused by
    /// `send`, or the oldest evicted while the peer was unreachable.
    pub dropped_queue_full: u64,
    /// Sends to a node with no known address.
    pub dropped_unknown_peer: u64,
    /// Frames that did not decode, had another version or kind, or broke
    /// the connection's protocol (no hello first, a second hello, a bad
    /// hello address).
    pub rejected_malformed: u64,
    /// Length prefixes above `max_frame_bytes`.
    pub rejected_oversize: u64,
    /// Frames whose HMAC did not verify: under the cluster secret for no
    /// frame but the challenge, and under the connection's key for the
    /// hello and what follows it. A frame recorded on another connection
    /// and spliced into this one after a fresh hello is counted here: it
    /// cannot be told from a forgery.
    pub rejected_unauthenticated: u64,
    /// Frames a member made, but not for this moment: a hello that answers
    /// another connection's challenge (a recorded connection played back),
    /// or a frame whose MAC verifies but whose sequence number is not the
    /// next one on its connection (repeated, reordered, or one removed).
    pub rejected_replayed: u64,
    /// Frames carrying another cluster id.
    pub rejected_foreign_cluster: u64,
    /// Frames addressed to another node, or whose sender differs from the
    /// one that said hello on that connection.
    pub rejected_misaddressed: u64,
    /// Hellos refused because another live process already speaks for
    /// that node id here (see `claims`): a copied config, a node started
    /// twice.
    pub rejected_duplicate_id: u64,
    /// Mutual-TLS connections whose peer certificate was refused, on
    /// either end: not signed by the cluster CA, expired or not yet valid,
    /// naming another cluster, naming another node than the hello's (or a
    /// frame's) `from`, or, for a dialler, another node than the one it
    /// dialled.
    pub rejected_certificate: u64,
    /// Connections closed at once on accept: `max_connections` were open.
    pub refused_max_connections: u64,
    /// Connections closed at once on accept: `max_pending` handshakes were
    /// under way.
    pub refused_max_pending: u64,
    /// Connections closed at once on accept: `max_pending_per_ip`
    /// handshakes from the same source were under way.
    pub refused_max_pending_per_ip: u64,
    /// Connections closed because their handshake took longer than
    /// `handshake_timeout` (silent, slow, or dribbling a frame).
    pub closed_handshake_timeout: u64,
    /// Authenticated connections closed because a newer one from the same
    /// node id arrived (over `max_connections_per_node`); a peer's normal
    /// reconnection can count here.
    pub closed_superseded: u64,
    /// Connections closed for sending frames faster than
    /// `max_frames_per_sec` (beyond `frame_burst`).
    pub closed_frame_rate: u64,
    /// Gauge, not a counter: accepted connections open when the snapshot
    /// was taken (at most `max_connections`).
    pub open_connections: u64,
    /// Gauge, not a counter: accepted connections still in their handshake
    /// when the snapshot was taken (at most `max_pending`).
    pub pending_handshakes: u64,
}

impl TransportStats {
    /// All rejected inbound frames, whatever the reason.
    pub fn rejected(&self) -> u64 {
        self.rejected_malformed
            + self.rejected_oversize
            + self.rejected_unauthenticated
            + self.rejected_replayed
            + self.rejected_foreign_cluster
            + self.rejected_misaddressed
            + self.rejected_duplicate_id
            + self.rejected_certificate
    }

    /// All connections the listener's bounds closed: refused on accept,
    /// timed out in their handshake, or over the frame rate (not
    /// `closed_superseded`, which a normal reconnection causes).
    pub fn refused(&self) -> u64 {
        self.refused_max_connections
            + self.refused_max_pending
            + self.refused_max_pending_per_ip
            + self.closed_handshake_timeout
            + self.closed_frame_rate
    }
}

/// The live counters behind [`TransportStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_unknown_peer: AtomicU64,
    pub rejected_malformed: AtomicU64,
    pub rejected_oversize: AtomicU64,
    pub rejected_unauthenticated: AtomicU64,
    pub rejected_replayed: AtomicU64,
    pub rejected_foreign_cluster: AtomicU64,
    pub rejected_misaddressed: AtomicU64,
    pub rejected_duplicate_id: AtomicU64,
    pub rejected_certificate: AtomicU64,
    pub refused_max_connections: AtomicU64,
    pub refused_max_pending: AtomicU64,
    pub refused_max_pending_per_ip: AtomicU64,
    pub closed_handshake_timeout: AtomicU64,
    pub closed_superseded: AtomicU64,
    pub closed_frame_rate: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            sent: get(&self.sent),
            received: get(&self.received),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_unknown_peer: get(&self.dropped_unknown_peer),
            rejected_malformed: get(&self.rejected_malformed),
            rejected_oversize: get(&self.rejected_oversize),
            rejected_unauthenticated: get(&self.rejected_unauthenticated),
            rejected_replayed: get(&self.rejected_replayed),
            rejected_foreign_cluster: get(&self.rejected_foreign_cluster),
            rejected_misaddressed: get(&self.rejected_misaddressed),
            rejected_duplicate_id: get(&self.rejected_duplicate_id),
            rejected_certificate: get(&self.rejected_certificate),
            refused_max_connections: get(&self.refused_max_connections),
            refused_max_pending: get(&self.refused_max_pending),
            refused_max_pending_per_ip: get(&self.refused_max_pending_per_ip),
            closed_handshake_timeout: get(&self.closed_handshake_timeout),
            closed_superseded: get(&self.closed_superseded),
            closed_frame_rate: get(&self.closed_frame_rate),
            open_connections: 0,
            pending_handshakes: 0,
        }
    }
}
