//! Mutual-TLS mode: every connection is TLS 1.3 (rustls, `ring` provider),
//! both ends present a certificate signed by the cluster CA, and each
//! certificate names its node ([`crate::san`]).
//!
//! What each side checks, beyond the chain to the CA and the validity
//! dates (webpki):
//!
//! - the **listener**: the dialler's certificate names this cluster; its
//!   hello's `from`, and so every later frame's, is the certificate's node
//!   id;
//! - the **dialler**: the listener's certificate names this cluster and
//!   the node it meant to dial, so an address that now leads elsewhere (a
//!   forged hello, a stale address) cannot redirect its traffic.
//!
//! A refusal is counted in `rejected_certificate` (on either side) and
//! logged with `tracing::warn!`. There is no challenge frame in this mode:
//! both ends export the connection's base key and listener nonce from the
//! TLS session ([`crate::handshake`]), then the hello and frames follow
//! exactly as in shared-secret mode.
//!
//! The listener and dialler configurations live behind one lock, and
//! [`Transport::reload_tls`](crate::Transport::reload_tls) swaps them:
//! connections made after it use the new identity, open ones keep theirs.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;

use crate::frame::FrameKey;
use crate::handshake::{self, Nonce};
use crate::san;
use crate::shared::BoxIo;

/// What a node needs for mutual TLS: the cluster CA it trusts, its own
/// certificate chain (its certificate first) and its private key.
///
/// ```
/// use tenure_transport::{certs, TlsIdentity};
/// let ca = certs::new_cluster_ca("prod")?;
/// let n1 = certs::issue_node(&ca, "prod", "n1", &[], 30)?;
/// let identity = TlsIdentity::from_pem(&ca.cert_pem, &n1.cert_pem, &n1.key_pem)?;
/// assert_eq!(identity.names()?.1, "n1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TlsIdentity {
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Why a TLS identity could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A PEM input holds no usable item of the kind named.
    #[error("{what}: {reason}")]
    Pem {
        /// "CA certificate", "certificate chain" or "private key".
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The node's own certificate does not name this node of this cluster.
    #[error("this node's certificate {0}")]
    Name(String),
    /// rustls refused the identity (a key that does not match, a CA it
    /// cannot use).
    #[error("TLS configuration: {0}")]
    Config(String),
    /// [`Transport::reload_tls`](crate::Transport::reload_tls) on a
    /// transport in shared-secret mode.
    #[error("this transport is not in mutual-TLS mode")]
    NotTls,
}

