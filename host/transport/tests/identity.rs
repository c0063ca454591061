//! One live process per node id: a second process that claims a peer's id
//! while the first is connected is refused, reported, and never heard.

mod common;

use std::time::Duration;

use common::{RawPeer, config, start};
use tenure_transport::frame::{self, Kind};
use tenure_transport::{Channel, PeerEvent};

/// Dials `to` as node `from`, process `incarnation`, and says hello.
async fn hello_as(to: std::net::SocketAddr, from: &str, incarnation: u64) -> RawPeer {
    let mut peer = RawPeer::connect(to, from, "a").await;
    peer.hello(incarnation).await;
    peer
}

async fn say(peer: &mut RawPeer, what: &[u8]) {
    peer.say(what).await;
}

#[tokio::test]
async fn a_second_live_process_with_a_peers_id_is_refused_and_reported() {
    let mut a = start(config("a")).await;
    let mut first = hello_as(a.addr(), "b", 1).await;
    say(&mut first, b"from the first").await;
    assert_eq!(a.recv().await.payload, b"from the first");

    // A second process claims "b" while the first is connected.
    let mut second = hello_as(a.addr(), "b", 2).await;
    say(&mut second, b"from the second").await;
    // It is told why (a refusal frame), then the connection closes.
    let mut told = Vec::new();
    let read = tokio::time::timeout(
        common::WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut second.stream, &mut told),
    )
    .await
    .expect("closed within the wait");
    assert!(read.is_ok() || !told.is_empty(), "{read:?}");
    let body = told.get(4..).expect("a length-prefixed frame");
    let refusal = frame::decode(body).expect("a frame");
    assert_eq!((refusal.kind, refusal.seq), (Kind::Refusal, 0));
    assert!(
        refusal.verify(&second.keys.listener),
        "signed for this connection"
    );
    assert!(String::from_utf8_lossy(refusal.payload).contains("must stop"));
    assert_eq!(
        a.event(|e| matches!(e, PeerEvent::DuplicateId { .. }))
            .await,
        PeerEvent::DuplicateId { peer: "b".into() }
    );
    assert_eq!(a.transport.stats().rejected_duplicate_id, 1);
    // The first is still heard; the second never was.
    say(&mut first, b"still here").await;
    assert_eq!(a.recv().await.payload, b"still here");
    assert!(a.inbox.try_recv().is_err());
    // Its hello did not move b's address to the duplicate's.
    assert_eq!(
        a.transport.peers().get("b").map(|addr| addr.port()),
        Some(9)
    );

    // The first process dies: a restart (a new incarnation) is welcome.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut restarted = hello_as(a.addr(), "b", 3).await;
    say(&mut restarted, b"restarted").await;
    let got = a.recv().await;
    assert_eq!(
        (got.from.as_str(), got.channel, got.payload),
        ("b", Channel::Protocol, b"restarted".to_vec())
    );
    a.shutdown().await;
}

/// The refused process is told why, on the connection it dialled, and
/// reports it, so its node can stop.
#[tokio::test]
async fn the_refused_process_hears_why() {
    let mut a = start(config("a")).await;
    let mut first = hello_as(a.addr(), "b", 1).await;
    say(&mut first, b"here first").await;
    assert_eq!(a.recv().await.payload, b"here first");

    let mut second = start(config("b")).await;
    second.transport.add_peer("a", a.addr());
    second
        .transport
        .send("a", Channel::Protocol, b"me too".to_vec())
        .unwrap();
    match second
        .event(|e| matches!(e, PeerEvent::RefusedAsDuplicate { .. }))
        .await
    {
        PeerEvent::RefusedAsDuplicate { peer, reason } => {
            assert_eq!(peer, "a");
            assert!(reason.contains("must stop"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(a.inbox.try_recv().is_err(), "the second was heard");
    second.shutdown().await;
    a.shutdown().await;
}
