//! The listener: accepts connections and checks every frame read on them.
//!
//! Accepted connections are read-only: this node never writes on them.
//! Each is served by its own task, so a bad or slow connection never holds
//! up another. Anything wrong with a frame is counted, logged with
//! `tracing::warn!` (fields `peer` = remote address, `reason`) and closes
//! that connection; the sender will reconnect if it is a real peer.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, LengthDelimitedCodecError};

use crate::claims::Duplicate;
use crate::event::{Channel, Inbound, PeerEvent};
use crate::frame::{self, Kind};
use crate::shared::{Shared, lock, log_join};
use crate::stats::Counters;

/// How long a new connection may take to say hello before it is closed, so
/// idle sockets cannot pile up.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts connections until cancelled, then waits for their tasks.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut connections = JoinSet::new();
    loop {
        while let Some(done) = connections.try_join_next() {
            log_join(done, "inbound connection");
        }
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                tracing::debug!(peer = %remote, "accepted connection");
                keep_alive(&stream, remote);
                connections.spawn(serve(stream, remote, shared.clone(), inbound.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = shared.cancel.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    drop(listener);
    while let Some(done) = connections.join_next().await {
        log_join(done, "inbound connection");
    }
}

/// Turns TCP keepalive on for an accepted connection, so one whose host
/// vanished (no reset ever comes) ends within seconds and stops holding
/// its peer's claim ([`crate::claims::KEEPALIVE`]).
fn keep_alive(stream: &TcpStream, remote: SocketAddr) {
    let k = &crate::claims::KEEPALIVE;
    let params = socket2::TcpKeepalive::new()
        .with_time(k.idle)
        .with_interval(k.interval)
        .with_retries(k.retries);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&params) {
        tracing::warn!(peer = %remote, error = %e, "cannot set TCP keepalive");
    }
}

/// Why a frame (and so its connection) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    Malformed(String),
    Oversize,
    ForeignCluster(String),
    Misaddressed(String),
    Unauthenticated,
    /// Another live process already speaks for that node id here.
    DuplicateId(String),
}

impl Rejection {
    fn counter<'a>(&self, stats: &'a Counters) -> &'a AtomicU64 {
        match self {
            Rejection::Malformed(_) => &stats.rejected_malformed,
            Rejection::Oversize => &stats.rejected_oversize,
            Rejection::ForeignCluster(_) => &stats.rejected_foreign_cluster,
            Rejection::Misaddressed(_) => &stats.rejected_misaddressed,
            Rejection::Unauthenticated => &stats.rejected_unauthenticated,
            Rejection::DuplicateId(_) => &stats.rejected_duplicate_id,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed(why) => write!(f, "malformed: {why}"),
            Rejection::Oversize => f.write_str("length prefix above max_frame_bytes"),
            Rejection::ForeignCluster(id) => write!(f, "foreign cluster {id:?}"),
            Rejection::Misaddressed(why) => write!(f, "misaddressed: {why}"),
            Rejection::Unauthenticated => f.write_str("bad HMAC"),
            Rejection::DuplicateId(why) => write!(f, "duplicate node id: {why}"),
        }
    }
}

/// A frame that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// The connection's introduction: who is sending, where it listens,
    /// and which process it is (its incarnation; 0 from builds before it
    /// was sent).
    Hello {
        from: String,
        listen: SocketAddr,
        incarnation: u64,
    },
    /// A payload from the peer that said hello.
    Message(Inbound),
}

