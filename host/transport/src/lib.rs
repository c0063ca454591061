//! Tenure's network transport: frames, authenticates and routes opaque
//! payloads between the nodes of a cluster over TCP, with a shared secret
//! (HMAC, the default) or mutual TLS.
//!
//! The election protocol above encodes its own messages; this crate only
//! moves them. A node starts a [`Transport`], [`Transport::send`]s payloads
//! to peers by node id on a [`Channel`], and reads what its peers sent as
//! [`Inbound`] messages, plus [`PeerEvent`]s about its outbound connections.
//! See [`Transport`] for an example.
//!
//! # Layout
//!
//! - [`transport`](Transport) — the handle: start, send, stats, reload;
//!   `config` ([`TransportConfig`], [`Security`]), `error`, `event`,
//!   `stats` ([`TransportStats`]).
//! - `outbound` — one task per peer: dial, handshake, sign and write,
//!   redial with `backoff`; `address` ([`PeerAddr`], [`Resolve`]) and
//!   `peers` — where each peer is, by IP or by name re-resolved on every
//!   dial.
//! - `accept` — the accept loop and its admission; `inbound` — one
//!   accepted connection; `check` — the pure checks of each frame;
//!   `limits` — the listener's bounds.
//! - [`faults`] — a test-only delay and loss layer for received messages.
//! - [`frame`] — the body format; [`handshake`] — nonces, per-connection
//!   keys, challenges and hellos.
//! - [`tls`] — mutual-TLS mode; [`san`] — how a certificate names a node;
//!   [`certs`] — making a cluster CA and node certificates.
//! - `claims` and [`death`] — one live process per node id, and when a
//!   peer counts as dead.
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
//! 0       version     u8   = 2
//! 1       kind        u8   0 = hello, 1 = protocol, 2 = plugin, 3 = host,
//!                          4 = refusal, 5 = challenge
//! 2       cluster_id  u16 BE length, then that many bytes of UTF-8
//! .       from        u8 length, then the sender's node id (UTF-8)
//! .       to          u8 length, then the addressee's node id (UTF-8)
//! .       seq         u64 BE, the frame's number on its connection
//! .       payload     every byte up to the MAC
//! end-32  mac         HMAC-SHA256 over every preceding byte of the body,
//!                     keyed with the connection's key (see below)
//! ```
//!
//! A connection opens with a handshake ([`handshake`] has the details and
//! the reasons):
//!
//! 1. the listener writes a *challenge*: `to` empty, `seq` 0, a fresh
//!    random 32-byte nonce as payload, MAC'd with the cluster secret;
//! 2. the dialler checks it (its `from` must be the node it dialled) and
//!    writes a *hello*: `to` the peer dialled, `seq` 0, the payload the
//!    listener's nonce (echoed), the dialler's own fresh nonce, then as
//!    text its listen address, a space, and its process's random
//!    incarnation in hex (e.g. `127.0.0.1:7001 3f2a9c0d11e4b7a5`; later
//!    words are ignored, so the hello can grow);
//! 3. the hello and every later frame the dialler writes are MAC'd with a
//!    key derived from the secret and both nonces, and numbered 1, 2, ...
//!    after the hello's 0. The dialler writes its first frames right after
//!    the hello, without waiting, so the handshake costs one round trip
//!    (the challenge) over plain TCP's.
//!
//! The receiver records the hello's address for `from`, so it can answer a
//! peer it did not know (an unspecified IP such as `0.0.0.0` is replaced
//! by the connection's source IP). A peer configured by name
//! ([`PeerAddr::Name`]) is still dialled by its name, resolved afresh on
//! every connection: a hello's address never pins a peer that moves. Every later frame carries a payload for
//! a [`Channel`] and must have the hello's `from`.
//!
//! While a connection from one incarnation of a peer is open, a hello from
//! another incarnation claiming the same id is refused (`claims`): the
//! listener writes one *refusal* frame (MAC'd with the connection's
//! listener key, `seq` 0) and closes; the refused side reports
//! [`PeerEvent::RefusedAsDuplicate`] and the node stops. The challenge and
//! the refusal are the only frames that travel from listener to dialler. A
//! peer counts as dead for fast failover only on the evidence described in
//! [`death`].
//!
//! The [`frame`] module encodes and decodes bodies, and [`handshake`]
//! builds challenges and hellos, for tools and tests.
//!
//! # What the receiver checks
//!
//! In this order, for every frame: the length prefix is within
//! `max_frame_bytes` (else `rejected_oversize`); the body decodes with
//! version 2 and a known kind (else `rejected_malformed`); the cluster id is
//! its own (else `rejected_foreign_cluster`); `to` is its node id (else
//! `rejected_misaddressed`); the first frame is a hello (else
//! `rejected_malformed`); the HMAC verifies under the connection's key, in
//! constant time (else `rejected_unauthenticated`); the hello echoes this
//! connection's challenge, and the frame's sequence number is the next one
//! (else `rejected_replayed`); the hello's address parses and no later
//! frame is a hello (else `rejected_malformed`); `from` is the hello's
//! (else `rejected_misaddressed`). A rejected frame is counted in
//! [`TransportStats`], logged with `tracing::warn!` (fields `peer`, the
//! remote address, and `reason`), and closes its connection; other
//! connections are unaffected.
//!
//! # Bounds
//!
//! The listener keeps what an attacker can hold bounded ([`TransportConfig`]
//! has the knobs and their defaults; [`TransportStats`] counts each):
//!
//! - at most `max_connections` accepted connections (256) and, of those,
//!   `max_pending` (128) still in their handshake, `max_pending_per_ip`
//!   (8) from one source; a connection beyond a cap is closed at once
//!   (`refused_max_connections`, `refused_max_pending`,
//!   `refused_max_pending_per_ip`);
//! - the whole handshake, from accept to a checked hello, within
//!   `handshake_timeout` (2 s), however slowly the bytes come
//!   (`closed_handshake_timeout`);
//! - `max_connections_per_node` (1) authenticated connections per node id:
//!   a newer one closes the oldest (`closed_superseded`), so a peer that
//!   reconnects is never locked out by its own stale connection;
//! - `max_frames_per_sec` (5,000) per connection, with bursts of
//!   `frame_burst` (2,000) (`closed_frame_rate`).
//!
//! These closures are logged with `tracing::warn!` at most once a second
//! (fields `peer`, `reason`, `suppressed`), so a flood does not become a
//! flood of log lines. The gauges `open_connections` and
//! `pending_handshakes` show the listener's load.
//!
//! # Mutual TLS
//!
//! With `security` set to [`Security::MutualTls`], every connection is TLS
//! 1.3 (rustls with the `ring` provider). Each node's certificate is signed
//! by the cluster CA and names the node with one URI SAN,
//! `tenure://<cluster>/<node-id>` (percent-encoded; see [`san`]); [`certs`]
//! makes them. The listener checks that the dialler's certificate chains to
//! the CA, is within its validity dates, names this cluster, and that the
//! hello's `from` (and so every frame's) is the certificate's node id; the
//! dialler checks that the listener's certificate names the node it meant
//! to dial, so a forged or stale address cannot redirect its traffic.
//! Refusals are counted in `rejected_certificate` and logged. There is no
//! challenge frame: the hello's nonce and the connection's keys come from
//! the TLS session ([`handshake`]), so a fresh connection costs the TLS
//! handshake and nothing more. [`Transport::reload_tls`] swaps the
//! identity for new connections without a restart.
//!
//! # Not in scope
//!
//! - **Confidentiality, in shared-secret mode.** Payloads travel in clear;
//!   use mutual TLS, a private network or a tunnel if they are secret.
//! - **Per-node keys, in shared-secret mode.** Every node holds the same
//!   secret, so any member can claim any `from`; the hello binds a
//!   connection to one sender only against outsiders. Mutual TLS binds it
//!   to the sender's certificate.
//! - **Revocation.** Certificates are not checked against a CRL or OCSP;
//!   keep their validity short and rotate them with
//!   [`Transport::reload_tls`], or replace the CA.
//! - **Slow members.** Once authenticated, a connection is trusted to
//!   finish the frames it starts: a member that dribbles a frame holds its
//!   one connection (and up to `max_frame_bytes` of buffer) until TCP
//!   keepalive or its next frame. The bounds above are against
//!   connections that never authenticate, or authenticate and flood.
//! - **New connections under a flood.** While an attacker keeps
//!   `max_pending` handshakes open from many addresses, a peer's *new*
//!   connection can be refused on accept until one times out; established
//!   connections are never affected.
//!
//! Replay *is* in scope since wire version 2: a recorded hello or frame
//! played back, on a new connection or on its own, is refused and counted
//! in `rejected_replayed` (or, for a recorded frame spliced after a fresh
//! hello, in `rejected_unauthenticated`); see [`handshake`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod accept;
mod address;
mod backoff;
pub mod certs;
mod check;
mod claims;
mod config;
pub mod death;
mod error;
mod event;
pub mod faults;
pub mod frame;
pub mod handshake;
mod inbound;
mod limits;
mod outbound;
mod peers;
pub mod san;
mod shared;
mod stats;
pub mod tls;
mod transport;

pub use address::{PeerAddr, PeerAddrError, RESOLVE_TIMEOUT, Resolution, Resolve, SystemResolver};
pub use config::{
    DEFAULT_FRAME_BURST, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_NODE, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAMES_PER_SEC,
    DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_PER_IP, DEFAULT_QUEUE_CAPACITY, DEFAULT_RECONNECT_MAX,
    DEFAULT_RECONNECT_MIN, Security, TransportConfig,
};
pub use error::{SendError, TransportError};
pub use event::{Channel, Inbound, PeerEvent};
pub use stats::TransportStats;
pub use tls::{TlsError, TlsIdentity};
pub use transport::{EVENT_CAPACITY, INBOUND_CAPACITY, Transport};