impl TlsIdentity {
    /// Parses PEM text: the CA certificate(s), the node's chain (its own
    /// certificate first, intermediates after), and its private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(ca_pem: &str, chain_pem: &str, key_pem: &str) -> Result<TlsIdentity, TlsError> {
        let certs = |what, pem: &str| {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Pem {
                    what,
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsError::Pem {
                    what,
                    reason: "no certificate in it".into(),
                });
            }
            Ok(certs)
        };
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem {
            what: "private key",
            reason: e.to_string(),
        })?;
        Ok(TlsIdentity {
            ca: certs("CA certificate", ca_pem)?,
            chain: certs("certificate chain", chain_pem)?,
            key,
        })
    }

    /// Reads and parses three PEM files (see [`TlsIdentity::from_pem`]).
    pub fn load(ca: &Path, chain: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        TlsIdentity::from_pem(&read(ca)?, &read(chain)?, &read(key)?)
    }

    /// The (cluster, node id) this identity's certificate names.
    pub fn names(&self) -> Result<(String, String), TlsError> {
        let own = self.chain.first().ok_or_else(|| TlsError::Pem {
            what: "certificate chain",
            reason: "empty".into(),
        })?;
        san::certificate_names(own).map_err(TlsError::Name)
    }
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for TlsIdentity {
    /// The names and sizes; never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("names", &self.names().ok())
            .field("ca_certificates", &self.ca.len())
            .field("chain_certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The rustls configurations of one identity, for both ends.
#[derive(Debug)]
pub(crate) struct TlsConfigs {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

impl TlsConfigs {
    /// Builds both configurations, after checking that the identity names
    /// `node` of `cluster`.
    pub fn new(identity: &TlsIdentity, cluster: &str, node: &str) -> Result<TlsConfigs, TlsError> {
        let names = identity.names()?;
        if names != (cluster.to_owned(), node.to_owned()) {
            return Err(TlsError::Name(format!(
                "names node {:?} of cluster {:?}, not {node:?} of {cluster:?}",
                names.1, names.0
            )));
        }
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in &identity.ca {
            roots.add(ca.clone()).map_err(config)?;
        }
        let roots = Arc::new(roots);
        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_client_cert_verifier(clients)
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(config)?;
        let servers = Arc::new(ClusterServerVerifier {
            roots,
            algorithms: provider.signature_verification_algorithms,
        });
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .dangerous()
            .with_custom_certificate_verifier(servers)
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(config)?;
        Ok(TlsConfigs {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

/// Verifies a listener's chain to the cluster CA and its validity, like
/// webpki's server verifier, but without a DNS name: which node the
/// certificate names is checked once the handshake is done.
#[derive(Debug)]
struct ClusterServerVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ClusterServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a TLS handshake did not give a usable connection.
#[derive(Debug)]
pub(crate) enum TlsRefusal {
    /// The peer's certificate was refused (counted in
    /// `rejected_certificate`).
    Certificate(String),
    /// The peer spoke something other than TLS (counted as malformed).
    Malformed(String),
    /// The connection failed or closed: nothing to count.
    Ended(String),
}

impl TlsRefusal {
    fn from_io(e: &std::io::Error) -> TlsRefusal {
        use rustls::Error as E;
        match e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) {
            Some(
                err @ (E::InvalidCertificate(_)
                | E::NoCertificatesPresented
                | E::UnsupportedNameType
                | E::InvalidCertRevocationList(_)),
            ) => TlsRefusal::Certificate(err.to_string()),
            // The peer refused *our* certificate: its business, and its count.
            Some(err @ E::AlertReceived(_)) => TlsRefusal::Ended(err.to_string()),
            Some(err) => TlsRefusal::Malformed(format!("TLS: {err}")),
            None => TlsRefusal::Ended(e.to_string()),
        }
    }
}

/// What a finished TLS handshake gives the frame layer.
pub(crate) struct Secured {
    pub io: BoxIo,
    /// The connection's base key and listener nonce, exported from the
    /// session ([`handshake`]).
    pub base: FrameKey,
    pub listener_nonce: Nonce,
    /// The (cluster, node id) the peer's certificate names.
    pub peer: (String, String),
}

/// Checks what a finished handshake says about the peer, and derives the
/// connection's base key and listener nonce from the exported `material`.
fn session(
    conn: &rustls::CommonState,
    material: Result<[u8; 2 * handshake::NONCE_LEN], rustls::Error>,
) -> Result<(FrameKey, Nonce, (String, String)), TlsRefusal> {
    let cert = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| TlsRefusal::Certificate("no certificate presented".into()))?;
    let peer = san::certificate_names(cert).map_err(TlsRefusal::Certificate)?;
    let material = material.map_err(|e| TlsRefusal::Ended(format!("cannot export keys: {e}")))?;
    let (base, listener_nonce) = handshake::tls_keys(&material)
        .map_err(|e| TlsRefusal::Ended(format!("cannot derive keys: {e}")))?;
    Ok((base, listener_nonce, peer))
}

/// The listener's TLS handshake on an accepted connection.
pub(crate) async fn accept(configs: &TlsConfigs, stream: TcpStream) -> Result<Secured, TlsRefusal> {
    let acceptor = tokio_rustls::TlsAcceptor::from(configs.server.clone());
    let tls = acceptor
        .accept(stream)
        .await
        .map_err(|e| TlsRefusal::from_io(&e))?;
    let conn = tls.get_ref().1;
    let material = conn.export_keying_material([0; 64], handshake::TLS_EXPORTER_LABEL, None);
    let (base, listener_nonce, peer) = session(conn, material)?;
    Ok(Secured {
        io: Box::new(tls),
        base,
        listener_nonce,
        peer,
    })
}

/// The dialler's TLS handshake on a connection to `addr`.
pub(crate) async fn connect(
    configs: &TlsConfigs,
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<Secured, TlsRefusal> {
    let connector = tokio_rustls::TlsConnector::from(configs.client.clone());
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = connector
        .connect(name, stream)
        .await
        .map_err(|e| TlsRefusal::from_io(&e))?;
    let conn = tls.get_ref().1;
    let material = conn.export_keying_material([0; 64], handshake::TLS_EXPORTER_LABEL, None);
    let (base, listener_nonce, peer) = session(conn, material)?;
    Ok(Secured {
        io: Box::new(tls),
        base,
        listener_nonce,
        peer,
    })
}
