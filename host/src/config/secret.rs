//! How strong a cluster secret or an admin token must be.
//!
//! Length alone does not make a secret: sixteen spaces are sixteen bytes.
//! A secret must also look random enough — at least
//! [`MIN_ESTIMATED_BITS`] by a Shannon estimate over its bytes (length
//! times the entropy of its byte frequencies), which any secret made with
//! `openssl rand -hex 16` or `head -c 24 /dev/urandom | base64` passes and
//! repetitions like `abababab…` fail — and it must not be one of the
//! secrets printed in this repository's examples, unless every address the
//! node uses is loopback (the examples' own setting).

use std::collections::BTreeSet;
use std::net::SocketAddr;

/// The least estimated entropy, in bits, of an accepted secret or token.
pub const MIN_ESTIMATED_BITS: f64 = 48.0;

/// Secrets printed in the repository (example configs, the demo, the test
/// kit): public by definition, so accepted only on loopback.
pub const PUBLISHED_SECRETS: &[&str] = &[
    "example-cluster-secret-change-me",
    "tenure-demo-secret-not-for-production",
    "local-cluster-secret-0123456789",
];

/// Why `secret` looks too weak, if it does.
pub fn check_strength(secret: &[u8]) -> Result<(), String> {
    let bits = estimated_bits(secret);
    if bits < MIN_ESTIMATED_BITS {
        return Err(format!(
            "it looks like about {bits:.0} bits of randomness, below {MIN_ESTIMATED_BITS:.0} \
             (make one with `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

/// Refuses a weak cluster secret, or a published one used off loopback
/// (`addresses` are every address the node listens on or dials).
pub fn check_cluster_secret(
    secret: &[u8],
    addresses: impl IntoIterator<Item = SocketAddr>,
) -> Result<(), String> {
    check_strength(secret)?;
    let published = PUBLISHED_SECRETS
        .iter()
        .any(|p| p.as_bytes() == secret.trim_ascii());
    if published && addresses.into_iter().any(|a| !a.ip().is_loopback()) {
        return Err(
            "it is printed in Tenure's examples, so it is no secret; it is accepted only when \
             every address is loopback (make one with `openssl rand -hex 32`)"
                .into(),
        );
    }
    Ok(())
}

/// Length times the Shannon entropy of the byte frequencies.
fn estimated_bits(secret: &[u8]) -> f64 {
    if secret.is_empty() {
        return 0.0;
    }
    let distinct: BTreeSet<u8> = secret.iter().copied().collect();
    let len = secret.len() as f64;
    let per_byte: f64 = distinct
        .iter()
        .map(|b| {
            let p = secret.iter().filter(|x| *x == b).count() as f64 / len;
            -p * p.log2()
        })
        .sum();
    per_byte * len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_secrets_are_weak_and_random_ones_are_not() {
        assert!(check_strength(&[b' '; 16]).is_err());
        assert!(check_strength(b"abababababababababababab").is_err());
        assert!(check_strength(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab").is_err());
        assert!(check_strength(b"0123456789abcdef").is_ok());
        // `openssl rand -hex 16`-shaped secrets pass, with repeats.
        assert!(check_strength(b"3f2a9c0d11e4b7a53f2a9c0d11e4b7a5").is_ok());
        assert!(check_strength(b"example-cluster-secret-change-me").is_ok());
    }

    #[test]
    fn published_secrets_work_on_loopback_only() {
        let loopback: SocketAddr = "127.0.0.1:7101".parse().expect("address");
        let remote: SocketAddr = "10.0.0.2:7101".parse().expect("address");
        for secret in PUBLISHED_SECRETS {
            assert!(check_cluster_secret(secret.as_bytes(), [loopback]).is_ok());
            let refused = check_cluster_secret(secret.as_bytes(), [loopback, remote]);
            assert!(
                refused.is_err_and(|why| why.contains("examples")),
                "{secret}"
            );
        }
        assert!(check_cluster_secret(b"3f2a9c0d11e4b7a5c0ffee", [remote]).is_ok());
    }
}
