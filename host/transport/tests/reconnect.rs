//! Peer death and restart: events, back-off, and reconnection to a new
//! process on the same address.

mod common;

use std::time::Duration;

use common::{config, start};
use tenure_transport::{Channel, PeerEvent};

#[tokio::test]
async fn a_dead_peer_is_reported_and_redialled_when_it_returns() {
    // b's first life picks a free port; its second life reuses it.
    let b = start(config("b")).await;
    let b_addr = b.addr();
    let mut a = start(config("a")).await;
    a.transport.add_peer("b", b_addr);

    let mut b = b;
    a.transport
        .send("b", Channel::Protocol, b"before".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"before");
    assert_eq!(
        a.event(|_| true).await,
        PeerEvent::Connected { peer: "b".into() }
    );

    b.shutdown().await;
    // Keep b's port refused, and out of other tests' hands, while it is down.
    let (reserved, _) = common::reserve(b_addr);

    // a notices the close at once (it reads its dialled connection for EOF),
    // then fails to redial.
    assert_eq!(
        a.event(|_| true).await,
        PeerEvent::Disconnected { peer: "b".into() }
    );
    for i in 0..5u8 {
        // Sends while b is down are queued, never blocking.
        a.transport.send("b", Channel::Protocol, vec![i]).unwrap();
    }
    assert_eq!(
        a.event(|_| true).await,
        PeerEvent::Unreachable { peer: "b".into() }
    );
    // Redials keep failing without repeating the event for every attempt.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        a.events.try_recv().is_err(),
        "one Unreachable per streak of failures"
    );

    // b comes back on the same address: a reconnects and delivers what it
    // kept while b was down, then new frames.
    let mut b_config = config("b");
    b_config.listen = b_addr;
    let mut b = start(b_config).await;
    drop(reserved);
    assert_eq!(
        a.event(|_| true).await,
        PeerEvent::Connected { peer: "b".into() }
    );
    for i in 0..5u8 {
        let got = b.recv().await;
        assert_eq!((got.from.as_str(), got.payload), ("a", vec![i]));
    }
    a.transport
        .send("b", Channel::Plugin, b"after".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"after");

    let stats = a.transport.stats();
    assert_eq!(stats.sent, 7, "{stats:?}");
    assert_eq!(stats.dropped_queue_full, 0, "{stats:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_hangs_up_at_once_is_redialled_with_backoff() {
    // A "peer" that accepts and closes every connection at once.
    let listener = tokio::net::TcpListener::bind(common::any_port())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = tokio::spawn(async move {
        let mut count = 0u32;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
        while let Ok(Ok((stream, _))) = tokio::time::timeout_at(deadline, listener.accept()).await {
            drop(stream);
            count += 1;
        }
        count
    });

    let mut a = start(config("a")).await; // back-off 10 ms .. 100 ms
    a.transport.add_peer("x", addr);
    a.transport
        .send("x", Channel::Protocol, b"hi".to_vec())
        .unwrap();
    let count = accepts.await.unwrap();
    // It never sent a challenge, so no connection was ever introduced.
    while let Ok(event) = a.events.try_recv() {
        assert!(
            !matches!(event, PeerEvent::Connected { .. }),
            "connected to a peer that never challenged: {event:?}"
        );
    }
    // Without back-off this would be thousands; with it, at most ~1 + 800/50.
    assert!((2..=30).contains(&count), "{count} connections in 800 ms");
    a.shutdown().await;
}

/// A refused dial is not death while the peer still talks to us: a firewall
/// that resets connections to one port, or a listener that is briefly
/// down, must not make a follower give up a live leader (its lease counts
/// on that follower's loyalty). Once the peer's own connection closes too,
/// it is reported.
#[tokio::test]
async fn a_refused_dial_is_not_death_while_the_peer_still_talks_to_us() {
    let mut a = start(config("a")).await;
    // "b" dials a and introduces itself, then keeps its connection open...
    let mut from_b = common::RawPeer::connect(a.addr(), "b", "a").await;
    let (refusing, refusing_addr) = common::reserve_port();
    let hello = from_b.hello_body(&refusing_addr.to_string(), 1);
    common::write_frame(&mut from_b.stream, &hello).await;
    // ...while every dial to b's port is refused.
    a.transport.add_peer("b", refusing_addr);
    a.transport
        .send("b", Channel::Protocol, b"x".to_vec())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    while let Ok(event) = a.events.try_recv() {
        assert!(
            !matches!(event, PeerEvent::Unreachable { .. }),
            "b was declared dead while its connection to a was open: {event:?}"
        );
    }
    // b's process dies: its connection closes as well.
    drop(from_b);
    assert_eq!(
        a.event(|e| matches!(e, PeerEvent::Unreachable { .. }))
            .await,
        PeerEvent::Unreachable { peer: "b".into() }
    );
    drop(refusing);
    a.shutdown().await;
}
