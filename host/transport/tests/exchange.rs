//! Well-behaved nodes: payloads both ways, address learning, API errors.

mod common;

use std::time::Duration;

use common::{CLUSTER, Node, SECRET, any_port, config, start, stats_until};
use tenure_transport::{
    Channel, Inbound, PeerEvent, SendError, Transport, TransportConfig, TransportError,
};

fn inbound(from: &str, channel: Channel, payload: &[u8]) -> Inbound {
    Inbound {
        from: from.into(),
        channel,
        payload: payload.to_vec(),
    }
}

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Transport>();
    shareable::<TransportConfig>();
}

#[tokio::test]
async fn two_nodes_exchange_both_channels_both_ways() {
    let mut a = start(config("a")).await;
    let mut b = start(config("b")).await;
    a.transport.add_peer("b", b.addr());
    b.transport.add_peer("a", a.addr());

    a.transport
        .send("b", Channel::Protocol, b"vote for a".to_vec())
        .unwrap();
    a.transport
        .send("b", Channel::Plugin, b"lock x".to_vec())
        .unwrap();
    a.transport
        .send("b", Channel::Protocol, Vec::new())
        .unwrap();
    b.transport
        .send("a", Channel::Plugin, vec![0, 255, 7])
        .unwrap();
    b.transport
        .send("a", Channel::Protocol, b"granted".to_vec())
        .unwrap();

    // In order per connection, exactly as sent.
    assert_eq!(
        b.recv().await,
        inbound("a", Channel::Protocol, b"vote for a")
    );
    assert_eq!(b.recv().await, inbound("a", Channel::Plugin, b"lock x"));
    assert_eq!(b.recv().await, inbound("a", Channel::Protocol, b""));
    assert_eq!(a.recv().await, inbound("b", Channel::Plugin, &[0, 255, 7]));
    assert_eq!(a.recv().await, inbound("b", Channel::Protocol, b"granted"));

    assert_eq!(
        a.event(|_| true).await,
        PeerEvent::Connected { peer: "b".into() }
    );
    assert_eq!(
        b.event(|_| true).await,
        PeerEvent::Connected { peer: "a".into() }
    );

    let a_stats = stats_until(&a.transport, |s| s.sent == 3).await;
    assert_eq!(
        (a_stats.sent, a_stats.received, a_stats.rejected()),
        (3, 2, 0)
    );
    let b_stats = stats_until(&b.transport, |s| s.sent == 2).await;
    assert_eq!(
        (b_stats.sent, b_stats.received, b_stats.rejected()),
        (2, 3, 0)
    );

    // A larger payload, up to the limit, in many frames.
    let big = vec![0xAB; 60_000];
    for _ in 0..20 {
        a.transport.send("b", Channel::Plugin, big.clone()).unwrap();
    }
    for _ in 0..20 {
        assert_eq!(b.recv().await.payload, big);
    }

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_node_learns_an_unknown_senders_address_from_its_hello() {
    let mut b = start(config("b")).await;
    let mut c = start(config("c")).await;
    // Only b knows where c is.
    b.transport.add_peer("c", c.addr());
    assert!(c.transport.peers().is_empty());
    assert_eq!(
        c.transport
            .send("b", Channel::Protocol, b"too early".to_vec()),
        Err(SendError::UnknownPeer { peer: "b".into() })
    );

    b.transport
        .send("c", Channel::Protocol, b"join me".to_vec())
        .unwrap();
    assert_eq!(c.recv().await, inbound("b", Channel::Protocol, b"join me"));
    assert_eq!(c.transport.peers().get("b"), Some(&b.addr()));

    c.transport
        .send("b", Channel::Protocol, b"welcome".to_vec())
        .unwrap();
    assert_eq!(b.recv().await, inbound("c", Channel::Protocol, b"welcome"));
    assert_eq!(c.transport.stats().dropped_unknown_peer, 1);

    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn configured_peers_are_dialled_on_first_send() {
    let mut b = start(config("b")).await;
    let mut a_config = config("a");
    a_config.peers.insert("b".into(), b.addr().into());
    let mut a = start(a_config).await;
    assert_eq!(a.transport.peers().get("b"), Some(&b.addr()));
    a.transport
        .send("b", Channel::Plugin, b"hi".to_vec())
        .unwrap();
    assert_eq!(b.recv().await, inbound("a", Channel::Plugin, b"hi"));
    assert_eq!(
        a.event(|_| true).await,
        PeerEvent::Connected { peer: "b".into() }
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn send_refuses_unknown_peers_and_oversized_payloads_without_blocking() {
    let mut cfg = config("a");
    cfg.max_frame_bytes = 1024;
    let a = start(cfg).await;
    assert_eq!(
        a.transport.send("nobody", Channel::Protocol, vec![1]),
        Err(SendError::UnknownPeer {
            peer: "nobody".into()
        })
    );
    assert_eq!(a.transport.stats().dropped_unknown_peer, 1);

    a.transport.add_peer("b", any_port());
    assert!(matches!(
        a.transport.send("b", Channel::Protocol, vec![0; 1024]),
        Err(SendError::TooLarge { max: 1024, .. })
    ));
    // Invalid ids are not recorded.
    a.transport.add_peer("", any_port());
    a.transport.add_peer(&"x".repeat(256), any_port());
    assert_eq!(a.transport.peers().len(), 1);
    a.shutdown().await;
}

#[tokio::test]
async fn start_refuses_bad_configurations() {
    let short = TransportConfig::new("a", CLUSTER, b"too short".to_vec(), any_port());
    assert!(matches!(
        Transport::start(short).await,
        Err(TransportError::Secret(_))
    ));

    type Spoil = fn(&mut TransportConfig);
    let bad: [(&str, Spoil); 9] = [
        ("node_id", |c| c.node_id.clear()),
        ("node_id", |c| c.node_id = "n".repeat(256)),
        ("peers", |c| {
            c.peers.insert(String::new(), any_port().into());
        }),
        ("max_frame_bytes", |c| c.max_frame_bytes = 16),
        ("queue_capacity", |c| c.queue_capacity = 0),
        ("reconnect_max", |c| {
            c.reconnect_max = c.reconnect_min / 2;
        }),
        ("handshake_timeout", |c| {
            c.handshake_timeout = Duration::ZERO
        }),
        ("max_pending", |c| c.max_pending = 0),
        ("max_frames_per_sec", |c| c.max_frames_per_sec = 0),
    ];
    for (field, spoil) in bad {
        let mut cfg = TransportConfig::new("a", CLUSTER, SECRET.to_vec(), any_port());
        spoil(&mut cfg);
        match Transport::start(cfg).await {
            Err(TransportError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!(
                "{field}: expected InvalidConfig, got {:?}",
                other.map(|_| ())
            ),
        }
    }

    // A port already in use.
    let taken = start(config("a")).await;
    let clash = TransportConfig::new("b", CLUSTER, SECRET.to_vec(), taken.addr());
    assert!(matches!(
        Transport::start(clash).await,
        Err(TransportError::Bind { .. })
    ));
    taken.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_the_channels() {
    let b = start(config("b")).await;
    let a = start(config("a")).await;
    a.transport.add_peer("b", b.addr());
    a.transport
        .send("b", Channel::Protocol, b"x".to_vec())
        .unwrap();
    let Node {
        transport,
        mut inbox,
        mut events,
    } = a;
    tokio::time::timeout(common::WAIT, transport.shutdown())
        .await
        .unwrap();
    assert_eq!(inbox.recv().await, None);
    // Events emitted before the shutdown may remain; then the channel ends.
    while events.recv().await.is_some() {}
    b.shutdown().await;
}
