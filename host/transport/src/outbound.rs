//! One task per peer: dials it, answers its challenge with a hello, signs
//! and writes its queued frames, and redials with back-off when the
//! connection fails.
//!
//! After the challenge, dialled connections are write-only; the task still
//! reads them, to notice at once when the peer closes (EOF) instead of at
//! the next write, and to hear a refusal.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::address::RESOLVE_TIMEOUT;
use crate::backoff::Backoff;
use crate::config::Mode;
use crate::event::PeerEvent;
use crate::frame::FrameKey;
use crate::frame::{self, Kind};
use crate::handshake::{self, ConnectionKeys, Nonce, clip};
use crate::peers::Target;
use crate::shared::{BoxIo, Shared, lock};
use crate::stats::Counters;
use crate::tls::{self, TlsRefusal};

/// How long a TCP connect may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the dialler waits, once connected, for the listener's
/// challenge (a listener writes it as soon as it accepts), or for the TLS
/// handshake to finish.
pub(crate) const DIAL_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one batch of writes may take before the connection is taken
/// for broken (a peer that stopped reading, or a silent network partition).
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most frames written between two flushes.
const BATCH: usize = 64;

/// A payload waiting to be sent. It is signed only when it is written,
/// because the key and the sequence number belong to the connection it
/// goes out on.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// The frame kind of its channel.
    pub kind: Kind,
    /// What the application passed to `send`.
    pub payload: Bytes,
}

/// A dialled, introduced connection.
struct Link {
    framed: Framed<BoxIo, LengthDelimitedCodec>,
    keys: ConnectionKeys,
    /// The sequence number of the next frame to write (the hello was 0).
    next_seq: u64,
}

/// The frames waiting for one peer: the channel `send` feeds, plus the
/// frames taken off it while disconnected.
struct Queue {
    rx: mpsc::Receiver<Outgoing>,
    rx_closed: bool,
    /// While the peer is unreachable the channel is drained into here,
    /// keeping the newest `capacity` frames and dropping (and counting) older
    /// ones: stale heartbeats are worthless, and `send` must never block.
    held: VecDeque<Outgoing>,
    capacity: usize,
}

impl Queue {
    fn hold(&mut self, frame: Outgoing, shared: &Shared) {
        if self.held.len() >= self.capacity {
            self.held.pop_front();
            Counters::add(&shared.stats.dropped_queue_full, 1);
        }
        self.held.push_back(frame);
    }

    /// Runs `fut` to completion while holding whatever is sent meanwhile.
    /// `None` if the transport shuts down first.
    async fn drain_while<F: Future>(&mut self, shared: &Shared, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => return None,
                out = &mut fut => return Some(out),
                frame = self.rx.recv(), if !self.rx_closed => match frame {
                    Some(frame) => self.hold(frame, shared),
                    None => self.rx_closed = true,
                },
            }
        }
    }

    /// The oldest waiting frame; `None` once nothing can ever arrive.
    async fn next(&mut self) -> Option<Outgoing> {
        if let Some(frame) = self.held.pop_front() {
            return Some(frame);
        }
        if self.rx_closed {
            return None;
        }
        self.rx.recv().await
    }

    fn try_next(&mut self) -> Option<Outgoing> {
        self.held.pop_front().or_else(|| self.rx.try_recv().ok())
    }
}

/// How a connection ended.
enum Ended {
    /// Shutdown, or every sender is gone: the task ends.
    Stop,
    /// The connection broke; reconnect.
    Broken(String),
    /// The peer refused this process (another live process holds this
    /// node's id there): reported, and redialled with back-off until the
    /// application stops.
    Refused(String),
}

/// How many times a peer whose long-held connection broke is redialled
/// before the normal back-off, the first at once and the others
/// [`QUICK_REDIAL_DELAY`] apart. A process being killed can still accept a
/// connection for a few milliseconds while the kernel tears it down, and
/// then resets it; a dial after that is refused, and that refusal is the
/// death fast failover waits for (one survivor waiting out the 20 ms
/// back-off instead made the survivors' turns overlap and split the vote).
const QUICK_REDIALS: u32 = 5;