/// Checks one frame body read from `remote`. `hello_from` is the sender
/// named by the connection's hello, once there was one. The checks run
/// in the order the counters are documented: structure and version, cluster
/// id, addressee, MAC, then the connection's protocol (hello first, once,
/// and every later frame from the same sender).
pub(crate) fn check(
    shared: &Shared,
    remote: SocketAddr,
    hello_from: Option<&str>,
    body: &[u8],
) -> Result<Accepted, Rejection> {
    let frame = frame::decode(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if frame.cluster_id != shared.cluster_id {
        return Err(Rejection::ForeignCluster(clip(frame.cluster_id)));
    }
    if frame.to != shared.node_id {
        return Err(Rejection::Misaddressed(format!(
            "addressed to {:?}",
            clip(frame.to)
        )));
    }
    if !frame.verify(&shared.key) {
        return Err(Rejection::Unauthenticated);
    }
    if frame.kind == Kind::Refusal {
        return Err(Rejection::Malformed("a refusal sent to a listener".into()));
    }
    match (Channel::from_kind(frame.kind), hello_from) {
        (None, None) => {
            let (listen, incarnation) = hello_payload(frame.payload, remote)?;
            Ok(Accepted::Hello {
                from: frame.from.to_owned(),
                listen,
                incarnation,
            })
        }
        (None, Some(_)) => Err(Rejection::Malformed("second hello on a connection".into())),
        (Some(_), None) => Err(Rejection::Malformed(format!(
            "{:?} frame before hello",
            frame.kind
        ))),
        (Some(channel), Some(sender)) => {
            if frame.from != sender {
                return Err(Rejection::Misaddressed(format!(
                    "from {:?} on a connection introduced by {:?}",
                    clip(frame.from),
                    clip(sender)
                )));
            }
            Ok(Accepted::Message(Inbound {
                from: frame.from.to_owned(),
                channel,
                payload: frame.payload.to_vec(),
            }))
        }
    }
}

/// Parses a hello's payload: the dialler's listen address as text, then
/// (after a space) its incarnation in hex; further space-separated words
/// are ignored, so later versions can add to the hello. An unspecified IP
/// (it listens on every interface) is replaced by the IP the connection
/// came from.
fn hello_payload(payload: &[u8], remote: SocketAddr) -> Result<(SocketAddr, u64), Rejection> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| Rejection::Malformed("hello address is not UTF-8".into()))?;
    let mut words = text.split(' ');
    let text = words.next().unwrap_or_default();
    let incarnation = match words.next() {
        None => 0,
        Some(word) => u64::from_str_radix(word, 16).map_err(|_| {
            Rejection::Malformed(format!("hello incarnation {:?} is not hex", clip(word)))
        })?,
    };
    let mut addr: SocketAddr = text.parse().map_err(|_| {
        Rejection::Malformed(format!("hello address {:?} does not parse", clip(text)))
    })?;
    if addr.port() == 0 {
        return Err(Rejection::Malformed(format!(
            "hello address {text:?} has port 0"
        )));
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(remote.ip());
    }
    Ok((addr, incarnation))
}

/// At most 64 characters of a peer-supplied string, for a log line: a
/// foreign cluster id or a hello address may be up to a frame long. Reasons
/// print it with `{:?}`, which escapes control characters.
fn clip(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// What reading the next frame produced.
enum Read {
    Frame(BytesMut),
    Eof,
    Rejected(Rejection),
    Failed(String),
}

async fn read_frame(
    frames: &mut FramedRead<TcpStream, tokio_util::codec::LengthDelimitedCodec>,
    hello_pending: bool,
) -> Read {
    let next = if hello_pending {
        match tokio::time::timeout(HELLO_TIMEOUT, frames.next()).await {
            Ok(next) => next,
            Err(_) => return Read::Failed("no hello in time".into()),
        }
    } else {
        frames.next().await
    };
    match next {
        None => Read::Eof,
        Some(Ok(body)) => Read::Frame(body),
        Some(Err(e)) => {
            let oversize = e
                .get_ref()
                .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>());
            if oversize {
                Read::Rejected(Rejection::Oversize)
            } else {
                // Socket errors, and EOF in the middle of a frame (a peer
                // that died mid-write): not a protocol violation to count.
                Read::Failed(e.to_string())
            }
        }
    }
}

