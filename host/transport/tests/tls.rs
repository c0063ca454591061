//! Mutual-TLS mode: nodes with certificates of the cluster CA talk; a
//! certificate of another CA, of another cluster, of another node than the
//! frames' `from`, or an expired one is refused and counted; a dialler
//! refuses a listener that is not the node it dialled; a reload is used by
//! new connections.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{CLUSTER, Node, config, start, stats_until, write_frame};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tenure_transport::certs::{self, CaFiles, NodePem};
use tenure_transport::frame::{self, Kind};
use tenure_transport::handshake::{self, ConnectionKeys};
use tenure_transport::{
    Channel, PeerEvent, Security, TlsError, TlsIdentity, Transport, TransportError,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn identity(ca: &CaFiles, node: &NodePem) -> TlsIdentity {
    TlsIdentity::from_pem(&ca.cert_pem, &node.cert_pem, &node.key_pem).expect("identity")
}

fn issue(ca: &CaFiles, cluster: &str, node: &str) -> NodePem {
    certs::issue_node(ca, cluster, node, &[], 1).expect("node certificate")
}

/// A TLS node `id` of the test cluster, its certificate signed by `ca`.
async fn tls_node(ca: &CaFiles, id: &str) -> Node {
    let mut cfg = config(id);
    cfg.security = Security::MutualTls(identity(ca, &issue(ca, CLUSTER, id)));
    start(cfg).await
}

/// A hand-driven TLS dialler that trusts any listener (its own checks are
/// not under test here) and presents whatever certificate it is given.
#[derive(Debug)]
struct AnyListener(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyListener {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type RawTls = tokio_rustls::client::TlsStream<TcpStream>;

/// Dials `addr` over TLS presenting `cert`; `None` if the client's side of
/// the handshake fails.
async fn dial_tls(addr: SocketAddr, cert: &NodePem) -> Option<RawTls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyListener(provider)))
        .with_client_auth_cert(chain, key)
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .ok()
}

/// Dials `addr` presenting `cert` and waits for the listener to refuse it.
/// (In TLS 1.3 the listener's verdict on a client certificate comes after
/// the client's side of the handshake is done: an alert, then the close.)
async fn refused(addr: SocketAddr, cert: &NodePem) {
    if let Some(mut tls) = dial_tls(addr, cert).await {
        until_closed(&mut tls).await;
    }
}

/// The keys and hello of a raw TLS connection speaking as `from`.
fn tls_hello(tls: &RawTls, from: &str) -> (ConnectionKeys, Vec<u8>) {
    let material = tls
        .get_ref()
        .1
        .export_keying_material([0u8; 64], handshake::TLS_EXPORTER_LABEL, None)
        .unwrap();
    let (base, listener_nonce) = handshake::tls_keys(&material).unwrap();
    let nonce = handshake::fresh_nonce();
    let keys = ConnectionKeys::derive(&base, &listener_nonce, &nonce).unwrap();
    let payload =
        handshake::hello_payload(&listener_nonce, &nonce, "127.0.0.1:9".parse().unwrap(), 5);
    let hello = frame::encode(&keys.dialler, Kind::Hello, CLUSTER, from, "b", 0, &payload);
    (keys, hello.unwrap().to_vec())
}

async fn write_tls(tls: &mut RawTls, body: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    tls.write_all(&bytes).await.unwrap();
    tls.flush().await.unwrap();
}