/// The pause between quick redials (see [`QUICK_REDIALS`]).
const QUICK_REDIAL_DELAY: Duration = Duration::from_millis(1);

/// How many redials, besides the quick ones, come at once, without the
/// pause, after a dial the peer accepted and then reset. A dying process's listener
/// resets the connections queued on it as it closes, so the next dial is
/// usually refused at once; the 1 ms pause (1-2 ms on tokio's timer) was
/// most of the spread in which the survivors of a kill saw the death.
const REDIALS_AT_ONCE_AFTER_A_RESET: u32 = 2;

/// The connection task for `peer`, until the transport shuts down.
pub(crate) async fn run(peer: String, shared: Arc<Shared>, rx: mpsc::Receiver<Outgoing>) {
    let mut queue = Queue {
        rx,
        rx_closed: false,
        held: VecDeque::new(),
        capacity: shared.queue_capacity,
    };
    let mut backoff = Backoff::new(shared.reconnect_min, shared.reconnect_max);
    // Quick redials left (see QUICK_REDIALS); granted only when a
    // connection that had held broke.
    let mut quick_redials = 0;
    // Redials at once after a reset still allowed (see
    // REDIALS_AT_ONCE_AFTER_A_RESET).
    let mut at_once = 0;
    // Resolution failures in a row, to warn on the first and then rarely.
    let mut unresolved_streak = 0u32;
    loop {
        let Some(dialled) = queue.drain_while(&shared, connect(&shared, &peer)).await else {
            return;
        };
        // Whether this dial was accepted and then reset.
        let reset;
        match dialled {
            Err(failure) => {
                match &failure.unresolved {
                    Some((name, error)) => {
                        unresolved_streak = unresolved_streak.saturating_add(1);
                        if unresolved_streak.is_power_of_two() {
                            tracing::warn!(%peer, %name, %error, failures = unresolved_streak, "cannot resolve peer's name; retrying with back-off");
                        } else {
                            tracing::debug!(%peer, %name, %error, failures = unresolved_streak, "cannot resolve peer's name");
                        }
                    }
                    None => unresolved_streak = 0,
                }
                tracing::debug!(%peer, reason = %failure.reason, refused = failure.refused, "connect failed");
                // A peer that accepted and then failed the handshake (a
                // process being killed resets what it accepted) keeps the
                // quick redials that lead to the refusal; any other failure
                // ends them.
                if !failure.reached {
                    quick_redials = 0;
                }
                reset = failure.reached;
                // Only a refusal is evidence of death, and only while
                // nothing comes from the peer either (see crate::death);
                // a timeout or a failed hello never is.
                if failure.refused {
                    shared.witness(&peer, |evidence| evidence.dial_refused());
                }
            }
            Ok(link) => {
                reset = false;
                if unresolved_streak > 0 {
                    tracing::info!(%peer, failures = unresolved_streak, "peer's name resolves again");
                    unresolved_streak = 0;
                }
                tracing::debug!(%peer, "connected");
                shared.emit(PeerEvent::Connected { peer: peer.clone() });
                let mut since = Some(Instant::now());
                match pump(&shared, &peer, &mut queue, link).await {
                    Ended::Stop => return,
                    Ended::Broken(reason) => {
                        tracing::info!(%peer, %reason, "connection lost");
                        shared.emit(PeerEvent::Disconnected { peer: peer.clone() });
                    }
                    Ended::Refused(reason) => {
                        tracing::error!(%peer, %reason, "refused as a duplicate of this node");
                        shared.emit(PeerEvent::RefusedAsDuplicate {
                            peer: peer.clone(),
                            reason,
                        });
                        // No quick redials: the back-off paces the retries.
                        quick_redials = 0;
                        since = None;
                    }
                }
                // Only a connection that held resets the back-off (and
                // earns quick redials), so a peer that accepts and at once
                // hangs up is not redialled in a tight loop.
                if let Some(since) = since {
                    if since.elapsed() >= shared.reconnect_max {
                        backoff.reset();
                    }
                    if since.elapsed() >= shared.reconnect_min {
                        quick_redials = QUICK_REDIALS + 1;
                        at_once = REDIALS_AT_ONCE_AFTER_A_RESET;
                    }
                }
            }
        }
        // Extra to the quick redials, so their paced ones stay as many.
        if quick_redials > 1 && reset && at_once > 0 {
            at_once -= 1;
            tokio::task::yield_now().await;
            continue;
        }
        if quick_redials > 0 {
            quick_redials -= 1;
            if quick_redials == QUICK_REDIALS {
                continue;
            }
            if quick_redials > 0 {
                if queue
                    .drain_while(&shared, tokio::time::sleep(QUICK_REDIAL_DELAY))
                    .await
                    .is_none()
                {
                    return;
                }
                continue;
            }
        }
        let delay = backoff.next_delay();
        if queue
            .drain_while(&shared, tokio::time::sleep(delay))
            .await
            .is_none()
        {
            return;
        }
    }
}

