//! What the listener checks in each frame read on an accepted connection.
//!
//! Pure functions over bytes and the connection's state: no sockets, so
//! every refusal is unit-tested here. The order of the checks is the one
//! the crate documentation gives under "What the receiver checks".

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

use crate::event::{Channel, Inbound};
use crate::frame::{self, FrameKey, Kind};
use crate::handshake::{self, ConnectionKeys, Nonce, clip};
use crate::stats::Counters;

/// Why a frame (and so its connection) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    Malformed(String),
    Oversize,
    ForeignCluster(String),
    Misaddressed(String),
    Unauthenticated,
    /// A frame made by a member, but not for this moment: a hello answering
    /// another connection's challenge, or a sequence number out of turn.
    Replayed(String),
    /// Another live process already speaks for that node id here.
    DuplicateId(String),
    /// Mutual TLS: the peer's certificate was refused, or does not name the
    /// sender a frame claims to be.
    Certificate(String),
}

impl Rejection {
    /// The counter this rejection goes up in.
    pub fn counter<'a>(&self, stats: &'a Counters) -> &'a AtomicU64 {
        match self {
            Rejection::Malformed(_) => &stats.rejected_malformed,
            Rejection::Oversize => &stats.rejected_oversize,
            Rejection::ForeignCluster(_) => &stats.rejected_foreign_cluster,
            Rejection::Misaddressed(_) => &stats.rejected_misaddressed,
            Rejection::Unauthenticated => &stats.rejected_unauthenticated,
            Rejection::Replayed(_) => &stats.rejected_replayed,
            Rejection::DuplicateId(_) => &stats.rejected_duplicate_id,
            Rejection::Certificate(_) => &stats.rejected_certificate,
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
            Rejection::Replayed(why) => write!(f, "replayed: {why}"),
            Rejection::DuplicateId(why) => write!(f, "duplicate node id: {why}"),
            Rejection::Certificate(why) => write!(f, "certificate: {why}"),
        }
    }
}

/// Who this node is, as the checks need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Me<'a> {
    pub node_id: &'a str,
    pub cluster_id: &'a str,
}

/// A hello that passed every check: who is sending, where it listens,
/// which process it is, and the keys of the connection it opened.
#[derive(Debug, Clone)]
pub(crate) struct Hello {
    pub from: String,
    pub listen: SocketAddr,
    /// The sender's process ([`crate::claims`]).
    pub incarnation: u64,
    pub keys: ConnectionKeys,
}

/// An introduced connection: whose frames it carries and which sequence
/// number comes next.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub from: String,
    pub keys: ConnectionKeys,
    pub next_seq: u64,
    /// `from` is the node the peer's TLS certificate names, so another
    /// `from` is a certificate refusal, not just a misaddressed frame.
    pub certified: bool,
}

impl Session {
    /// The connection `hello` opened; the hello itself was number 0.
    pub fn new(hello: &Hello, certified: bool) -> Session {
        Session {
            from: hello.from.clone(),
            keys: hello.keys.clone(),
            next_seq: 1,
            certified,
        }
    }
}

