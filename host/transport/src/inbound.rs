//! One accepted connection: the handshake, then every frame read on it.
//!
//! The listener writes on an accepted connection only twice at most: its
//! challenge, first (in shared-secret mode), and a refusal just before it closes the connection on
//! a duplicate node id. Each connection is served by its own task, so a
//! bad or slow connection never holds up another. Anything wrong with a
//! frame is counted, logged with `tracing::warn!` (fields `peer` = remote
//! address, `reason`) and closes that connection; the sender will
//! reconnect if it is a real peer. The checks themselves are in
//! [`crate::check`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LengthDelimitedCodecError};

use crate::check::{self, Hello, Me, Rejection, Session};
use crate::claims::Duplicate;
use crate::config::Mode;
use crate::event::{Inbound, PeerEvent};
use crate::frame::{self, Kind};
use crate::handshake::{self, clip};
use crate::limits::{FrameRate, Ticket};
use crate::shared::{BoxIo, Shared, lock, write_body};
use crate::stats::Counters;
use crate::tls::{self, TlsRefusal};

/// How long the listener spends telling a refused duplicate why.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(1);

type Frames = FramedRead<BoxIo, LengthDelimitedCodec>;

/// What reading the next frame produced.
enum Read {
    Frame(BytesMut),
    Eof,
    Rejected(Rejection),
    Failed(String),
}

async fn read_frame(frames: &mut Frames) -> Read {
    match frames.next().await {
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

/// How a handshake ended without a hello.
enum NoHello {
    /// A frame broke the rules: counted and logged.
    Rejected(Rejection),
    /// The connection ended or failed: nothing to count.
    Ended(String),
}

impl From<Rejection> for NoHello {
    fn from(rejection: Rejection) -> Self {
        NoHello::Rejected(rejection)
    }
}

/// An introduced connection: its frames, its hello, and whether its
/// sender is bound by a TLS certificate.
struct Opened {
    frames: Frames,
    hello: Hello,
    certified: bool,
}

/// The listener's side of the handshake ([`crate::handshake`]): writes the
/// challenge (or runs the TLS handshake), then reads and checks the hello.
async fn handshake(
    stream: TcpStream,
    remote: SocketAddr,
    shared: &Shared,
) -> Result<Opened, NoHello> {
    let (io, base, challenge, certified) = match &shared.mode {
        Mode::Secret(key) => {
            let mut io: BoxIo = Box::new(stream);
            let nonce = handshake::fresh_nonce();
            let challenge = handshake::challenge(key, &shared.cluster_id, &shared.node_id, &nonce)
                .map_err(|e| NoHello::Ended(format!("cannot encode the challenge: {e}")))?;
            write_body(&mut io, &challenge)
                .await
                .map_err(|e| NoHello::Ended(format!("writing the challenge: {e}")))?;
            (io, key.clone(), nonce, None)
        }
        Mode::Tls(configs) => {
            let configs = lock(configs).clone();
            let secured = tls::accept(&configs, stream)
                .await
                .map_err(|refusal| match refusal {
                    TlsRefusal::Certificate(why) => NoHello::Rejected(Rejection::Certificate(why)),
                    TlsRefusal::Malformed(why) => NoHello::Rejected(Rejection::Malformed(why)),
                    TlsRefusal::Ended(why) => NoHello::Ended(why),
                })?;
            let (cluster, node) = secured.peer;
            if cluster != shared.cluster_id {
                return Err(Rejection::Certificate(format!(
                    "the certificate names cluster {:?}",
                    clip(&cluster)
                ))
                .into());
            }
            (secured.io, secured.base, secured.listener_nonce, Some(node))
        }
    };
    let mut frames = FramedRead::new(io, shared.codec());
    let body = match read_frame(&mut frames).await {
        Read::Frame(body) => body,
        Read::Eof => return Err(NoHello::Ended("closed by peer before hello".into())),
        Read::Rejected(rejection) => return Err(rejection.into()),
        Read::Failed(reason) => return Err(NoHello::Ended(reason)),
    };
    let hello = check::check_hello(me(shared), remote, &base, &challenge, &body)?;
    if let Some(node) = &certified
        && hello.from != *node
    {
        return Err(Rejection::Certificate(format!(
            "hello from {:?}, but the certificate names {:?}",
            clip(&hello.from),
            clip(node)
        ))
        .into());
    }
    Ok(Opened {
        frames,
        hello,
        certified: certified.is_some(),
    })
}

fn me(shared: &Shared) -> Me<'_> {
    Me {
        node_id: &shared.node_id,
        cluster_id: &shared.cluster_id,
    }
}

/// Serves one accepted connection until it ends, is refused, or the
/// transport shuts down. Dropping the stream closes the connection, and
/// dropping the ticket gives its place back to the admission.
pub(crate) async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Inbound>,
    mut ticket: Ticket,
) {
    let opened = tokio::select! {
        _ = shared.cancel.cancelled() => return,
        opened = tokio::time::timeout(shared.handshake_timeout, handshake(stream, remote, &shared)) => opened,
    };
    let Opened {
        mut frames,
        hello,
        certified,
    } = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(NoHello::Rejected(rejection))) => return reject(&shared, remote, None, &rejection),
        Ok(Err(NoHello::Ended(reason))) => {
            tracing::debug!(peer = %remote, %reason, "connection ended before hello");
            return;
        }
        Err(_) => {
            Counters::add(&shared.stats.closed_handshake_timeout, 1);
            shared.warn_bounds(remote, "no hello within handshake_timeout");
            return;
        }
    };
    // The claim first: a duplicate's hello must not move the peer's
    // address to the duplicate. It counts this connection as the peer's
    // while it is open, however the task ends (see crate::death).
    let _counted = match OpenFrom::new(&shared, &hello.from, hello.incarnation, remote) {
        Ok(open) => open,
        Err(duplicate) => {
            let notice = refuse_duplicate(&shared, &hello, &duplicate);
            // Tell the refused process why, so it stops.
            if let Some(notice) = notice {
                let _ = tokio::time::timeout(NOTICE_TIMEOUT, write_body(frames.get_mut(), &notice))
                    .await;
            }
            return;
        }
    };
    ticket.authenticated();
    let node = NodeConnection::open(&shared, &hello.from);
    if shared.learn_peer_addr(&hello.from, hello.listen) != Some(hello.listen) {
        tracing::info!(peer = %hello.from, addr = %hello.listen, "learned peer address from hello");
    }
    let mut session = Session::new(&hello, certified);
    let mut rate = FrameRate::new(
        shared.max_frames_per_sec,
        shared.frame_burst,
        Instant::now(),
    );
    loop {
        let read = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = node.superseded.cancelled() => {
                Counters::add(&shared.stats.closed_superseded, 1);
                tracing::info!(peer = %remote, node = %session.from, "closing a connection superseded by a newer one from the same node");
                return;
            }
            read = read_frame(&mut frames) => read,
        };
        let body = match read {
            Read::Frame(body) if !rate.allow(Instant::now()) => {
                drop(body);
                Counters::add(&shared.stats.closed_frame_rate, 1);
                shared.warn_bounds(remote, "over max_frames_per_sec");
                return;
            }
            Read::Frame(body) => body,
            Read::Eof => {
                tracing::debug!(peer = %remote, node = %session.from, "connection closed by peer");
                return;
            }
            Read::Rejected(rejection) => {
                return reject(&shared, remote, Some(&session.from), &rejection);
            }
            Read::Failed(reason) => {
                tracing::debug!(peer = %remote, node = %session.from, %reason, "connection ended");
                return;
            }
        };
        let message = match check::check_message(me(&shared), &mut session, &body) {
            Ok(message) => message,
            Err(rejection) => return reject(&shared, remote, Some(&session.from), &rejection),
        };
        // Await room in the inbound channel rather than drop: the
        // application is the only consumer, and while it lags the socket
        // stops being read, TCP pushes back, and the *sender's* bounded
        // queue drops frames and counts them (its oldest while the peer is
        // unreachable), so nothing is lost silently here and memory stays
        // bounded. Each connection has its own task, so one paused reader
        // never blocks accepting or the other connections beyond what the
        // shared consumer already imposes; shutdown still interrupts the
        // wait.
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