/// Why a dial failed, and whether the peer's host refused it (nothing
/// listens on the port) — the only failure that can be evidence of death.
struct DialFailure {
    refused: bool,
    /// The peer's name did not resolve: `(name, error)`, logged with its
    /// own fields and never taken as evidence about the peer's process.
    unresolved: Option<(String, String)>,
    /// The TCP connection was made; the handshake on it failed.
    reached: bool,
    reason: String,
}

impl From<String> for DialFailure {
    /// A failure before the connection was made that proves nothing about
    /// the peer's process.
    fn from(reason: String) -> Self {
        DialFailure {
            refused: false,
            unresolved: None,
            reached: false,
            reason,
        }
    }
}

impl DialFailure {
    /// A failure of the handshake on a connection the peer accepted.
    fn handshake(reason: String) -> Self {
        DialFailure {
            refused: false,
            unresolved: None,
            reached: true,
            reason,
        }
    }
}

/// The addresses `host` resolves to now, or why there are none.
async fn resolve(shared: &Shared, host: &str, port: u16) -> Result<Vec<SocketAddr>, DialFailure> {
    let name = format!("{host}:{port}");
    let failed = |error: String| DialFailure {
        refused: false,
        unresolved: Some((name.clone(), error.clone())),
        reached: false,
        reason: format!("resolving {name}: {error}"),
    };
    match tokio::time::timeout(RESOLVE_TIMEOUT, shared.resolver.resolve(host, port)).await {
        Err(_) => Err(failed(format!("no answer within {RESOLVE_TIMEOUT:?}"))),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Ok(Ok(addrs)) if addrs.is_empty() => Err(failed("no addresses".into())),
        Ok(Ok(addrs)) => Ok(addrs),
    }
}

/// One TCP connect to `addr`, within [`CONNECT_TIMEOUT`].
async fn dial(addr: SocketAddr) -> Result<TcpStream, DialFailure> {
    tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| DialFailure {
            refused: e.kind() == std::io::ErrorKind::ConnectionRefused,
            unresolved: None,
            reached: false,
            reason: format!("connecting to {addr}: {e}"),
        })
}

/// Dials each of a name's addresses in turn (`localhost` may be `::1`
/// and `127.0.0.1`, and the peer listen on one); the first to answer wins.
/// Refused only if every address refused.
async fn dial_first(addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), DialFailure> {
    let mut failures = Vec::new();
    let mut refused = true;
    for &addr in addrs {
        match dial(addr).await {
            Ok(stream) => return Ok((stream, addr)),
            Err(failure) => {
                refused &= failure.refused;
                failures.push(failure.reason);
            }
        }
    }
    Err(DialFailure {
        refused,
        unresolved: None,
        reached: false,
        reason: failures.join("; "),
    })
}

