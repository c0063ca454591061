//! Peers by name: a name is resolved on every dial, so a peer that moves
//! (a rescheduled pod: same name, new address) is found again, whatever
//! address its earlier hellos reported; a name that does not resolve is
//! retried, never fatal.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{LogBuffer, config, start};
use tenure_transport::{Channel, PeerAddr, PeerEvent, Resolution, Resolve};

/// A resolver the test rewrites: each host answers with the address set
/// for it (port included, standing for a DNS answer that changed), or
/// fails while none is set. Counts its lookups.
#[derive(Default)]
struct Table {
    answers: Mutex<HashMap<String, SocketAddr>>,
    lookups: Mutex<u32>,
}

impl Table {
    fn set(&self, host: &str, addr: SocketAddr) {
        self.answers
            .lock()
            .expect("table lock")
            .insert(host.into(), addr);
    }

    fn lookups(&self) -> u32 {
        *self.lookups.lock().expect("table lock")
    }
}

/// The resolver handed to the transport: shares the test's [`Table`].
struct Shared(Arc<Table>);

impl Resolve for Shared {
    fn resolve(&self, host: &str, _port: u16) -> Resolution {
        *self.0.lookups.lock().expect("table lock") += 1;
        let answer = self
            .0
            .answers
            .lock()
            .expect("table lock")
            .get(host)
            .copied();
        let host = host.to_owned();
        Box::pin(async move {
            answer.map(|addr| vec![addr]).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host}: no such name"),
                )
            })
        })
    }
}

fn name(host: &str) -> PeerAddr {
    PeerAddr::Name {
        host: host.into(),
        port: 7101,
    }
}

#[tokio::test]
async fn a_peer_that_moves_is_found_again_by_its_name() {
    let table = Arc::new(Table::default());
    let mut b1 = start(config("b")).await;
    table.set("b.test", b1.addr());
    let mut a_config = config("a");
    a_config.resolver = Arc::new(Shared(table.clone()));
    a_config.peers.insert("b".into(), name("b.test"));
    let mut a = start(a_config).await;

    // b dials a too, so a learns b's first address from its hello: the
    // address a must not stay pinned to once b moves.
    b1.transport.add_peer("a", a.addr());
    b1.transport
        .send("a", Channel::Protocol, b"from b1".to_vec())
        .expect("queued");
    assert_eq!(a.recv().await.payload, b"from b1");
    assert_eq!(a.transport.peers().get("b"), Some(&b1.addr()));
    a.transport
        .send("b", Channel::Protocol, b"one".to_vec())
        .expect("queued");
    assert_eq!(b1.recv().await.payload, b"one");
    let lookups_before_move = table.lookups();

    // b moves: its old address is refused from now on, and its name
    // answers with the new one.
    let old = b1.addr();
    b1.shutdown().await;
    let (_reserved, _) = common::reserve(old);
    let mut b2 = start(config("b")).await;
    assert_ne!(b2.addr(), old);
    table.set("b.test", b2.addr());
    a.event(|e| matches!(e, PeerEvent::Disconnected { .. }))
        .await;
    a.transport
        .send("b", Channel::Protocol, b"two".to_vec())
        .expect("queued");
    assert_eq!(b2.recv().await.payload, b"two");
    assert!(
        table.lookups() > lookups_before_move,
        "the name was resolved again on reconnect"
    );
    assert_eq!(a.transport.peers().get("b"), Some(&b2.addr()));

    a.shutdown().await;
    b2.shutdown().await;
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_logged_and_retried_until_it_does() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // Global (the only test here that sets one): a thread-scoped subscriber
    // races with other tests' threads over tracing's per-callsite cache.
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    let table = Arc::new(Table::default());
    let mut a_config = config("a");
    a_config.resolver = Arc::new(Shared(table.clone()));
    a_config.peers.insert("b".into(), name("b.test"));
    let a = start(a_config).await;
    assert!(a.transport.knows_peer("b"));
    assert!(
        a.transport.peers().is_empty(),
        "no address until it resolves"
    );
    a.transport
        .send("b", Channel::Protocol, b"held".to_vec())
        .expect("a peer known by name takes frames before it resolves");

    // Several failed lookups: the dial is retried with back-off.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while table.lookups() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the name was not retried"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("cannot resolve peer's name"))
        .unwrap_or_else(|| panic!("no resolution failure logged in {text:?}"));
    assert!(line.contains("WARN"), "{line}");
    for field in ["peer=b", "name=b.test:7101", "error=b.test: no such name"] {
        assert!(line.contains(field), "{field} in {line}");
    }

    let mut b = start(config("b")).await;
    table.set("b.test", b.addr());
    assert_eq!(b.recv().await.payload, b"held");

    a.shutdown().await;
    b.shutdown().await;
}
