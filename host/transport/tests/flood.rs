//! Floods: idle, slow, dribbling and junk-spewing connections are closed
//! and counted, file descriptors come back, and a legitimate peer's frames
//! keep arriving promptly.
//!
//! Attackers connect from other loopback addresses (127.x.y.1), as they
//! would from other hosts, so the per-address cap does not also catch the
//! legitimate peer on 127.0.0.1. The tests run one at a time (they count
//! this process's file descriptors), and nothing else is in this binary.

mod common;

use std::time::{Duration, Instant};

use common::{
    RawPeer, config, connect_from, connect_raw, drain_until_closed, fd_limit, fds_settle, junk,
    open_fds, source, start, stats_until, still_prompt, victim_and_friend,
};
use tenure_transport::{Channel, TransportStats};
use tokio::io::AsyncWriteExt;

/// One flood at a time, so each counts only its own descriptors.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_are_bounded() {
    let _serial = SERIAL.lock().await;
    let mut cfg = config("b");
    // Long enough that no idle connection times out during the test, so
    // the counts are exact.
    cfg.handshake_timeout = Duration::from_secs(60);
    let (mut b, a) = victim_and_friend(cfg).await;
    let before = open_fds();
    // Each idle connection costs this process one fd (the client end);
    // the listener holds at most max_pending of the other ends.
    let budget = fd_limit().saturating_sub(before + 128 + 200);
    let n = budget.min(1000);
    if n < 1000 {
        println!(
            "fd limit {}: scaled down to {n} idle connections",
            fd_limit()
        );
    }

    // Eight per source address: the per-address cap is not what stops them.
    let mut idle = Vec::with_capacity(n);
    for i in 0..n {
        idle.push(connect_from(source(1, i / 8), b.addr()).await);
    }
    let want = (n - 128) as u64;
    let stats = stats_until(&b.transport, |s| s.refused_max_pending == want).await;
    let during = open_fds();
    assert_eq!(stats.pending_handshakes, 128, "{stats:?}");
    assert_eq!(stats.open_connections, 129, "{stats:?}");
    assert_eq!(stats.refused_max_pending_per_ip, 0, "{stats:?}");

    // The established peer is not disturbed.
    let slowest = still_prompt(&a, &mut b, 100, Duration::from_secs(2)).await;

    // The idle ones go away; so do the listener's fds.
    drop(idle);
    let stats = stats_until(&b.transport, |s| s.pending_handshakes == 0).await;
    assert_eq!(stats.open_connections, 1, "{stats:?}");
    let after = fds_settle(before).await;
    println!(
        "{n} idle connections: fds before {before}, during {during}, after {after}; \
         refused_max_pending {}; slowest frame of the established peer {slowest:?}",
        stats.refused_max_pending
    );
    assert!(during <= before + n + 128 + 16, "{during} fds during");

    // A new peer gets in once the handshakes are gone.
    let c = start(config("c")).await;
    c.transport.add_peer("b", b.addr());
    c.transport
        .send("b", Channel::Protocol, b"new peer".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"new peer");
    c.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn slow_and_dribbling_handshakes_time_out() {
    let _serial = SERIAL.lock().await;
    let mut cfg = config("b");
    cfg.handshake_timeout = Duration::from_millis(300);
    let (mut b, a) = victim_and_friend(cfg).await;
    let before = open_fds();
    let started = Instant::now();

    let mut closers = tokio::task::JoinSet::new();
    // Silent: never read the challenge, never write.
    for i in 0..4 {
        let addr = b.addr();
        closers.spawn(async move {
            let mut stream = connect_from(source(4, i), addr).await;
            drain_until_closed(&mut stream).await;
        });
    }
    // Dribbling: a real hello, or a 64 KiB frame, one byte every 10 ms.
    let hello = RawPeer::connect(b.addr(), "m", "b").await;
    let hello_bytes = {
        let body = hello.hello_body("127.0.0.1:9", 1);
        let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        bytes
    };
    let mut big = (64 * 1024u32 - 64).to_be_bytes().to_vec();
    big.resize(64 * 1024, 0x5A);
    for (mut stream, bytes) in [
        (hello.stream, hello_bytes),
        (connect_raw(b.addr()).await.0, big),
    ] {
        closers.spawn(async move {
            for byte in bytes {
                if stream.write_all(&[byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drain_until_closed(&mut stream).await;
        });
    }
    // Meanwhile the peer is served.
    let slowest = still_prompt(&a, &mut b, 20, Duration::from_secs(2)).await;
    while let Some(done) = closers.join_next().await {
        done.expect("each connection was closed");
    }
    let elapsed = started.elapsed();
    let stats = stats_until(&b.transport, |s| s.closed_handshake_timeout == 6).await;
    assert!(elapsed < Duration::from_secs(5), "closed after {elapsed:?}");
    assert_eq!((stats.rejected(), stats.received), (0, 21), "{stats:?}");
    let after = fds_settle(before).await;
    println!(
        "6 slow handshakes closed within {elapsed:?} (timeout 300 ms); fds before {before}, \
         after {after}; slowest frame of the established peer {slowest:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_bytes_is_refused_while_the_peer_is_served() {
    let _serial = SERIAL.lock().await;
    let (mut b, a) = victim_and_friend(config("b")).await;
    let before = open_fds();
    const FLOODERS: usize = 300;
    let addr = b.addr();
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..FLOODERS {
        flood.spawn(async move {
            let mut stream = connect_from(source(5, i % 30), addr).await;
            // Junk, then junk inside a sound length prefix.
            let mut bytes = junk(4096, i as u64 + 1);
            if i % 2 == 0 {
                bytes[..4].copy_from_slice(&200u32.to_be_bytes());
            }
            let _ = stream.write_all(&bytes).await;
            drain_until_closed(&mut stream).await;
        });
    }
    let slowest = still_prompt(&a, &mut b, 200, Duration::from_secs(2)).await;
    while let Some(done) = flood.join_next().await {
        done.expect("each flooder was closed");
    }
    let total = |s: &TransportStats| s.rejected() + s.refused();
    // Wait for the hello and the 200 prompts to be counted too: one CI run
    // (main at b6c5c41) read `received: 200` here although all 201 had
    // reached the application (a counter read before its increment was
    // seen, or a frame not counted: see the session note). Waiting does
    // not hide a loss — a frame never counted still fails the wait — and
    // the equality below still proves nothing of the flood got through.
    let stats = stats_until(&b.transport, |s| {
        total(s) == FLOODERS as u64 && s.received >= 201
    })
    .await;
    assert_eq!(
        stats.received, 201,
        "nothing of the flood delivered: {stats:?}"
    );
    assert_eq!(stats.closed_handshake_timeout, 0, "{stats:?}");
    let after = fds_settle(before).await;
    println!(
        "{FLOODERS} junk connections: fds before {before}, after {after}; oversize {}, \
         malformed {}, other rejections {}, refused on accept {}; slowest frame {slowest:?}",
        stats.rejected_oversize,
        stats.rejected_malformed,
        stats.rejected() - stats.rejected_oversize - stats.rejected_malformed,
        stats.refused_max_pending + stats.refused_max_pending_per_ip
    );
    assert_eq!(stats.open_connections, 1, "{stats:?}");
    a.shutdown().await;
    b.shutdown().await;
}