/// Dials `peer` at its current address (resolving its name first, if it
/// has one), reads its challenge and sends the hello ([`crate::handshake`]).
async fn connect(shared: &Shared, peer: &str) -> Result<Link, DialFailure> {
    let target = shared
        .dial_target(peer)
        .ok_or_else(|| "no address known".to_owned())?;
    let (stream, addr) = match target {
        Target::Socket(addr) => (dial(addr).await?, addr),
        Target::Name { host, port } => {
            let addrs = resolve(shared, &host, port).await?;
            let (stream, addr) = dial_first(&addrs).await?;
            shared.learn_peer_addr(peer, addr);
            (stream, addr)
        }
    };
    // A process listens there: any earlier refusal is void, whether or not
    // the handshake that follows works (see crate::death).
    shared.witness(peer, |evidence| {
        evidence.dial_connected();
        false
    });
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let (mut framed, base, challenge) = match &shared.mode {
        Mode::Secret(key) => {
            let io: BoxIo = Box::new(stream);
            let mut framed = Framed::new(io, shared.codec());
            let challenge = read_challenge(shared, key, peer, addr, &mut framed).await?;
            (framed, key.clone(), challenge)
        }
        Mode::Tls(configs) => {
            let configs = lock(configs).clone();
            let secured =
                tokio::time::timeout(DIAL_HANDSHAKE_TIMEOUT, tls::connect(&configs, stream, addr))
                    .await
                    .map_err(|_| {
                        DialFailure::handshake(format!("TLS handshake with {addr} timed out"))
                    })?
                    .map_err(|refusal| match refusal {
                        TlsRefusal::Certificate(why) => refuse_certificate(shared, peer, addr, why),
                        TlsRefusal::Malformed(why) | TlsRefusal::Ended(why) => {
                            DialFailure::handshake(format!("TLS handshake with {addr}: {why}"))
                        }
                    })?;
            let (cluster, node) = &secured.peer;
            if *cluster != shared.cluster_id || node != peer {
                let why = format!(
                    "the certificate names node {:?} of cluster {:?}",
                    clip(node),
                    clip(cluster)
                );
                return Err(refuse_certificate(shared, peer, addr, why));
            }
            let framed = Framed::new(secured.io, shared.codec());
            (framed, secured.base, secured.listener_nonce)
        }
    };
    let nonce = handshake::fresh_nonce();
    let keys = ConnectionKeys::derive(&base, &challenge, &nonce)
        .map_err(|e| format!("cannot derive connection keys: {e}"))?;
    let hello = frame::encode(
        &keys.dialler,
        Kind::Hello,
        &shared.cluster_id,
        &shared.node_id,
        peer,
        0,
        &handshake::hello_payload(&challenge, &nonce, shared.local_addr, shared.incarnation),
    )
    .map_err(|e| format!("cannot encode hello: {e}"))?;
    tokio::time::timeout(WRITE_TIMEOUT, framed.send(hello))
        .await
        .map_err(|_| DialFailure::handshake(format!("hello to {addr} timed out")))?
        .map_err(|e| DialFailure::handshake(format!("hello to {addr}: {e}")))?;
    Ok(Link {
        framed,
        keys,
        next_seq: 1,
    })
}

/// Reads and checks the listener's challenge (shared-secret mode).
async fn read_challenge(
    shared: &Shared,
    key: &FrameKey,
    peer: &str,
    addr: SocketAddr,
    framed: &mut Framed<BoxIo, LengthDelimitedCodec>,
) -> Result<Nonce, DialFailure> {
    let failed = |why: String| DialFailure::handshake(format!("challenge of {addr}: {why}"));
    let body = match tokio::time::timeout(DIAL_HANDSHAKE_TIMEOUT, framed.next()).await {
        Err(_) => return Err(failed("none in time".into())),
        Ok(None) => return Err(failed("closed before it".into())),
        Ok(Some(Err(e))) => return Err(failed(e.to_string())),
        Ok(Some(Ok(body))) => body,
    };
    handshake::check_challenge(key, &shared.cluster_id, peer, &body).map_err(|e| {
        tracing::warn!(%peer, %addr, reason = %e, "refusing the listener's challenge");
        failed(e.to_string())
    })
}

