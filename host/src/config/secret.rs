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
/// (`off_loopback`: some address the node listens on or dials is not
/// loopback; a peer's DNS name counts as off loopback unless it is
/// `localhost`).
pub fn check_cluster_secret(secret: &[u8], off_loopback: bool) -> Result<(), String> {
    check_strength(secret)?;
    let published = PUBLISHED_SECRETS
        .iter()
        .any(|p| p.as_bytes() == secret.trim_ascii());
    if published && off_loopback {
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
        for secret in PUBLISHED_SECRETS {
            assert!(check_cluster_secret(secret.as_bytes(), false).is_ok());
            let refused = check_cluster_secret(secret.as_bytes(), true);
            assert!(
                refused.is_err_and(|why| why.contains("examples")),
                "{secret}"
            );
        }
        assert!(check_cluster_secret(b"3f2a9c0d11e4b7a5c0ffee", true).is_ok());
    }
}
