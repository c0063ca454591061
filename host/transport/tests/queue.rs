//! A full outbound queue drops and counts; `send` never blocks.

mod common;

use std::time::{Duration, Instant};

use common::{config, start, stats_until};
use tenure_transport::{Channel, PeerEvent, SendError};

#[tokio::test]
async fn sends_to_an_unreachable_peer_drop_and_count_instead_of_blocking() {
    // An address nobody listens on.
    let (_reserved, dead) = common::reserve_port();

    const CAPACITY: usize = 8;
    const FRAMES: usize = 10_000;
    let mut cfg = config("a");
    cfg.queue_capacity = CAPACITY;
    let mut a = start(cfg).await;
    a.transport.add_peer("dead", dead);

    let started = Instant::now();
    let mut refused = 0;
    for i in 0..FRAMES {
        match a
            .transport
            .send("dead", Channel::Protocol, i.to_le_bytes().to_vec())
        {
            Ok(()) => {}
            Err(SendError::QueueFull { peer }) => {
                assert_eq!(peer, "dead");
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        if i % 1000 == 0 {
            // Let the connection task run, as it would in a real node.
            tokio::task::yield_now().await;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "sending took {:?}",
        started.elapsed()
    );
    assert!(refused > 0);

    assert_eq!(
        a.event(|_| true).await,
        PeerEvent::Unreachable {
            peer: "dead".into()
        }
    );
    // Everything but what the queue and the held frames can keep is
    // dropped: refused by send, or the oldest evicted while unreachable.
    let stats = stats_until(&a.transport, |s| {
        s.dropped_queue_full >= (FRAMES - 2 * CAPACITY) as u64
    })
    .await;
    assert!(stats.dropped_queue_full >= refused);
    assert!(stats.dropped_queue_full <= FRAMES as u64);
    assert_eq!(stats.sent, 0);

    tokio::time::timeout(common::WAIT, a.transport.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn while_unreachable_the_newest_frames_are_kept() {
    let (reserved, addr) = common::reserve_port();

    const CAPACITY: usize = 4;
    let mut cfg = config("a");
    cfg.queue_capacity = CAPACITY;
    let mut a = start(cfg).await;
    a.transport.add_peer("b", addr);
    // Slowly, so the connection task drains the channel between sends and
    // evicts the oldest instead of refusing the newest.
    for i in 0..20u8 {
        a.transport.send("b", Channel::Protocol, vec![i]).unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.event(|e| matches!(e, PeerEvent::Unreachable { .. }))
        .await;

    // b appears at the address: only the newest CAPACITY frames arrive.
    let mut b_config = config("b");
    b_config.listen = addr;
    let mut b = start(b_config).await;
    drop(reserved);
    for i in 20 - CAPACITY as u8..20 {
        assert_eq!(b.recv().await.payload, vec![i]);
    }
    let stats = a.transport.stats();
    assert_eq!(stats.dropped_queue_full, 20 - CAPACITY as u64, "{stats:?}");
    a.shutdown().await;
    b.shutdown().await;
}
