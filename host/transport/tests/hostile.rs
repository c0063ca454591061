//! Bad input on accepted connections: each kind is counted in its own
//! counter, closes only its connection, and the node goes on serving.

mod common;

use common::{
    CLUSTER, Node, RawPeer, SECRET, WAIT, assert_closed, config, connect_raw, junk, start,
    stats_until, write_frame,
};
use tenure_transport::frame::{self, FrameKey, Kind};
use tenure_transport::handshake::ConnectionKeys;
use tenure_transport::{Channel, TransportStats};
use tokio::io::AsyncWriteExt;

const MAX_FRAME: usize = 4096;

/// The victim "b" and a good peer "a" that knows it.
async fn victim_and_friend() -> (Node, Node) {
    let mut cfg = config("b");
    cfg.max_frame_bytes = MAX_FRAME;
    let b = start(cfg).await;
    let a = start(config("a")).await;
    a.transport.add_peer("b", b.addr());
    (b, a)
}

/// What a test writes on a connection once it has the challenge: whole
/// frame bodies, then raw bytes.
type Script = (Vec<Vec<u8>>, Vec<u8>);

/// Runs `script` on a new connection to `b` as node "m", checks that
/// exactly one counter went up by one (the one `counter` reads), that the
/// connection was closed, and that `a` is still served.
async fn assert_rejected(
    b: &mut Node,
    a: &Node,
    script: impl FnOnce(&mut RawPeer) -> Script,
    counter: fn(&TransportStats) -> u64,
    what: &str,
) {
    let before = b.transport.stats();
    let mut peer = RawPeer::connect(b.addr(), "m", "b").await;
    let (frames, raw_tail) = script(&mut peer);
    for f in &frames {
        write_frame(&mut peer.stream, f).await;
    }
    if !raw_tail.is_empty() {
        peer.stream.write_all(&raw_tail).await.unwrap();
    }
    assert_closed(&mut peer.stream).await;
    let after = stats_until(&b.transport, |s| s.rejected() > before.rejected()).await;
    assert_eq!(counter(&after), counter(&before) + 1, "{what}: {after:?}");
    assert_eq!(after.rejected(), before.rejected() + 1, "{what}: {after:?}");
    assert_eq!(after.received, before.received, "{what}: nothing delivered");

    // The good peer still gets through.
    let payload = format!("still served after {what}").into_bytes();
    a.transport
        .send("b", Channel::Protocol, payload.clone())
        .unwrap();
    let got = b.recv().await;
    assert_eq!((got.from.as_str(), got.payload), ("a", payload), "{what}");
}

/// A hello, then `then`.
fn after_hello(p: &mut RawPeer, then: Vec<u8>) -> Script {
    (vec![p.hello_body("127.0.0.1:9", 1), then], Vec::new())
}

/// A frame of this connection but for `cluster`, `from` and `to`.
fn signed(p: &mut RawPeer, kind: Kind, cluster: &str, from: &str, to: &str) -> Vec<u8> {
    let body = frame::encode(&p.keys.dialler, kind, cluster, from, to, p.seq, b"x");
    p.seq += 1;
    body.unwrap().to_vec()
}