/// Serves one accepted connection until it ends, is refused, or the
/// transport shuts down. Dropping the stream closes the connection.
async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut frames = FramedRead::new(stream, shared.codec());
    let mut hello_from: Option<String> = None;
    // Counts this connection as the peer's while it is open, however the
    // task ends (see crate::death).
    let mut _counted: Option<OpenFrom> = None;
    loop {
        let read = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            read = read_frame(&mut frames, hello_from.is_none()) => read,
        };
        let body = match read {
            Read::Frame(body) => body,
            Read::Eof => {
                tracing::debug!(peer = %remote, "connection closed by peer");
                return;
            }
            Read::Rejected(rejection) => return reject(&shared, remote, &rejection),
            Read::Failed(reason) => {
                tracing::debug!(peer = %remote, %reason, "connection ended");
                return;
            }
        };
        match check(&shared, remote, hello_from.as_deref(), &body) {
            Err(rejection) => return reject(&shared, remote, &rejection),
            Ok(Accepted::Hello {
                from,
                listen,
                incarnation,
            }) => {
                // The claim first: a duplicate's hello must not move the
                // peer's address to the duplicate.
                match OpenFrom::new(&shared, &from, incarnation, remote) {
                    Ok(open) => _counted = Some(open),
                    Err(duplicate) => {
                        let notice = refuse_duplicate(&shared, &from, &duplicate);
                        // Tell the refused process why, so it stops.
                        let mut stream = frames.into_inner();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            write_notice(&mut stream, notice),
                        )
                        .await;
                        return;
                    }
                }
                if shared.set_peer_addr(&from, listen) != Some(listen) {
                    tracing::info!(peer = %from, addr = %listen, "learned peer address from hello");
                }
                hello_from = Some(from);
            }
            Ok(Accepted::Message(message)) => {
                // Await room in the inbound channel rather than drop: the
                // application is the only consumer, and while it lags the
                // socket stops being read, TCP pushes back, and the
                // *sender's* bounded queue drops frames and counts them (its
                // oldest while the peer is unreachable), so nothing is lost
                // silently here and memory stays bounded. Each connection has
                // its own task, so one paused reader never blocks accepting
                // or the other connections beyond what the shared consumer
                // already imposes; shutdown still interrupts the wait.
                let delivered = tokio::select! {
                    _ = shared.cancel.cancelled() => return,
                    sent = inbound.send(message) => sent.is_ok(),
                };
                if delivered {
                    Counters::add(&shared.stats.received, 1);
                }
                // If the application dropped its receiver, keep draining the
                // connection so the sender is not disconnected in a loop.
            }
        }
    }
}

/// An authenticated connection from a peer: its incarnation's claim on the
/// peer's node id ([`crate::claims`]), and one open connection in the
/// peer's [`DeathEvidence`](crate::death::DeathEvidence), until dropped.
struct OpenFrom {
    shared: Arc<Shared>,
    peer: String,
    incarnation: u64,
}

impl OpenFrom {
    fn new(
        shared: &Arc<Shared>,
        peer: &str,
        incarnation: u64,
        remote: SocketAddr,
    ) -> Result<OpenFrom, Duplicate> {
        lock(&shared.claims).open(peer, incarnation, remote)?;
        shared.witness(peer, |evidence| {
            evidence.inbound_opened();
            false
        });
        Ok(OpenFrom {
            shared: Arc::clone(shared),
            peer: peer.to_owned(),
            incarnation,
        })
    }
}

impl Drop for OpenFrom {
    fn drop(&mut self) {
        lock(&self.shared.claims).close(&self.peer, self.incarnation);
        self.shared
            .witness(&self.peer, |evidence| evidence.inbound_closed());
    }
}

/// Refuses the hello of a second live process claiming `peer`'s node id:
/// counted, logged as an error once per process (an operator must act),
/// reported to the application; returns the signed refusal to send it
/// before the connection closes.
fn refuse_duplicate(shared: &Shared, peer: &str, duplicate: &Duplicate) -> Option<bytes::Bytes> {
    let (held, held_from) = duplicate.holder;
    let (refused, refused_from) = duplicate.refused;
    let rejection = Rejection::DuplicateId(format!(
        "process {refused:016x} at {refused_from} claims node id {peer:?}, which process \
         {held:016x} at {held_from} holds"
    ));
    Counters::add(rejection.counter(&shared.stats), 1);
    if lock(&shared.claims).first_refusal(peer, refused) {
        tracing::error!(
            %peer,
            holder = %held_from,
            refused = %refused_from,
            "two live processes claim one node id; refusing the newer (a copied config, or a \
             node started twice?)"
        );
        shared.emit(PeerEvent::DuplicateId {
            peer: peer.to_owned(),
        });
    }
    let reason = format!(
        "{} already hears a live process as node {peer:?} (from {held_from}); this one \
         (from {refused_from}) must stop",
        shared.node_id
    );
    frame::encode(
        &shared.key,
        Kind::Refusal,
        &shared.cluster_id,
        &shared.node_id,
        peer,
        reason.as_bytes(),
    )
    .ok()
}

/// Writes a refusal frame (length-prefixed, as every frame) on a dialled
/// connection the listener is about to close.
async fn write_notice(stream: &mut TcpStream, notice: Option<bytes::Bytes>) {
    use tokio::io::AsyncWriteExt as _;
    let Some(body) = notice else { return };
    let Ok(len) = u32::try_from(body.len()) else {
        return;
    };
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(&body);
    let _ = stream.write_all(&bytes).await;
    let _ = stream.flush().await;
}

