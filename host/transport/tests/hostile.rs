//! Bad input on accepted connections: each kind is counted in its own
//! counter, closes only its connection, and the node goes on serving.

mod common;

use common::{CLUSTER, Node, SECRET, WAIT, assert_closed, config, start, stats_until, write_frame};
use tenure_transport::frame::{self, FrameKey, Kind};
use tenure_transport::{Channel, TransportStats};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MAX_FRAME: usize = 4096;

fn key() -> FrameKey {
    FrameKey::new(SECRET).unwrap()
}

/// A body signed with the cluster key.
fn body(kind: Kind, cluster: &str, from: &str, to: &str, payload: &[u8]) -> Vec<u8> {
    frame::encode(&key(), kind, cluster, from, to, payload)
        .unwrap()
        .to_vec()
}

/// A valid hello from `from` to the victim "b".
fn hello(from: &str) -> Vec<u8> {
    body(Kind::Hello, CLUSTER, from, "b", b"127.0.0.1:9")
}

/// Deterministic junk (xorshift), so a failure reproduces.
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// The victim "b" and a good peer "a" that knows it.
async fn victim_and_friend() -> (Node, Node) {
    let mut cfg = config("b");
    cfg.max_frame_bytes = MAX_FRAME;
    let b = start(cfg).await;
    let a = start(config("a")).await;
    a.transport.add_peer("b", b.addr());
    (b, a)
}

/// Sends `bytes` raw on a new connection to `b`, checks that exactly one
/// counter went up by one (the one `counter` reads), that the connection
/// was closed, and that `a` is still served.
async fn assert_rejected(
    b: &mut Node,
    a: &Node,
    frames: &[Vec<u8>],
    raw_tail: &[u8],
    counter: fn(&TransportStats) -> u64,
    what: &str,
) {
    let before = b.transport.stats();
    let mut stream = TcpStream::connect(b.addr()).await.unwrap();
    for f in frames {
        write_frame(&mut stream, f).await;
    }
    if !raw_tail.is_empty() {
        stream.write_all(raw_tail).await.unwrap();
    }
    assert_closed(&mut stream).await;
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

#[tokio::test]
async fn each_bad_frame_is_counted_closed_and_survived() {
    let (mut b, a) = victim_and_friend().await;
    let good_msg = |from: &str| body(Kind::Protocol, CLUSTER, from, "b", b"payload");

    // A wrong MAC: signed with another secret.
    let other_key = FrameKey::new(b"not the cluster secret").unwrap();
    let forged = frame::encode(&other_key, Kind::Protocol, CLUSTER, "m", "b", b"x")
        .unwrap()
        .to_vec();
    assert_rejected(
        &mut b,
        &a,
        &[hello("m"), forged.clone()],
        b"",
        |s| s.rejected_unauthenticated,
        "wrong MAC",
    )
    .await;
    // ... also as the very first frame, and as a forged hello.
    assert_rejected(
        &mut b,
        &a,
        &[forged],
        b"",
        |s| s.rejected_unauthenticated,
        "wrong MAC first",
    )
    .await;
    let mut tampered = hello("m");
    tampered[1] = 1; // turn the hello into a protocol frame after signing
    assert_rejected(
        &mut b,
        &a,
        &[tampered],
        b"",
        |s| s.rejected_unauthenticated,
        "tampered kind",
    )
    .await;

    // Another cluster's id (even when signed with the same secret).
    let foreign = body(Kind::Protocol, "other-cluster", "m", "b", b"x");
    assert_rejected(
        &mut b,
        &a,
        &[hello("m"), foreign],
        b"",
        |s| s.rejected_foreign_cluster,
        "foreign cluster",
    )
    .await;
    let foreign_hello = body(Kind::Hello, "other-cluster", "m", "b", b"127.0.0.1:9");
    assert_rejected(
        &mut b,
        &a,
        &[foreign_hello],
        b"",
        |s| s.rejected_foreign_cluster,
        "foreign hello",
    )
    .await;

    // Addressed to another node.
    let elsewhere = body(Kind::Protocol, CLUSTER, "m", "c", b"x");
    assert_rejected(
        &mut b,
        &a,
        &[hello("m"), elsewhere],
        b"",
        |s| s.rejected_misaddressed,
        "to another node",
    )
    .await;
    let hello_elsewhere = body(Kind::Hello, CLUSTER, "m", "c", b"127.0.0.1:9");
    assert_rejected(
        &mut b,
        &a,
        &[hello_elsewhere],
        b"",
        |s| s.rejected_misaddressed,
        "hello to another node",
    )
    .await;
    // From someone other than the connection's hello.
    assert_rejected(
        &mut b,
        &a,
        &[hello("m"), good_msg("a")],
        b"",
        |s| s.rejected_misaddressed,
        "from mismatch",
    )
    .await;

    // Garbage: a sound length prefix around junk, then junk as the prefix.
    let mut garbage = junk(200, 0x9E37_79B9_7F4A_7C15);
    garbage[0] = 0xFF; // not version 1
    assert_rejected(
        &mut b,
        &a,
        &[garbage],
        b"",
        |s| s.rejected_malformed,
        "garbage body",
    )
    .await;
    assert_rejected(
        &mut b,
        &a,
        &[hello("m"), vec![1]],
        b"",
        |s| s.rejected_malformed,
        "one-byte body",
    )
    .await;
    // Protocol violations of a well-signed peer.
    assert_rejected(
        &mut b,
        &a,
        &[good_msg("m")],
        b"",
        |s| s.rejected_malformed,
        "no hello first",
    )
    .await;
    assert_rejected(
        &mut b,
        &a,
        &[hello("m"), hello("m")],
        b"",
        |s| s.rejected_malformed,
        "second hello",
    )
    .await;
    let bad_addr = body(Kind::Hello, CLUSTER, "m", "b", b"not an address");
    assert_rejected(
        &mut b,
        &a,
        &[bad_addr],
        b"",
        |s| s.rejected_malformed,
        "bad hello address",
    )
    .await;

    // A length prefix above max_frame_bytes (with and without a hello first).
    let oversize = u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes();
    assert_rejected(
        &mut b,
        &a,
        &[],
        &oversize,
        |s| s.rejected_oversize,
        "oversize prefix",
    )
    .await;
    assert_rejected(
        &mut b,
        &a,
        &[hello("m")],
        &u32::MAX.to_be_bytes(),
        |s| s.rejected_oversize,
        "huge prefix",
    )
    .await;

    // Fifteen bad connections, fifteen rejections; only a's fifteen
    // messages were delivered. "m" never got a payload through (its valid
    // hellos did teach b an address, as any member's would).
    let stats = b.transport.stats();
    assert_eq!(stats.received, 15, "{stats:?}");
    assert_eq!(stats.rejected(), 15, "{stats:?}");
    assert_eq!(
        b.transport.peers().get("m"),
        Some(&"127.0.0.1:9".parse().unwrap())
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn random_bytes_never_stop_the_node() {
    let (mut b, a) = victim_and_friend().await;
    for seed in 1..=40u64 {
        let before = b.transport.stats().rejected();
        let mut stream = TcpStream::connect(b.addr()).await.unwrap();
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
        let mut stream = TcpStream::connect(b.addr()).await.unwrap();
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
    let mut half = TcpStream::connect(b.addr()).await.unwrap();
    half.write_all(&100u32.to_be_bytes()).await.unwrap();
    half.write_all(&[1; 50]).await.unwrap();
    let _idle = TcpStream::connect(b.addr()).await.unwrap();

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
