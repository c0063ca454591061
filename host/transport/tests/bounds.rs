//! The listener stays bounded: one source address, one node id, one
//! connection's frame rate, the total of connections.

mod common;

use std::time::Duration;

use common::{
    RawPeer, assert_closed, config, connect_from, drain_until_closed, source, start, stats_until,
    still_prompt, victim_and_friend,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn one_source_cannot_hold_more_than_its_share() {
    let (mut b, a) = victim_and_friend(config("b")).await;
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(connect_from(source(3, 0), b.addr()).await);
    }
    let stats = stats_until(&b.transport, |s| s.refused_max_pending_per_ip == 4).await;
    assert_eq!(stats.pending_handshakes, 8, "{stats:?}");
    // Another source still gets through the handshake.
    let mut other = RawPeer::connect(b.addr(), "m", "b").await;
    other.hello(1).await;
    other.say(b"from another source").await;
    assert_eq!(b.recv().await.payload, b"from another source");
    still_prompt(&a, &mut b, 10, Duration::from_secs(2)).await;
    drop(idle);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_peer_over_the_frame_rate_is_closed() {
    let mut cfg = config("b");
    cfg.max_frames_per_sec = 100;
    cfg.frame_burst = 20;
    let (mut b, a) = victim_and_friend(cfg).await;
    let mut fast = RawPeer::connect(b.addr(), "m", "b").await;
    fast.hello(1).await;
    let mut all = Vec::new();
    for i in 0..500u32 {
        let body = fast.body(tenure_transport::frame::Kind::Protocol, &i.to_be_bytes());
        all.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        all.extend_from_slice(&body);
    }
    let _ = fast.stream.write_all(&all).await;
    drain_until_closed(&mut fast.stream).await;
    let stats = stats_until(&b.transport, |s| s.closed_frame_rate == 1).await;
    // The burst got through (and what the rate refilled meanwhile).
    assert!((21..400).contains(&stats.received), "{stats:?}");
    while b.inbox.try_recv().is_ok() {}
    still_prompt(&a, &mut b, 10, Duration::from_secs(2)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_newer_connection_from_a_node_closes_the_older() {
    let mut b = start(config("b")).await;
    let mut old = RawPeer::connect(b.addr(), "p", "b").await;
    old.hello(1).await;
    old.say(b"old").await;
    assert_eq!(b.recv().await.payload, b"old");
    // The same process again (a reconnection whose old connection lingers).
    let mut new = RawPeer::connect(b.addr(), "p", "b").await;
    new.hello(1).await;
    new.say(b"new").await;
    assert_eq!(b.recv().await.payload, b"new");
    assert_closed(&mut old.stream).await;
    let stats = stats_until(&b.transport, |s| s.closed_superseded == 1).await;
    assert_eq!(stats.open_connections, 1, "{stats:?}");
    new.say(b"still new").await;
    assert_eq!(b.recv().await.payload, b"still new");
    b.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let mut cfg = config("b");
    cfg.max_connections = 3;
    let mut b = start(cfg).await;
    let mut peers = Vec::new();
    for id in ["n1", "n2", "n3"] {
        let mut peer = RawPeer::connect(b.addr(), id, "b").await;
        peer.hello(1).await;
        peer.say(id.as_bytes()).await;
        assert_eq!(b.recv().await.payload, id.as_bytes());
        peers.push(peer);
    }
    let mut fourth = TcpStream::connect(b.addr()).await.unwrap();
    assert_closed(&mut fourth).await;
    let stats = stats_until(&b.transport, |s| s.refused_max_connections == 1).await;
    assert_eq!(stats.open_connections, 3, "{stats:?}");
    // One leaves: there is room again.
    drop(peers.pop());
    stats_until(&b.transport, |s| s.open_connections == 2).await;
    let mut fifth = RawPeer::connect(b.addr(), "n4", "b").await;
    fifth.hello(1).await;
    fifth.say(b"n4").await;
    assert_eq!(b.recv().await.payload, b"n4");
    b.shutdown().await;
}