/// An authenticated connection's place among its node's connections
/// ([`crate::limits::NodeConnections`]), until dropped.
struct NodeConnection {
    shared: Arc<Shared>,
    node: String,
    id: u64,
    /// Cancelled when a newer connection from the node takes this one's place.
    superseded: tokio_util::sync::CancellationToken,
}

impl NodeConnection {
    fn open(shared: &Arc<Shared>, node: &str) -> NodeConnection {
        let (id, superseded) = lock(&shared.nodes).open(node, shared.max_connections_per_node);
        NodeConnection {
            shared: Arc::clone(shared),
            node: node.to_owned(),
            id,
            superseded,
        }
    }
}

impl Drop for NodeConnection {
    fn drop(&mut self) {
        lock(&self.shared.nodes).close(&self.node, self.id);
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
/// reported to the application; returns the refusal to send it before
/// the connection closes, signed with the connection's listener key.
fn refuse_duplicate(shared: &Shared, hello: &Hello, duplicate: &Duplicate) -> Option<bytes::Bytes> {
    let peer = hello.from.as_str();
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
        &hello.keys.listener,
        Kind::Refusal,
        &shared.cluster_id,
        &shared.node_id,
        peer,
        0,
        reason.as_bytes(),
    )
    .ok()
}

/// Counts and logs a rejected frame; `node` is the sender the connection's
/// hello named, once there was one.
fn reject(shared: &Shared, remote: SocketAddr, node: Option<&str>, rejection: &Rejection) {
    Counters::add(rejection.counter(&shared.stats), 1);
    match node {
        Some(node) => tracing::warn!(
            peer = %remote,
            node = %clip(node),
            reason = %rejection,
            "rejected frame; closing connection"
        ),
        None => {
            tracing::warn!(peer = %remote, reason = %rejection, "rejected frame; closing connection")
        }
    }
}
