//! Making the certificates of mutual-TLS mode: a cluster CA, and node
//! certificates it signs (what `tenure certs` writes to files).
//!
//! Every key is ECDSA P-256; every certificate is PEM. A node certificate
//! names its node with the URI SAN `tenure://<cluster>/<node-id>` (see
//! [`crate::san`]), may carry extra DNS or IP SANs for other tools, and is
//! good for both ends of a connection (TLS server and client auth), since
//! every node both dials and listens.
//!
//! ```
//! use tenure_transport::{certs, TlsIdentity};
//! let ca = certs::new_cluster_ca("prod")?;
//! let node = certs::issue_node(&ca, "prod", "n1", &["n1.example".into(), "10.0.0.1".into()], 365)?;
//! let identity = TlsIdentity::from_pem(&ca.cert_pem, &node.cert_pem, &node.key_pem)?;
//! assert_eq!(identity.names()?, ("prod".to_owned(), "n1".to_owned()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::san;

/// How long [`new_cluster_ca`]'s CA is valid: ten years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A cluster CA: its certificate (give it to every node) and its private
/// key (keep it off the nodes; it signs their certificates).
#[derive(Clone)]
pub struct CaFiles {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA's private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for CaFiles {
    /// The certificate; never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFiles")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A node's certificate, signed by the cluster CA, and its private key.
#[derive(Clone)]
pub struct NodePem {
    /// The node certificate, PEM (the CA's is not appended).
    pub cert_pem: String,
    /// The node's private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for NodePem {
    /// The certificate; never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePem")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The node id is empty or longer than the wire format's 255 bytes.
    #[error("node id {0:?}: {1}")]
    NodeId(String, String),
    /// A SAN is neither an IP address nor a DNS name rcgen accepts.
    #[error("SAN {0:?} is neither an IP address nor an ASCII DNS name")]
    San(String),
    /// The validity period ends before it starts.
    #[error("the validity period ends before it starts")]
    Validity,
    /// rcgen refused (a CA file that does not parse, a key it cannot use).
    #[error("{0}")]
    Rcgen(#[from] rcgen::Error),
}

/// A new cluster CA, valid from now for [`CA_VALIDITY`].
pub fn new_cluster_ca(cluster: &str) -> Result<CaFiles, CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(format!("tenure cluster CA {cluster}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now();
    set_validity(&mut params, now, now + CA_VALIDITY)?;
    params.serial_number = Some(serial());
    let cert = params.self_signed(&key)?;
    Ok(CaFiles {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A certificate for `node` of `cluster`, signed by `ca`, valid from now
/// for `days` days. `sans` are extra names: each one that parses as an IP
/// address becomes an IP SAN, any other a DNS SAN.
pub fn issue_node(
    ca: &CaFiles,
    cluster: &str,
    node: &str,
    sans: &[String],
    days: u32,
) -> Result<NodePem, CertError> {
    let now = SystemTime::now();
    let days = Duration::from_secs(u64::from(days) * 24 * 3600);
    issue_node_between(ca, cluster, node, sans, now, now + days)
}

/// [`issue_node`] with an explicit validity period (e.g. to test that an
/// expired certificate is refused).
pub fn issue_node_between(
    ca: &CaFiles,
    cluster: &str,
    node: &str,
    sans: &[String],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<NodePem, CertError> {
    crate::config::check_node_id(node).map_err(|why| CertError::NodeId(node.to_owned(), why))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, KeyPair::from_pem(&ca.key_pem)?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(format!("tenure node {node} of {cluster}"));
    params
        .subject_alt_names
        .push(SanType::URI(san::node_uri(cluster, node).try_into()?));
    for extra in sans {
        params.subject_alt_names.push(match extra.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                extra
                    .as_str()
                    .try_into()
                    .map_err(|_| CertError::San(extra.clone()))?,
            ),
        });
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, not_before, not_after)?;
    params.serial_number = Some(serial());
    let cert = params.signed_by(&key, &issuer)?;
    Ok(NodePem {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The scheme of the URI SAN that names an admin client: an admin
/// endpoint with `client-ca` accepts a client certificate only with one
/// `tenure-admin://CLUSTER/NAME` URI — so a member's node certificate,
/// from the same CA, is no admin credential.
pub const ADMIN_PREFIX: &str = "tenure-admin://";

/// A client certificate for the admin endpoint of `cluster`'s nodes,
/// naming the operator or tool `name` (what the audit log records), signed
/// by `ca`, valid from now for `days` days.
pub fn issue_admin_client(
    ca: &CaFiles,
    cluster: &str,
    name: &str,
    days: u32,
) -> Result<NodePem, CertError> {
    crate::config::check_node_id(name).map_err(|why| CertError::NodeId(name.to_owned(), why))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, KeyPair::from_pem(&ca.key_pem)?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = self::name(format!("tenure admin {name} of {cluster}"));
    let uri = san::node_uri(cluster, name).replacen(san::PREFIX, ADMIN_PREFIX, 1);
    params.subject_alt_names.push(SanType::URI(uri.try_into()?));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let now = SystemTime::now();
    let days = Duration::from_secs(u64::from(days) * 24 * 3600);
    set_validity(&mut params, now, now + days)?;
    params.serial_number = Some(serial());
    let cert = params.signed_by(&key, &issuer)?;
    Ok(NodePem {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The (cluster, name) an admin client certificate (DER) names, if it
/// holds exactly one `tenure-admin://` URI SAN in its canonical spelling.
pub fn admin_client_names(der: &[u8]) -> Option<(String, String)> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let sans = cert.subject_alternative_name().ok()??;
    let mut found = sans.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(uri) if uri.starts_with(ADMIN_PREFIX) => Some(*uri),
        _ => None,
    });
    let (Some(uri), None) = (found.next(), found.next()) else {
        return None;
    };
    san::parse_node_uri(&uri.replacen(ADMIN_PREFIX, san::PREFIX, 1))
}

fn name(common_name: String) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn set_validity(
    params: &mut CertificateParams,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<(), CertError> {
    if not_after <= not_before {
        return Err(CertError::Validity);
    }
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    Ok(())
}

/// A random positive 127-bit serial number.
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7F;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_node_certificate_names_its_node() {
        let ca = new_cluster_ca("prod").unwrap();
        let sans = ["10.0.0.1".to_owned(), "n1.example".to_owned()];
        let node = issue_node(&ca, "prod", "n/1", &sans, 30).unwrap();
        assert_eq!(
            san::certificate_names(&der(&node.cert_pem)),
            Ok(("prod".into(), "n/1".into()))
        );
        // The CA names no node.
        assert!(san::certificate_names(&der(&ca.cert_pem)).is_err());
        assert!(!format!("{ca:?} {node:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn bad_requests_are_refused() {
        let ca = new_cluster_ca("prod").unwrap();
        assert!(matches!(
            issue_node(&ca, "prod", "", &[], 1),
            Err(CertError::NodeId(..))
        ));
        assert!(matches!(
            issue_node(&ca, "prod", "n1", &["bad name ü".into()], 1),
            Err(CertError::San(_))
        ));
        let now = SystemTime::now();
        assert!(matches!(
            issue_node_between(&ca, "prod", "n1", &[], now, now),
            Err(CertError::Validity)
        ));
        let broken = CaFiles {
            cert_pem: "not a certificate".into(),
            key_pem: ca.key_pem.clone(),
        };
        assert!(matches!(
            issue_node(&broken, "prod", "n1", &[], 1),
            Err(CertError::Rcgen(_))
        ));
    }
}