/// Decodes a body and checks what every frame shares: structure and
/// version, the cluster id, the addressee.
fn addressed<'a>(me: Me<'_>, body: &'a [u8]) -> Result<frame::Frame<'a>, Rejection> {
    let frame = frame::decode(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if frame.cluster_id != me.cluster_id {
        return Err(Rejection::ForeignCluster(clip(frame.cluster_id)));
    }
    if frame.to != me.node_id {
        return Err(Rejection::Misaddressed(format!(
            "addressed to {:?}",
            clip(frame.to)
        )));
    }
    Ok(frame)
}

/// Checks the first frame of a connection from `remote`: it must be a
/// hello answering this connection's `challenge`, MAC'd with the key that
/// `base` (the cluster secret, or the TLS session's key) and the two
/// nonces derive, with sequence number 0.
pub(crate) fn check_hello(
    me: Me<'_>,
    remote: SocketAddr,
    base: &FrameKey,
    challenge: &Nonce,
    body: &[u8],
) -> Result<Hello, Rejection> {
    let frame = addressed(me, body)?;
    if frame.kind != Kind::Hello {
        return Err(Rejection::Malformed(format!(
            "{:?} frame before hello",
            frame.kind
        )));
    }
    let (echo, nonce, text) = handshake::split_hello(frame.payload)
        .ok_or_else(|| Rejection::Malformed("hello too short for its nonces".into()))?;
    let keys = ConnectionKeys::derive(base, &echo, &nonce)
        .map_err(|e| Rejection::Malformed(format!("cannot derive keys: {e}")))?;
    if !frame.verify(&keys.dialler) {
        return Err(Rejection::Unauthenticated);
    }
    // Signed by a member for the nonce it echoes: if that is not this
    // connection's, it was recorded elsewhere and played back.
    if echo != *challenge {
        return Err(Rejection::Replayed(
            "hello answers another connection's challenge".into(),
        ));
    }
    if frame.seq != 0 {
        return Err(Rejection::Replayed(format!(
            "hello has sequence number {}, not 0",
            frame.seq
        )));
    }
    let (listen, incarnation) = hello_text(text, remote)?;
    Ok(Hello {
        from: frame.from.to_owned(),
        listen,
        incarnation,
        keys,
    })
}

/// Checks a frame after the hello: MAC'd with the connection's dialler
/// key, the next sequence number, a message kind, from the hello's sender.
/// Advances the session's sequence number when it passes.
pub(crate) fn check_message(
    me: Me<'_>,
    session: &mut Session,
    body: &[u8],
) -> Result<Inbound, Rejection> {
    let frame = addressed(me, body)?;
    if !frame.verify(&session.keys.dialler) {
        return Err(Rejection::Unauthenticated);
    }
    if frame.seq != session.next_seq {
        return Err(Rejection::Replayed(format!(
            "sequence number {} where {} was due",
            frame.seq, session.next_seq
        )));
    }
    let Some(channel) = Channel::from_kind(frame.kind) else {
        return Err(Rejection::Malformed(match frame.kind {
            Kind::Hello => "second hello on a connection".into(),
            other => format!("a {other:?} frame sent to a listener"),
        }));
    };
    if frame.from != session.from {
        let why = format!(
            "from {:?} on a connection introduced by {:?}",
            clip(frame.from),
            clip(&session.from)
        );
        return Err(if session.certified {
            Rejection::Certificate(why)
        } else {
            Rejection::Misaddressed(why)
        });
    }
    session.next_seq += 1;
    Ok(Inbound {
        from: frame.from.to_owned(),
        channel,
        payload: frame.payload.to_vec(),
    })
}

/// Parses the text of a hello: the dialler's listen address, then (after a
/// space) its incarnation in hex; further space-separated words are
/// ignored, so later versions can add to the hello. An unspecified IP (it
/// listens on every interface) is replaced by the IP the connection came
/// from.
fn hello_text(text: &[u8], remote: SocketAddr) -> Result<(SocketAddr, u64), Rejection> {
    let text = std::str::from_utf8(text)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::hello_payload;

    const SECRET: &[u8] = b"check-test-secret-16+";
    const ME: Me<'static> = Me {
        node_id: "me",
        cluster_id: "c",
    };
    const CHALLENGE: Nonce = [7; 32];
    const NONCE: Nonce = [8; 32];

    fn secret() -> FrameKey {
        FrameKey::new(SECRET).unwrap()
    }

    fn keys() -> ConnectionKeys {
        ConnectionKeys::derive(&secret(), &CHALLENGE, &NONCE).unwrap()
    }

    fn remote() -> SocketAddr {
        "10.1.2.3:5555".parse().unwrap()
    }

    fn hello_text_body(echo: &Nonce, text: &[u8], seq: u64) -> bytes::Bytes {
        let mut payload = echo.to_vec();
        payload.extend_from_slice(&NONCE);
        payload.extend_from_slice(text);
        let keys = ConnectionKeys::derive(&secret(), echo, &NONCE).unwrap();
        frame::encode(&keys.dialler, Kind::Hello, "c", "p", "me", seq, &payload).unwrap()
    }

    fn message(
        key: &FrameKey,
        kind: Kind,
        cluster: &str,
        from: &str,
        to: &str,
        seq: u64,
    ) -> bytes::Bytes {
        frame::encode(key, kind, cluster, from, to, seq, b"x").unwrap()
    }

    fn hello_from(text: &[u8]) -> Result<Hello, Rejection> {
        check_hello(
            ME,
            remote(),
            &secret(),
            &CHALLENGE,
            &hello_text_body(&CHALLENGE, text, 0),
        )
    }

    #[test]
    fn hello_then_messages() {
        let hello = hello_from(b"0.0.0.0:7000").unwrap();
        assert_eq!(
            (hello.from.as_str(), hello.listen, hello.incarnation),
            ("p", "10.1.2.3:7000".parse().unwrap(), 0)
        );
        // Hellos add the incarnation; later words are ignored.
        let hello = hello_from(b"0.0.0.0:7000 00ff later=1").unwrap();
        assert_eq!(hello.incarnation, 255);
        assert!(matches!(
            hello_from(b"0.0.0.0:7000 zz"),
            Err(Rejection::Malformed(_))
        ));
        let payload = hello_payload(&CHALLENGE, &NONCE, "127.0.0.1:9".parse().unwrap(), 3);
        let body =
            frame::encode(&keys().dialler, Kind::Hello, "c", "p", "me", 0, &payload).unwrap();
        let hello = check_hello(ME, remote(), &secret(), &CHALLENGE, &body).unwrap();
        assert_eq!(hello.incarnation, 3);

        let mut session = Session::new(&hello, false);
        for seq in 1..=3 {
            let body = message(&keys().dialler, Kind::Plugin, "c", "p", "me", seq);
            let got = check_message(ME, &mut session, &body).unwrap();
            assert_eq!((got.channel, got.from.as_str()), (Channel::Plugin, "p"));
        }
        assert_eq!(session.next_seq, 4);
    }

    #[test]
    fn replays_are_told_from_forgeries() {
        // A hello made (by a member) for another connection's challenge.
        let stale = hello_text_body(&[1; 32], b"127.0.0.1:9", 0);
        assert!(matches!(
            check_hello(ME, remote(), &secret(), &CHALLENGE, &stale),
            Err(Rejection::Replayed(_))
        ));
        // The same, signed with another secret: a forgery.
        let forged_keys = ConnectionKeys::derive(
            &FrameKey::new(b"not the cluster secret").unwrap(),
            &CHALLENGE,
            &NONCE,
        )
        .unwrap();
        let payload = hello_payload(&CHALLENGE, &NONCE, "127.0.0.1:9".parse().unwrap(), 3);
        let forged = frame::encode(
            &forged_keys.dialler,
            Kind::Hello,
            "c",
            "p",
            "me",
            0,
            &payload,
        )
        .unwrap();
        assert_eq!(
            check_hello(ME, remote(), &secret(), &CHALLENGE, &forged).unwrap_err(),
            Rejection::Unauthenticated
        );
        assert!(matches!(
            check_hello(
                ME,
                remote(),
                &secret(),
                &CHALLENGE,
                &hello_text_body(&CHALLENGE, b"127.0.0.1:9", 1)
            ),
            Err(Rejection::Replayed(_))
        ));

        // On the connection: a repeated number, a skipped one.
        let hello = hello_from(b"127.0.0.1:9").unwrap();
        let mut session = Session::new(&hello, false);
        let first = message(&keys().dialler, Kind::Protocol, "c", "p", "me", 1);
        assert!(check_message(ME, &mut session, &first).is_ok());
        assert!(matches!(
            check_message(ME, &mut session, &first),
            Err(Rejection::Replayed(_))
        ));
        let skipped = message(&keys().dialler, Kind::Protocol, "c", "p", "me", 3);
        assert!(matches!(
            check_message(ME, &mut session, &skipped),
            Err(Rejection::Replayed(_))
        ));
        // Signed with the secret itself (v1 style) or another connection's key.
        let old_style = message(&secret(), Kind::Protocol, "c", "p", "me", 2);
        assert_eq!(
            check_message(ME, &mut session, &old_style),
            Err(Rejection::Unauthenticated)
        );
    }

    #[test]
    fn a_certified_sender_cannot_change_its_name() {
        let hello = hello_from(b"127.0.0.1:1").unwrap();
        let mut session = Session::new(&hello, true);
        let other = message(&keys().dialler, Kind::Protocol, "c", "q", "me", 1);
        assert!(matches!(
            check_message(ME, &mut session, &other),
            Err(Rejection::Certificate(_))
        ));
    }

    #[test]
    fn each_rejection_has_its_reason() {
        let k = keys().dialler;
        let hello_first = |body: &[u8]| check_hello(ME, remote(), &secret(), &CHALLENGE, body);
        assert!(matches!(
            hello_first(&message(&k, Kind::Protocol, "c", "p", "me", 0)),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            hello_first(&message(&k, Kind::Hello, "c", "p", "me", 0)),
            Err(Rejection::Malformed(_)),
        ));
        assert!(matches!(
            hello_from(b"nowhere"),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            hello_from(b"127.0.0.1:0"),
            Err(Rejection::Malformed(_))
        ));

        let hello = hello_from(b"127.0.0.1:1").unwrap();
        let mut session = Session::new(&hello, false);
        let mut check = |body: bytes::Bytes| check_message(ME, &mut session, &body);
        assert!(matches!(
            check(hello_text_body(&CHALLENGE, b"127.0.0.1:1", 1)),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            check(message(&k, Kind::Protocol, "c", "q", "me", 1)),
            Err(Rejection::Misaddressed(_))
        ));
        assert!(matches!(
            check(message(&k, Kind::Protocol, "d", "p", "me", 1)),
            Err(Rejection::ForeignCluster(_))
        ));
        assert!(matches!(
            check(message(&k, Kind::Protocol, "c", "p", "you", 1)),
            Err(Rejection::Misaddressed(_))
        ));
        assert!(matches!(
            check(message(&k, Kind::Refusal, "c", "p", "me", 1)),
            Err(Rejection::Malformed(_))
        ));
        let mut forged = message(&k, Kind::Protocol, "c", "p", "me", 1).to_vec();
        if let Some(last) = forged.last_mut() {
            *last ^= 1;
        }
        assert_eq!(check(forged.into()), Err(Rejection::Unauthenticated));
    }
}