/// Counts and logs a listener's certificate this dialler refused.
fn refuse_certificate(shared: &Shared, peer: &str, addr: SocketAddr, why: String) -> DialFailure {
    Counters::add(&shared.stats.rejected_certificate, 1);
    tracing::warn!(%peer, %addr, reason = %why, "refusing the listener's certificate");
    DialFailure::handshake(format!("certificate of {addr}: {why}"))
}

/// The reason in `body` if it is an authenticated refusal addressed to
/// this node (the listener's last word before it closes a connection; see
/// `inbound::refuse_duplicate`).
fn refusal(shared: &Shared, keys: &ConnectionKeys, body: &[u8]) -> Option<String> {
    let frame = frame::decode(body).ok()?;
    let ours = frame.kind == Kind::Refusal
        && frame.cluster_id == shared.cluster_id
        && frame.to == shared.node_id
        && frame.seq == 0
        && frame.verify(&keys.listener);
    ours.then(|| String::from_utf8_lossy(frame.payload).into_owned())
}

/// Signs and writes queued frames until the connection breaks or the
/// transport stops.
async fn pump(shared: &Shared, peer: &str, queue: &mut Queue, link: Link) -> Ended {
    let Link {
        mut framed,
        keys,
        mut next_seq,
    } = link;
    let mut seal = |out: Outgoing| {
        let body = frame::encode(
            &keys.dialler,
            out.kind,
            &shared.cluster_id,
            &shared.node_id,
            peer,
            next_seq,
            &out.payload,
        );
        if body.is_ok() {
            next_seq += 1;
        }
        body
    };
    loop {
        let first = tokio::select! {
            _ = shared.cancel.cancelled() => return Ended::Stop,
            read = framed.next() => {
                return match read {
                    None => Ended::Broken("closed by peer".to_owned()),
                    Some(Ok(body)) => match refusal(shared, &keys, &body) {
                        Some(reason) => Ended::Refused(reason),
                        None => Ended::Broken("peer wrote on a send-only connection".to_owned()),
                    },
                    Some(Err(e)) => Ended::Broken(e.to_string()),
                };
            }
            frame = queue.next() => match frame {
                Some(frame) => frame,
                None => return Ended::Stop,
            },
        };
        let write = async {
            let mut written = 0u64;
            let mut next = Some(first);
            while let Some(out) = next {
                match seal(out) {
                    Ok(body) => {
                        SinkExt::<Bytes>::feed(&mut framed, body).await?;
                        written += 1;
                    }
                    // Unreachable: ids were validated and sizes checked by
                    // `send`; drop the frame rather than the connection.
                    Err(e) => tracing::warn!(%peer, error = %e, "cannot encode frame; dropped"),
                }
                next = if written < BATCH as u64 {
                    queue.try_next()
                } else {
                    None
                };
            }
            SinkExt::<Bytes>::flush(&mut framed).await?;
            Ok::<u64, std::io::Error>(written)
        };
        let outcome = tokio::select! {
            _ = shared.cancel.cancelled() => return Ended::Stop,
            outcome = tokio::time::timeout(WRITE_TIMEOUT, write) => outcome,
        };
        match outcome {
            Ok(Ok(written)) => Counters::add(&shared.stats.sent, written),
            Ok(Err(e)) => return Ended::Broken(e.to_string()),
            Err(_) => return Ended::Broken("write timed out".to_owned()),
        }
    }
}
