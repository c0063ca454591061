//! Replay: the bytes of a real connection, recorded by a proxy between two
//! nodes, are refused when played back on a new connection or repeated on
//! their own — and the nodes go on talking.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{RawPeer, assert_closed, config, connect_raw, start, stats_until};
use tenure_transport::{Channel, PeerEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Every byte a dialler wrote on one proxied connection.
type Log = Arc<Mutex<Vec<u8>>>;

/// A TCP proxy that records what each dialler wrote and can inject bytes
/// into a live connection towards the listener.
struct Proxy {
    addr: SocketAddr,
    /// Per accepted connection, every byte the dialler wrote.
    recorded: Arc<Mutex<Vec<Log>>>,
    /// Per accepted connection, a way to write to the listener on it.
    injectors: Arc<Mutex<Vec<mpsc::UnboundedSender<Vec<u8>>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(common::any_port()).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let recorded: Arc<Mutex<Vec<Log>>> = Arc::default();
        let injectors: Arc<Mutex<Vec<mpsc::UnboundedSender<Vec<u8>>>>> = Arc::default();
        let (rec, inj) = (recorded.clone(), injectors.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let log = Arc::new(Mutex::new(Vec::new()));
                rec.lock().unwrap().push(log.clone());
                let (tx, rx) = mpsc::unbounded_channel();
                inj.lock().unwrap().push(tx);
                tokio::spawn(relay(client, server, log, rx));
            }
        });
        Proxy {
            addr,
            recorded,
            injectors,
        }
    }

    /// The frames (each with its length prefix) the dialler wrote on
    /// connection `i`.
    fn frames(&self, i: usize) -> Vec<Vec<u8>> {
        let log = self.recorded.lock().unwrap()[i].lock().unwrap().clone();
        let mut frames = Vec::new();
        let mut rest = &log[..];
        while let Some((len, _)) = rest.split_first_chunk::<4>() {
            let end = 4 + u32::from_be_bytes(*len) as usize;
            if rest.len() < end {
                break;
            }
            frames.push(rest[..end].to_vec());
            rest = &rest[end..];
        }
        frames
    }

    fn inject(&self, i: usize, bytes: Vec<u8>) {
        self.injectors.lock().unwrap()[i].send(bytes).unwrap();
    }

    fn connections(&self) -> usize {
        self.recorded.lock().unwrap().len()
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    log: Log,
    mut inject: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = from_client.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            },
            Some(bytes) = inject.recv() => {
                if to_server.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_recorded_connection_is_refused_when_played_back() {
    let mut b = start(config("b")).await;
    let mut a = start(config("a")).await;
    let proxy = Proxy::start(b.addr()).await;
    a.transport.add_peer("b", proxy.addr);

    // A normal exchange through the proxy, which records it.
    for word in ["heartbeat 1", "heartbeat 2", "heartbeat 3"] {
        a.transport
            .send("b", Channel::Protocol, word.as_bytes().to_vec())
            .unwrap();
        assert_eq!(b.recv().await.payload, word.as_bytes());
    }
    let recorded = proxy.frames(0);
    assert_eq!(recorded.len(), 4, "hello and three frames");

    // Played back on a new connection, straight to b (as an attacker
    // without the secret would: it cannot answer the new challenge).
    let before = b.transport.stats();
    let (mut replay, _) = connect_raw(b.addr()).await;
    replay.write_all(&recorded.concat()).await.unwrap();
    assert_closed(&mut replay).await;
    let after = stats_until(&b.transport, |s| s.rejected_replayed == 1).await;
    assert_eq!(after.received, before.received, "{after:?}");
    assert_eq!(after.rejected(), before.rejected() + 1, "{after:?}");

    // A recorded frame after a fresh hello (only a member can make one):
    // signed with another connection's key, it is a forgery here.
    let mut member = RawPeer::connect(b.addr(), "m", "b").await;
    member.hello(7).await;
    member.stream.write_all(&recorded[1]).await.unwrap();
    assert_closed(&mut member.stream).await;
    stats_until(&b.transport, |s| s.rejected_unauthenticated == 1).await;

    // Repeated on its own, live connection: refused and closed.
    proxy.inject(0, recorded[3].clone());
    let after = stats_until(&b.transport, |s| s.rejected_replayed == 2).await;
    assert_eq!(after.received, 3, "nothing delivered twice: {after:?}");
    a.event(|e| matches!(e, PeerEvent::Disconnected { .. }))
        .await;
    assert!(b.inbox.try_recv().is_err());

    // a redials (through the proxy) and the exchange goes on.
    a.transport
        .send("b", Channel::Protocol, b"heartbeat 4".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"heartbeat 4");
    assert_eq!(proxy.connections(), 2);
    let stats = b.transport.stats();
    assert_eq!(
        (stats.received, stats.rejected_replayed, stats.rejected()),
        (4, 2, 3),
        "{stats:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_recorded_hello_is_refused_even_while_its_connection_lives() {
    let mut b = start(config("b")).await;
    let a = start(config("a")).await;
    let proxy = Proxy::start(b.addr()).await;
    a.transport.add_peer("b", proxy.addr);
    a.transport
        .send("b", Channel::Protocol, b"hi".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"hi");
    let hello = proxy.frames(0).remove(0);

    // Many playbacks of the hello; each is refused on its own connection.
    for _ in 0..5 {
        let (mut replay, _) = connect_raw(b.addr()).await;
        replay.write_all(&hello).await.unwrap();
        assert_closed(&mut replay).await;
    }
    stats_until(&b.transport, |s| s.rejected_replayed == 5).await;

    // The real connection was never disturbed.
    a.transport
        .send("b", Channel::Protocol, b"still here".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"still here");
    assert_eq!(proxy.connections(), 1);
    a.shutdown().await;
    b.shutdown().await;
}