fn reject(shared: &Shared, remote: SocketAddr, rejection: &Rejection) {
    Counters::add(rejection.counter(&shared.stats), 1);
    tracing::warn!(peer = %remote, reason = %rejection, "rejected frame; closing connection");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameKey, Kind};
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use tokio_util::sync::CancellationToken;

    const SECRET: &[u8] = b"inbound-test-secret";

    fn shared() -> Shared {
        let (events, _) = mpsc::channel(1);
        Shared {
            node_id: "me".into(),
            cluster_id: "c".into(),
            key: FrameKey::new(SECRET).unwrap(),
            local_addr: "127.0.0.1:1".parse().unwrap(),
            max_frame_bytes: 4096,
            queue_capacity: 4,
            reconnect_min: Duration::from_millis(1),
            reconnect_max: Duration::from_millis(2),
            peers: Mutex::new(BTreeMap::new()),
            evidence: Mutex::new(BTreeMap::new()),
            incarnation: 1,
            claims: Mutex::new(crate::claims::Claims::default()),
            stats: Counters::default(),
            events,
            cancel: CancellationToken::new(),
        }
    }

    fn body(kind: Kind, cluster: &str, from: &str, to: &str, payload: &[u8]) -> bytes::Bytes {
        frame::encode(
            &FrameKey::new(SECRET).unwrap(),
            kind,
            cluster,
            from,
            to,
            payload,
        )
        .unwrap()
    }

    const REMOTE: &str = "10.1.2.3:5555";

    #[test]
    fn peer_strings_are_clipped_for_logs() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(clip(&long), format!("{}...", "é".repeat(64)));
    }

    #[test]
    fn hello_then_messages() {
        let s = shared();
        let remote = REMOTE.parse().unwrap();
        let hello = body(Kind::Hello, "c", "p", "me", b"0.0.0.0:7000");
        assert_eq!(
            check(&s, remote, None, &hello),
            Ok(Accepted::Hello {
                from: "p".into(),
                listen: "10.1.2.3:7000".parse().unwrap(),
                incarnation: 0,
            })
        );
        // This build's hellos add the incarnation; later words are ignored.
        let hello = body(Kind::Hello, "c", "p", "me", b"0.0.0.0:7000 00ff later=1");
        assert!(matches!(
            check(&s, remote, None, &hello),
            Ok(Accepted::Hello {
                incarnation: 255,
                ..
            })
        ));
        let bad = body(Kind::Hello, "c", "p", "me", b"0.0.0.0:7000 zz");
        assert!(matches!(
            check(&s, remote, None, &bad),
            Err(Rejection::Malformed(_))
        ));
        let msg = body(Kind::Plugin, "c", "p", "me", b"x");
        assert!(matches!(
            check(&s, remote, Some("p"), &msg),
            Ok(Accepted::Message(Inbound {
                channel: Channel::Plugin,
                ..
            }))
        ));
    }

    #[test]
    fn each_rejection_has_its_reason() {
        let s = shared();
        let remote = REMOTE.parse().unwrap();
        let msg = body(Kind::Protocol, "c", "p", "me", b"x");
        assert!(matches!(
            check(&s, remote, None, &msg),
            Err(Rejection::Malformed(_))
        ));
        let hello = body(Kind::Hello, "c", "p", "me", b"127.0.0.1:1");
        assert!(matches!(
            check(&s, remote, Some("p"), &hello),
            Err(Rejection::Malformed(_))
        ));
        let bad_addr = body(Kind::Hello, "c", "p", "me", b"nowhere");
        assert!(matches!(
            check(&s, remote, None, &bad_addr),
            Err(Rejection::Malformed(_))
        ));
        let other_sender = body(Kind::Protocol, "c", "q", "me", b"x");
        assert!(matches!(
            check(&s, remote, Some("p"), &other_sender),
            Err(Rejection::Misaddressed(_))
        ));
        let foreign = body(Kind::Protocol, "d", "p", "me", b"x");
        assert!(matches!(
            check(&s, remote, Some("p"), &foreign),
            Err(Rejection::ForeignCluster(_))
        ));
        let elsewhere = body(Kind::Protocol, "c", "p", "you", b"x");
        assert!(matches!(
            check(&s, remote, Some("p"), &elsewhere),
            Err(Rejection::Misaddressed(_))
        ));
        let mut forged = msg.to_vec();
        if let Some(last) = forged.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            check(&s, remote, Some("p"), &forged),
            Err(Rejection::Unauthenticated)
        );
    }
}
