//! Tenure's network transport: frames, authenticates and routes opaque
//! payloads between the nodes of a cluster over TCP.
//!
//! The election protocol above encodes its own messages; this crate only
//! moves them. A node starts a [`Transport`], [`Transport::send`]s payloads
//! to peers by node id on a [`Channel`], and reads what its peers sent as
//! [`Inbound`] messages, plus [`PeerEvent`]s about its outbound connections.
//! See [`Transport`] for an example.
//!
//! # Connections
//!
//! Connections are one-directional. A node dials each peer it sends to
//! (lazily, on the first send; then keeps the connection and redials with
//! exponential back-off and jitter, `reconnect_min` to `reconnect_max`) and
//! only writes on it. It only reads on the connections it accepts. Each peer
//! has one connection task owning a bounded queue of `queue_capacity`
//! frames; `send` never waits: a full queue drops the frame, and while the
//! peer is unreachable only the newest `queue_capacity` frames are kept.
//! Delivery is at most once and in order per connection.
//!
//! # Wire format
//!
//! Every frame is a 4-byte big-endian length followed by that many bytes of
//! body (at most `max_frame_bytes`; `tokio_util`'s `LengthDelimitedCodec`).
//! The body is:
//!
//! ```text
//! offset  field
//! 0       version     u8   = 1
//! 1       kind        u8   0 = hello, 1 = protocol, 2 = plugin, 3 = host,
//!                          4 = refusal
//! 2       cluster_id  u16 BE length, then that many bytes of UTF-8
//! .       from        u8 length, then the sender's node id (UTF-8)
//! .       to          u8 length, then the addressee's node id (UTF-8)
//! .       payload     every byte up to the MAC
//! end-32  mac         HMAC-SHA256, keyed with the cluster secret, over
//!                     every preceding byte of the body
//! ```
//!
//! The first frame on a dialled connection is a *hello*: `to` is the peer
//! dialled, the payload the dialler's listen address as text, a space, and
//! its process's random incarnation in hex (e.g. `127.0.0.1:7001
//! 3f2a9c0d11e4b7a5`; later words are ignored, so the hello can grow). The
//! receiver records that address for `from`, so it can answer a peer it did
//! not know (an unspecified IP such as `0.0.0.0` is replaced by the
//! connection's source IP). Every later frame on the connection carries a
//! payload for [`Channel::Protocol`] or [`Channel::Plugin`] and must have
//! the hello's `from`.
//!
//! While a connection from one incarnation of a peer is open, a hello from
//! another incarnation claiming the same id is refused (`claims`): the
//! listener writes one *refusal* frame (the only frame that travels from
//! listener to dialler) and closes; the refused side reports
//! [`PeerEvent::RefusedAsDuplicate`] and the node stops. A peer counts as
//! dead for fast failover only on the evidence described in [`death`].
//!
//! The [`frame`] module encodes and decodes bodies, for tools and tests.
//!
//! # What the receiver checks
//!
//! In this order, for every frame: the length prefix is within
//! `max_frame_bytes` (else `rejected_oversize`); the body decodes with
//! version 1 and a known kind (else `rejected_malformed`); the cluster id is
//! its own (else `rejected_foreign_cluster`); `to` is its node id (else
//! `rejected_misaddressed`); the HMAC verifies, in constant time (else
//! `rejected_unauthenticated`); the first frame is a hello with a parsable
//! address and no later one is (else `rejected_malformed`); `from` is the
//! hello's (else `rejected_misaddressed`). A rejected frame is counted in
//! [`TransportStats`], logged with `tracing::warn!` (fields `peer`, the
//! remote address, and `reason`), and closes its connection; other
//! connections are unaffected. A connection that sends no hello within 5 s
//! is closed too.
//!
//! # Not in scope
//!
//! - **Replay.** The MAC proves a frame was made by a holder of the cluster
//!   secret, not that it is fresh: someone who recorded a connection (its
//!   hello, then its frames) can replay it to the same addressee later. The
//!   election protocol has to tolerate duplicate and stale messages anyway
//!   (terms); preventing replay here would need a nonce or a counter.
//! - **Confidentiality.** Payloads travel in clear; use a private network
//!   or a tunnel if they are secret.
//! - **Per-node keys.** Every node holds the same secret, so any member can
//!   claim any `from`; the hello binds a connection to one sender only
//!   against outsiders.
//! - **Connection limits.** The listener accepts any number of connections;
//!   idle ones are closed only by the hello timeout (and, once
//!   authenticated, by TCP keepalive if their host vanishes).

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod claims;
mod config;
pub mod death;
mod error;
mod event;
pub mod frame;
mod inbound;
mod outbound;
mod shared;
mod stats;
mod transport;

pub use config::{
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_QUEUE_CAPACITY, DEFAULT_RECONNECT_MAX, DEFAULT_RECONNECT_MIN,
    TransportConfig,
};
pub use error::{SendError, TransportError};
pub use event::{Channel, Inbound, PeerEvent};
pub use stats::TransportStats;
pub use transport::{EVENT_CAPACITY, INBOUND_CAPACITY, Transport};