#[tokio::test]
async fn each_bad_frame_is_counted_closed_and_survived() {
    let (mut b, a) = victim_and_friend().await;
    let unauthenticated = |s: &TransportStats| s.rejected_unauthenticated;
    let malformed = |s: &TransportStats| s.rejected_malformed;
    let misaddressed = |s: &TransportStats| s.rejected_misaddressed;
    let foreign = |s: &TransportStats| s.rejected_foreign_cluster;
    let replayed = |s: &TransportStats| s.rejected_replayed;

    // A wrong MAC: signed with the cluster secret itself (as version 1
    // did), or with the keys another secret derives.
    let old_style = |p: &mut RawPeer| {
        let key = FrameKey::new(SECRET).unwrap();
        let body = frame::encode(&key, Kind::Protocol, CLUSTER, "m", "b", 1, b"x");
        after_hello(p, body.unwrap().to_vec())
    };
    assert_rejected(
        &mut b,
        &a,
        old_style,
        unauthenticated,
        "secret-signed frame",
    )
    .await;
    let forged_hello = |p: &mut RawPeer| {
        let other = FrameKey::new(b"not the cluster secret").unwrap();
        p.keys = ConnectionKeys::derive(&other, &p.challenge, &p.nonce).unwrap();
        (vec![p.hello_body("127.0.0.1:9", 1)], Vec::new())
    };
    assert_rejected(&mut b, &a, forged_hello, unauthenticated, "forged hello").await;
    let tampered = |p: &mut RawPeer| {
        let mut body = p.body(Kind::Protocol, b"x");
        body[1] = Kind::Plugin.to_byte(); // after signing
        after_hello(p, body)
    };
    assert_rejected(&mut b, &a, tampered, unauthenticated, "tampered kind").await;

    // Replays: a hello made for another connection's challenge; a frame
    // repeated on its own connection.
    let recorded = RawPeer::connect(b.addr(), "m", "b").await;
    let old_hello = recorded.hello_body("127.0.0.1:9", 1);
    drop(recorded);
    let replay = move |_: &mut RawPeer| (vec![old_hello], Vec::new());
    assert_rejected(&mut b, &a, replay, replayed, "replayed hello").await;
    let repeat = |p: &mut RawPeer| {
        let msg = p.body(Kind::Protocol, b"x");
        (
            vec![p.hello_body("127.0.0.1:9", 1), msg.clone(), msg],
            Vec::new(),
        )
    };
    // (The first copy is delivered; only the repeat is refused.)
    let before = b.transport.stats().received;
    assert_rejected_after_one(&mut b, &a, repeat, replayed, before).await;

    // Another cluster's id (even when signed with the right key).
    let foreign_msg = |p: &mut RawPeer| {
        let body = signed(p, Kind::Protocol, "other-cluster", "m", "b");
        after_hello(p, body)
    };
    assert_rejected(&mut b, &a, foreign_msg, foreign, "foreign cluster").await;
    let foreign_hello = |p: &mut RawPeer| {
        let mut body = p.hello_body("127.0.0.1:9", 1);
        body[4] ^= 0x20; // the cluster id's first letter, in another case
        (vec![body], Vec::new())
    };
    assert_rejected(&mut b, &a, foreign_hello, foreign, "foreign hello").await;

    // Addressed to another node; from someone other than the hello's.
    let elsewhere = |p: &mut RawPeer| {
        let body = signed(p, Kind::Protocol, CLUSTER, "m", "c");
        after_hello(p, body)
    };
    assert_rejected(&mut b, &a, elsewhere, misaddressed, "to another node").await;
    let hello_elsewhere = |p: &mut RawPeer| {
        p.to = "c".into();
        (vec![p.hello_body("127.0.0.1:9", 1)], Vec::new())
    };
    assert_rejected(
        &mut b,
        &a,
        hello_elsewhere,
        misaddressed,
        "hello to another node",
    )
    .await;
    let other_sender = |p: &mut RawPeer| {
        let body = signed(p, Kind::Protocol, CLUSTER, "a", "b");
        after_hello(p, body)
    };
    assert_rejected(&mut b, &a, other_sender, misaddressed, "from mismatch").await;

    // Garbage: a sound length prefix around junk.
    let garbage = |_: &mut RawPeer| {
        let mut body = junk(200, 0x9E37_79B9_7F4A_7C15);
        body[0] = 0xFF; // not version 2
        (vec![body], Vec::new())
    };
    assert_rejected(&mut b, &a, garbage, malformed, "garbage body").await;
    let one_byte = |p: &mut RawPeer| after_hello(p, vec![2]);
    assert_rejected(&mut b, &a, one_byte, malformed, "one-byte body").await;
    // Protocol violations of a well-keyed peer.
    let no_hello = |p: &mut RawPeer| (vec![p.body(Kind::Protocol, b"x")], Vec::new());
    assert_rejected(&mut b, &a, no_hello, malformed, "no hello first").await;
    let second_hello = |p: &mut RawPeer| {
        let again = signed(p, Kind::Hello, CLUSTER, "m", "b");
        after_hello(p, again)
    };
    assert_rejected(&mut b, &a, second_hello, malformed, "second hello").await;
    let bad_addr = |p: &mut RawPeer| {
        let mut payload = p.challenge.to_vec();
        payload.extend_from_slice(&p.nonce);
        payload.extend_from_slice(b"not an address");
        let body = frame::encode(&p.keys.dialler, Kind::Hello, CLUSTER, "m", "b", 0, &payload);
        (vec![body.unwrap().to_vec()], Vec::new())
    };
    assert_rejected(&mut b, &a, bad_addr, malformed, "bad hello address").await;

    // A length prefix above max_frame_bytes (with and without a hello first).
    let oversize = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes().to_vec();
    let prefix = move |_: &mut RawPeer| (Vec::new(), oversize);
    assert_rejected(
        &mut b,
        &a,
        prefix,
        |s| s.rejected_oversize,
        "oversize prefix",
    )
    .await;
    let huge = |p: &mut RawPeer| {
        (
            vec![p.hello_body("127.0.0.1:9", 1)],
            u32::MAX.to_be_bytes().to_vec(),
        )
    };
    assert_rejected(&mut b, &a, huge, |s| s.rejected_oversize, "huge prefix").await;

    // Seventeen bad connections, seventeen rejections; a's seventeen
    // messages and the repeated frame's first copy were delivered. "m"
    // never got anything else through (its valid hellos did teach b an
    // address, as any member's would).
    let stats = b.transport.stats();
    assert_eq!(stats.received, 18, "{stats:?}");
    assert_eq!(stats.rejected(), 17, "{stats:?}");
    assert_eq!(
        b.transport.peers().get("m"),
        Some(&"127.0.0.1:9".parse().unwrap())
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// [`assert_rejected`] for a script whose first message is delivered
/// before the connection is refused.
async fn assert_rejected_after_one(
    b: &mut Node,
    a: &Node,
    script: impl FnOnce(&mut RawPeer) -> Script,
    counter: fn(&TransportStats) -> u64,
    received_before: u64,
) {
    let before = counter(&b.transport.stats());
    let mut peer = RawPeer::connect(b.addr(), "m", "b").await;
    let (frames, _) = script(&mut peer);
    for f in &frames {
        write_frame(&mut peer.stream, f).await;
    }
    assert_closed(&mut peer.stream).await;
    assert_eq!(b.recv().await.payload, b"x", "the first copy");
    let after = stats_until(&b.transport, |s| counter(s) > before).await;
    assert_eq!(counter(&after), before + 1, "{after:?}");
    assert_eq!(after.received, received_before + 1, "{after:?}");
    a.transport
        .send("b", Channel::Protocol, b"still served".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"still served");
}

#[tokio::test]
async fn random_bytes_never_stop_the_node() {
    let (mut b, a) = victim_and_friend().await;
    for seed in 1..=40u64 {
        let before = b.transport.stats().rejected();
        let (mut stream, _) = connect_raw(b.addr()).await;
        // Raw junk: its first four bytes are a (likely huge) length prefix.
        let mut bytes = junk(64 + seed as usize * 7, seed);
        bytes[0] = 0xF0; // make the prefix oversize, so the node must react at once
        stream.write_all(&bytes).await.unwrap();
        assert_closed(&mut stream).await;
        stats_until(&b.transport, |s| s.rejected() == before + 1).await;
    }
    assert_eq!(b.transport.stats().rejected_oversize, 40);

    // Junk inside sound length prefixes: rejected as malformed, foreign,
    // misaddressed or unauthenticated, never delivered.
    for seed in 41..=80u64 {
        let before = b.transport.stats().rejected();
        let (mut stream, _) = connect_raw(b.addr()).await;
        write_frame(&mut stream, &junk(seed as usize, seed)).await;
        assert_closed(&mut stream).await;
        stats_until(&b.transport, |s| s.rejected() == before + 1).await;
    }
    assert_eq!(b.transport.stats().received, 0);

    a.transport
        .send("b", Channel::Plugin, b"alive".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"alive");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_does_not_hold_up_others() {
    let (mut b, a) = victim_and_friend().await;
    // Connections that never finish a frame: a prefix with half a body,
    // and one that sends nothing.
    let (mut half, _) = connect_raw(b.addr()).await;
    half.write_all(&100u32.to_be_bytes()).await.unwrap();
    half.write_all(&[1; 50]).await.unwrap();
    let _idle = tokio::net::TcpStream::connect(b.addr()).await.unwrap();

    a.transport
        .send("b", Channel::Protocol, b"through".to_vec())
        .unwrap();
    let got = tokio::time::timeout(WAIT, b.recv()).await.unwrap();
    assert_eq!(got.payload, b"through");

    // Shutdown is not held up by them either.
    a.shutdown().await;
    b.shutdown().await;
    assert_closed(&mut half).await;
}
