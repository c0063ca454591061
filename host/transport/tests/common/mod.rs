//! Helpers shared by the integration tests: every wait is bounded.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;
use tenure_transport::frame::{self, FrameKey, Kind};
use tenure_transport::handshake::{self, ConnectionKeys, Nonce};
use tenure_transport::{Inbound, PeerEvent, Transport, TransportConfig, TransportStats};

use tenure_transport::Channel;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

pub const SECRET: &[u8] = b"tenure-test-cluster-secret";
pub const CLUSTER: &str = "test-cluster";
/// The longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A test configuration: loopback, any port, fast reconnects.
pub fn config(id: &str) -> TransportConfig {
    let mut config = TransportConfig::new(id, CLUSTER, SECRET.to_vec(), any_port());
    config.reconnect_min = Duration::from_millis(10);
    config.reconnect_max = Duration::from_millis(100);
    config
}

pub struct Node {
    pub transport: Transport,
    pub inbox: mpsc::Receiver<Inbound>,
    pub events: mpsc::Receiver<PeerEvent>,
}

pub async fn start(config: TransportConfig) -> Node {
    let (transport, inbox, events) = Transport::start(config).await.expect("transport starts");
    Node {
        transport,
        inbox,
        events,
    }
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    pub async fn recv(&mut self) -> Inbound {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("a message within the wait")
            .expect("inbox open")
    }

    /// Waits for the first event matching `want`, skipping others.
    pub async fn event(&mut self, want: impl Fn(&PeerEvent) -> bool) -> PeerEvent {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(event) if want(&event) => return event,
                    Some(_) => continue,
                    None => panic!("event channel closed"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("the event within the wait")
    }

    pub async fn shutdown(self) {
        tokio::time::timeout(WAIT, self.transport.shutdown())
            .await
            .expect("shutdown within the wait");
    }
}

/// Polls `stats` until `done` holds; panics after [`WAIT`].
pub async fn stats_until(
    transport: &Transport,
    done: impl Fn(&TransportStats) -> bool,
) -> TransportStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = transport.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never got there: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes one length-delimited frame body, as the transport would.
pub async fn write_frame(stream: &mut TcpStream, body: &[u8]) {
    let len = u32::try_from(body.len()).expect("small frame");
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.expect("write frame");
}

/// Asserts the other side closes `stream`: a read returns EOF (or a reset,
/// if the close raced unread bytes) within the wait.
pub async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => panic!("the transport wrote {n} bytes on an accepted connection"),
        Ok(Err(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
            "unexpected read error {e}"
        ),
        Err(_) => panic!("the connection stayed open"),
    }
}

/// Reserves a loopback port nobody listens on: the socket is bound (with
/// SO_REUSEADDR) but not listening, so connections to it are refused, the
/// kernel hands the port to no one else while it lives, and a transport can
/// still bind it (it also sets SO_REUSEADDR) before the reservation drops.
pub fn reserve_port() -> (tokio::net::TcpSocket, SocketAddr) {
    reserve(any_port())
}

/// [`reserve_port`] at a given address (e.g. one a stopped transport left).
pub fn reserve(addr: SocketAddr) -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind");
    let addr = socket.local_addr().expect("local address");
    (socket, addr)
}

/// Reads one length-delimited frame body.
pub async fn read_body(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut len))
        .await
        .expect("a frame within the wait")
        .expect("read a length prefix");
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    tokio::time::timeout(WAIT, stream.read_exact(&mut body))
        .await
        .expect("a frame within the wait")
        .expect("read a body");
    body
}

/// Connects to a transport and reads its challenge; returns the stream,
/// ready for whatever the test writes next, and the challenge's nonce.
pub async fn connect_raw(addr: SocketAddr) -> (TcpStream, Nonce) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let body = read_body(&mut stream).await;
    let challenge = frame::decode(&body).expect("a challenge frame");
    assert_eq!(challenge.kind, Kind::Challenge);
    let nonce = challenge.payload.try_into().expect("a 32-byte nonce");
    (stream, nonce)
}

/// A hand-driven dialler: it answers the challenge as a real node would,
/// and lets the test write whatever it likes after that.
pub struct RawPeer {
    pub stream: TcpStream,
    pub challenge: Nonce,
    pub nonce: Nonce,
    pub keys: ConnectionKeys,
    /// The sequence number [`RawPeer::body`] uses next.
    pub seq: u64,
    pub from: String,
    pub to: String,
}

