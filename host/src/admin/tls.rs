//! HTTPS for the admin endpoint (`[admin-tls]`), and admin client
//! certificates as the alternative to tokens.
//!
//! With `cert` and `key` the endpoint speaks only TLS 1.2+ (rustls, the
//! ring provider). With `client-ca` too, a client may present a
//! certificate of that CA naming an admin of this cluster (one URI SAN
//! `tenure-admin://CLUSTER/NAME`, as `tenure certs --admin NAME` makes):
//! such a request is let through as `cert:NAME` without a token. A client
//! without a certificate still gets in with a token; a certificate of
//! another CA fails the handshake; a certificate of this CA that names no
//! admin (a member's node certificate) counts for nothing — members are not
//! admins.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::AdminTlsConfig;

/// The admin a request's client certificate names, in its extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate(pub String);

/// The server side of `[admin-tls]`: its rustls configuration.
pub(super) fn server_config(tls: &AdminTlsConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = certificates(&tls.cert).context("`admin-tls.cert`")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("`admin-tls.key`: reading {}", tls.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca).context("`admin-tls.client-ca`")? {
                roots
                    .add(cert)
                    .context("`admin-tls.client-ca`: not a CA certificate rustls accepts")?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .context("`admin-tls.client-ca`")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("`admin-tls`: the certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The admin of `cluster` a verified client certificate names, if any.
pub(super) fn client_name(connection: &rustls::ServerConnection, cluster: &str) -> Option<String> {
    let first = connection.peer_certificates()?.first()?;
    let (named_cluster, name) = tenure_transport::certs::admin_client_names(first.as_ref())?;
    (named_cluster == cluster).then_some(name)
}

/// The certificates in the PEM file `path`: at least one.
pub(crate) fn certificates(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}
