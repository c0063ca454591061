//! How a certificate names a node: one URI subject alternative name,
//! `tenure://<cluster>/<node-id>`.
//!
//! Both parts are percent-encoded as UTF-8: every byte but the RFC 3986
//! unreserved characters (`A-Z a-z 0-9 - . _ ~`) is written `%XX`
//! (uppercase hex), so any cluster or node id the wire format can carry has
//! exactly one spelling, and `/` in an id cannot split it. A certificate
//! must hold exactly one `tenure://` URI; other SANs (DNS names, IPs for
//! other tools) are ignored.
//!
//! ```
//! use tenure_transport::san;
//! assert_eq!(san::node_uri("prod", "n1"), "tenure://prod/n1");
//! assert_eq!(san::node_uri("eu west", "db/1"), "tenure://eu%20west/db%2F1");
//! assert_eq!(san::parse_node_uri("tenure://eu%20west/db%2F1"), Some(("eu west".into(), "db/1".into())));
//! ```

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The scheme and separator every node URI starts with.
pub const PREFIX: &str = "tenure://";

/// The URI SAN naming `node` of `cluster`.
pub fn node_uri(cluster: &str, node: &str) -> String {
    format!("{PREFIX}{}/{}", encode(cluster), encode(node))
}

/// The (cluster, node id) a node URI names; `None` if `uri` is not one (or
/// is not in its one canonical spelling).
pub fn parse_node_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix(PREFIX)?;
    let (cluster, node) = rest.split_once('/')?;
    let (cluster, node) = (decode(cluster)?, decode(node)?);
    // Only the canonical spelling: one identity, one string.
    (node_uri(&cluster, &node) == uri && !node.is_empty()).then_some((cluster, node))
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The (cluster, node id) a DER certificate names in its one `tenure://`
/// URI SAN, or why it names none.
pub fn certificate_names(der: &[u8]) -> Result<(String, String), String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("certificate does not parse: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?
        .ok_or_else(|| "certificate has no subjectAltName".to_owned())?;
    let mut names = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with(PREFIX) => Some(*uri),
            _ => None,
        });
    let uri = names
        .next()
        .ok_or_else(|| format!("certificate has no {PREFIX} URI"))?;
    if names.next().is_some() {
        return Err(format!("certificate has more than one {PREFIX} URI"));
    }
    parse_node_uri(uri).ok_or_else(|| format!("{uri:?} is not a node URI"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips() {
        for (cluster, node) in [
            ("prod", "n1"),
            ("", "n"),
            ("a/b", "c%d"),
            ("ünïcode", "ノード"),
            ("x y", "~._-"),
        ] {
            let uri = node_uri(cluster, node);
            assert!(uri.is_ascii(), "{uri}");
            assert_eq!(
                parse_node_uri(&uri),
                Some((cluster.to_owned(), node.to_owned())),
                "{uri}"
            );
        }
    }

    #[test]
    fn only_canonical_node_uris_parse() {
        for bad in [
            "tenure://prod",
            "tenure://prod/",
            "https://prod/n1",
            "tenure://prod/n%2",
            "tenure://prod/n%zz",
            "tenure://prod/a/b",
            "tenure://pr%6Fd/n1",
            "tenure://prod/%c3%bc",
            "tenure://prod/%FF",
        ] {
            assert_eq!(parse_node_uri(bad), None, "{bad}");
        }
        assert_eq!(
            parse_node_uri("tenure://prod/%C3%BC"),
            Some(("prod".into(), "ü".into()))
        );
    }

    #[test]
    fn junk_is_not_a_certificate() {
        assert!(certificate_names(b"not DER").is_err());
        assert!(certificate_names(&[]).is_err());
    }
}