impl RawPeer {
    /// Connects to `addr` as node `from` dialling node `to`, reads the
    /// challenge and derives the connection's keys from `secret`. Sends
    /// nothing yet.
    pub async fn connect_with(addr: SocketAddr, secret: &[u8], from: &str, to: &str) -> RawPeer {
        let (stream, challenge) = connect_raw(addr).await;
        let nonce = handshake::fresh_nonce();
        let key = FrameKey::new(secret).expect("key");
        let keys = ConnectionKeys::derive(&key, &challenge, &nonce).expect("keys");
        RawPeer {
            stream,
            challenge,
            nonce,
            keys,
            seq: 1,
            from: from.into(),
            to: to.into(),
        }
    }

    /// [`RawPeer::connect_with`] the cluster secret.
    pub async fn connect(addr: SocketAddr, from: &str, to: &str) -> RawPeer {
        RawPeer::connect_with(addr, SECRET, from, to).await
    }

    /// A valid hello (sequence 0) announcing `listen` and `incarnation`.
    pub fn hello_body(&self, listen: &str, incarnation: u64) -> Vec<u8> {
        let payload = handshake::hello_payload(
            &self.challenge,
            &self.nonce,
            listen.parse().expect("an address"),
            incarnation,
        );
        frame::encode(
            &self.keys.dialler,
            Kind::Hello,
            CLUSTER,
            &self.from,
            &self.to,
            0,
            &payload,
        )
        .expect("hello")
        .to_vec()
    }

    /// Writes a valid hello announcing 127.0.0.1:9.
    pub async fn hello(&mut self, incarnation: u64) {
        let body = self.hello_body("127.0.0.1:9", incarnation);
        write_frame(&mut self.stream, &body).await;
    }

    /// The next frame of this connection: signed with its key, numbered.
    pub fn body(&mut self, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let body = frame::encode(
            &self.keys.dialler,
            kind,
            CLUSTER,
            &self.from,
            &self.to,
            self.seq,
            payload,
        )
        .expect("frame")
        .to_vec();
        self.seq += 1;
        body
    }

    /// Writes the next protocol frame carrying `payload`.
    pub async fn say(&mut self, payload: &[u8]) {
        let body = self.body(Kind::Protocol, payload);
        write_frame(&mut self.stream, &body).await;
    }
}

/// File descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Waits (within the wait) for this process's open fds to come back to
/// at most `before` plus a little slack (a runtime's own descriptors come
/// and go); returns the count, or panics with it.
pub async fn fds_settle(before: usize) -> usize {
    const SLACK: usize = 8;
    let deadline = Instant::now() + WAIT;
    loop {
        let now = open_fds();
        if now <= before + SLACK {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "fds leaked: {before} before, {now} after"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// This process's soft limit on open files.
pub fn fd_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

/// Loopback source address number `i` (127.0.1.1, 127.0.1.2, ...).
pub fn source(block: u8, i: usize) -> IpAddr {
    let [hi, lo] = u16::try_from(i + 1).expect("few sources").to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, block.wrapping_add(hi), lo, 1))
}

pub async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind a source");
    socket.connect(to).await.expect("connects")
}

/// Reads whatever comes until the other side closes; panics if it stays
/// open for the whole wait.
pub async fn drain_until_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(WAIT, read_all)
        .await
        .expect("closed within the wait");
}

/// b and a peer a that is already talking to it.
pub async fn victim_and_friend(cfg: TransportConfig) -> (Node, Node) {
    let mut b = start(cfg).await;
    let a = start(config("a")).await;
    a.transport.add_peer("b", b.addr());
    a.transport
        .send("b", Channel::Protocol, b"hello".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"hello");
    (b, a)
}

/// a sends `n` frames to b one by one; each must arrive within `bound`.
/// Returns the slowest.
pub async fn still_prompt(a: &Node, b: &mut Node, n: usize, bound: Duration) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let sent = Instant::now();
        let payload = format!("prompt {i}").into_bytes();
        a.transport
            .send("b", Channel::Protocol, payload.clone())
            .unwrap();
        let got = tokio::time::timeout(bound, b.recv())
            .await
            .expect("a frame arrives promptly");
        assert_eq!(got.payload, payload);
        slowest = slowest.max(sent.elapsed());
    }
    slowest
}

/// Deterministic junk (xorshift), so a failure reproduces.
pub fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A log sink for a test's tracing subscriber: `.with_writer(logs.clone())`,
/// then [`LogBuffer::text`] holds what was logged.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8(bytes).expect("UTF-8 log lines")
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}