/// Reads until the listener closes the TLS connection.
async fn until_closed(tls: &mut RawTls) {
    let mut buf = [0u8; 64];
    let wait = async {
        while let Ok(n) = tls.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(common::WAIT, wait)
        .await
        .expect("closed within the wait");
}

#[tokio::test]
async fn tls_nodes_exchange_both_ways() {
    let ca = certs::new_cluster_ca(CLUSTER).unwrap();
    let mut a = tls_node(&ca, "a").await;
    let mut b = tls_node(&ca, "b").await;
    a.transport.add_peer("b", b.addr());
    a.transport
        .send("b", Channel::Protocol, b"vote".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"vote");
    // b learned a's address from the hello and answers.
    b.transport
        .send("a", Channel::Plugin, b"granted".to_vec())
        .unwrap();
    let got = a.recv().await;
    assert_eq!((got.from.as_str(), got.payload), ("b", b"granted".to_vec()));
    let big = vec![7u8; 60_000];
    for _ in 0..10 {
        a.transport.send("b", Channel::Plugin, big.clone()).unwrap();
    }
    for _ in 0..10 {
        assert_eq!(b.recv().await.payload, big);
    }
    assert_eq!(
        (
            a.transport.stats().rejected(),
            b.transport.stats().rejected()
        ),
        (0, 0)
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn refused_certificates_are_counted_and_the_cluster_goes_on() {
    let ca = certs::new_cluster_ca(CLUSTER).unwrap();
    let mut b = tls_node(&ca, "b").await;
    let a = tls_node(&ca, "a").await;
    a.transport.add_peer("b", b.addr());

    // Signed by another CA.
    let other_ca = certs::new_cluster_ca(CLUSTER).unwrap();
    refused(b.addr(), &issue(&other_ca, CLUSTER, "m")).await;
    stats_until(&b.transport, |s| s.rejected_certificate == 1).await;

    // Expired (and one not valid yet).
    let day = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let expired = certs::issue_node_between(&ca, CLUSTER, "m", &[], now - 2 * day, now - day);
    refused(b.addr(), &expired.unwrap()).await;
    let early = certs::issue_node_between(&ca, CLUSTER, "m", &[], now + day, now + 2 * day);
    refused(b.addr(), &early.unwrap()).await;
    stats_until(&b.transport, |s| s.rejected_certificate == 3).await;

    // Naming another cluster: TLS succeeds (same CA), the name does not.
    refused(b.addr(), &issue(&ca, "other-cluster", "m")).await;
    stats_until(&b.transport, |s| s.rejected_certificate == 4).await;

    // Naming node "c", saying hello as "m".
    let c_cert = issue(&ca, CLUSTER, "c");
    let mut tls = dial_tls(b.addr(), &c_cert)
        .await
        .expect("a valid certificate");
    let (_, hello) = tls_hello(&tls, "m");
    write_tls(&mut tls, &hello).await;
    until_closed(&mut tls).await;
    stats_until(&b.transport, |s| s.rejected_certificate == 5).await;

    // Hello as "c" (accepted), then a frame from "m".
    let mut tls = dial_tls(b.addr(), &c_cert)
        .await
        .expect("a valid certificate");
    let (keys, hello) = tls_hello(&tls, "c");
    write_tls(&mut tls, &hello).await;
    let ok = frame::encode(&keys.dialler, Kind::Protocol, CLUSTER, "c", "b", 1, b"as c");
    write_tls(&mut tls, &ok.unwrap()).await;
    assert_eq!(b.recv().await.payload, b"as c");
    let forged = frame::encode(&keys.dialler, Kind::Protocol, CLUSTER, "m", "b", 2, b"as m");
    write_tls(&mut tls, &forged.unwrap()).await;
    until_closed(&mut tls).await;
    let stats = stats_until(&b.transport, |s| s.rejected_certificate == 6).await;
    assert_eq!(stats.received, 1, "only c's own frame: {stats:?}");

    // Plain TCP speaking the shared-secret protocol: not TLS.
    let mut plain = TcpStream::connect(b.addr()).await.unwrap();
    write_frame(&mut plain, b"hello?").await;
    stats_until(&b.transport, |s| s.rejected_malformed == 1).await;

    // The real peer is served throughout.
    a.transport
        .send("b", Channel::Protocol, b"still here".to_vec())
        .unwrap();
    assert_eq!(b.recv().await.payload, b"still here");
    assert_eq!(b.transport.stats().rejected_certificate, 6);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_dialler_refuses_a_listener_that_is_not_the_node_it_dialled() {
    let ca = certs::new_cluster_ca(CLUSTER).unwrap();
    let mut a = tls_node(&ca, "a").await;
    // "c" listens where a believes "b" is (a forged hello, a stale address).
    let mut c = tls_node(&ca, "c").await;
    a.transport.add_peer("b", c.addr());
    a.transport
        .send("b", Channel::Protocol, b"for b only".to_vec())
        .unwrap();
    stats_until(&a.transport, |s| s.rejected_certificate >= 1).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.inbox.recv())
            .await
            .is_err(),
        "c got b's traffic"
    );
    while let Ok(event) = a.events.try_recv() {
        assert!(!matches!(event, PeerEvent::Connected { .. }), "{event:?}");
    }
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn start_and_reload_refuse_an_identity_for_another_node() {
    let ca = certs::new_cluster_ca(CLUSTER).unwrap();
    let mut cfg = config("a");
    cfg.security = Security::MutualTls(identity(&ca, &issue(&ca, CLUSTER, "c")));
    assert!(matches!(
        Transport::start(cfg).await,
        Err(TransportError::Tls(TlsError::Name(_)))
    ));
    let a = tls_node(&ca, "a").await;
    let other = identity(&ca, &issue(&ca, "other-cluster", "a"));
    assert!(matches!(
        a.transport.reload_tls(other),
        Err(TlsError::Name(_))
    ));
    let plain = start(config("p")).await;
    let some = identity(&ca, &issue(&ca, CLUSTER, "p"));
    assert!(matches!(
        plain.transport.reload_tls(some),
        Err(TlsError::NotTls)
    ));
    a.shutdown().await;
    plain.shutdown().await;
}

#[tokio::test]
async fn a_reload_is_used_by_new_connections() {
    // b starts with the old CA; a already has the new one.
    let old_ca = certs::new_cluster_ca(CLUSTER).unwrap();
    let new_ca = certs::new_cluster_ca(CLUSTER).unwrap();
    let mut b = tls_node(&old_ca, "b").await;
    let a = tls_node(&new_ca, "a").await;
    a.transport.add_peer("b", b.addr());
    a.transport
        .send("b", Channel::Protocol, b"rotated".to_vec())
        .unwrap();
    // a refuses b's certificate (it checks the listener's first, so b
    // only hears an alert), and keeps redialling.
    stats_until(&a.transport, |s| s.rejected_certificate >= 2).await;
    assert_eq!(b.transport.stats().received, 0);

    // b reloads (as on SIGHUP) with a certificate of the new CA: a's next
    // redial gets through, with what it kept queued.
    b.transport
        .reload_tls(identity(&new_ca, &issue(&new_ca, CLUSTER, "b")))
        .unwrap();
    assert_eq!(b.recv().await.payload, b"rotated");
    // A connection opened before the reload would keep its identity; the
    // old one is now refused by a fresh dialler that trusts only the old CA.
    let old_peer = tls_node(&old_ca, "o").await;
    old_peer.transport.add_peer("b", b.addr());
    old_peer
        .transport
        .send("b", Channel::Protocol, b"old".to_vec())
        .unwrap();
    stats_until(&old_peer.transport, |s| s.rejected_certificate >= 1).await;
    old_peer.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Prints (does not assert) how long the first frame of a fresh connection
/// takes on loopback: shared-secret (TCP + challenge) vs mutual TLS (TCP +
/// TLS 1.3 handshake), and a frame on an established connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_frame_latency_hmac_vs_tls() {
    const ROUNDS: usize = 30;
    let ca = certs::new_cluster_ca(CLUSTER).unwrap();
    let mut results = Vec::new();
    for tls in [false, true] {
        let mut b = if tls {
            tls_node(&ca, "b").await
        } else {
            start(config("b")).await
        };
        let mut firsts = Vec::with_capacity(ROUNDS);
        let mut steady = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let id = format!("s{round}");
            let a = if tls {
                tls_node(&ca, &id).await
            } else {
                start(config(&id)).await
            };
            a.transport.add_peer("b", b.addr());
            for times in [&mut firsts, &mut steady] {
                let sent = std::time::Instant::now();
                a.transport
                    .send("b", Channel::Protocol, b"ping".to_vec())
                    .unwrap();
                assert_eq!(b.recv().await.payload, b"ping");
                times.push(sent.elapsed());
            }
            a.shutdown().await;
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            (v[v.len() / 2], v[0], v[v.len() - 1])
        };
        results.push((tls, median(&mut firsts), median(&mut steady)));
        b.shutdown().await;
    }
    for (tls, (first, first_min, first_max), (steady, _, _)) in results {
        println!(
            "{}: first frame on a fresh connection median {first:?} (min {first_min:?}, max \
             {first_max:?}); on an established one median {steady:?}; {ROUNDS} rounds",
            if tls {
                "mutual TLS   "
            } else {
                "shared secret"
            }
        );
    }
}
