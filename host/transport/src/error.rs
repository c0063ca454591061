//! The typed errors of [`Transport::start`](crate::Transport::start) and
//! [`Transport::send`](crate::Transport::send).

use std::net::SocketAddr;

use crate::frame::KeyError;
use crate::tls::TlsError;

/// Why a transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The cluster secret cannot key the MAC (shorter than 16 bytes).
    #[error("transport.secret: {0}")]
    Secret(#[from] KeyError),
    /// The TLS identity cannot be used (it names another node or cluster,
    /// or rustls refuses it).
    #[error("transport.security: {0}")]
    Tls(#[from] TlsError),
    /// A configuration field is out of range; `field` names it.
    #[error("transport.{field}: {reason}")]
    InvalidConfig {
        /// The [`TransportConfig`](crate::TransportConfig) field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// Why a frame was not queued. Every variant but [`SendError::TooLarge`]
/// and [`SendError::Closed`] is also counted in
/// [`TransportStats`](crate::TransportStats).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No address is known for the peer (counted in `dropped_unknown_peer`).
    #[error("no address known for peer {peer:?}")]
    UnknownPeer {
        /// The addressee.
        peer: String,
    },
    /// The peer's outbound queue is full; the frame was dropped (counted in
    /// `dropped_queue_full`).
    #[error("outbound queue to {peer:?} is full; frame dropped")]
    QueueFull {
        /// The addressee.
        peer: String,
    },
    /// The frame would exceed `max_frame_bytes`; nothing was queued.
    #[error("frame of {len} bytes exceeds max_frame_bytes ({max})")]
    TooLarge {
        /// The encoded frame body's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The peer's connection task is gone: the transport is shutting down
    /// or its runtime has stopped.
    #[error("transport to {peer:?} is shut down")]
    Closed {
        /// The addressee.
        peer: String,
    },
}
