//! What makes a connection's frames fresh: nonces, per-connection keys and
//! sequence numbers.
//!
//! The cluster secret alone proves a frame was made by a member, not that
//! it was made *now*. So no frame is signed with the secret itself, except
//! the listener's challenge:
//!
//! 1. Right after accepting a connection, the listener writes a
//!    [`Kind::Challenge`] frame: `from` its
//!    node id, `to` empty, sequence 0, payload a fresh random
//!    [`NONCE_LEN`]-byte nonce, MAC'd with the cluster secret.
//! 2. The dialler checks it (cluster, MAC, and that `from` is the node it
//!    meant to dial), draws its own nonce, and derives the connection's
//!    [`ConnectionKeys`] from the secret and both nonces.
//! 3. The dialler's hello (see [`hello_payload`]) echoes the listener's
//!    nonce and carries its own; it and every later frame the dialler
//!    writes are MAC'd with [`ConnectionKeys::dialler`]. The listener's
//!    only later frame, a refusal, is MAC'd with
//!    [`ConnectionKeys::listener`].
//!
//! Every frame signed with a connection key carries a sequence number:
//! 0 for the first frame in its direction (the hello; the refusal), then
//! 1, 2, ... A receiver accepts only the next number. The number travels in
//! the frame (8 bytes) rather than staying implicit, so a frame whose MAC
//! verifies but whose number is stale is told apart from a forgery and
//! counted as a replay (`rejected_replayed`), not as unauthenticated.
//!
//! What this refuses:
//!
//! - a recorded connection replayed on a new one: its hello echoes an old
//!   challenge. The listener derives the keys from the nonces the hello
//!   names; if the MAC verifies under them, a member made this hello for
//!   another connection: `rejected_replayed`;
//! - a recorded frame spliced into a fresh connection: it was MAC'd with
//!   another connection's key, which the receiver cannot tell from a
//!   forgery: `rejected_unauthenticated`;
//! - a frame repeated (or dropped, or reordered) on its own connection: its
//!   MAC verifies, its number is not the next: `rejected_replayed`.
//!
//! In mutual-TLS mode there is no challenge frame: TLS already makes every
//! connection's keys fresh, and both ends export the same 64 bytes from the
//! TLS session (RFC 5705, label [`TLS_EXPORTER_LABEL`]): the first 32 are
//! the base key (in place of the secret), the last 32 the listener nonce
//! (in place of the challenge's). The hello and the frames after it are
//! then made and checked exactly as above, with no extra round trip.
//!

use std::net::SocketAddr;

use bytes::Bytes;

use crate::frame::{self, FrameError, FrameKey, Kind};

/// Length in bytes of the listener's and the dialler's nonces.
pub const NONCE_LEN: usize = 32;

/// A random value drawn for one connection.
pub type Nonce = [u8; NONCE_LEN];

/// Label of the key that signs what the dialler writes.
const DIALLER_LABEL: &[u8] = b"tenure-transport v2 dialler key\0";
/// Label of the key that signs what the listener writes.
const LISTENER_LABEL: &[u8] = b"tenure-transport v2 listener key\0";

/// The RFC 5705 exporter label both ends of a TLS connection use to derive
/// the connection's base key and listener nonce.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-tenure-transport-v2";

/// A fresh random nonce.
pub fn fresh_nonce() -> Nonce {
    rand::random()
}

/// The two keys of one connection, one per direction, so a frame one side
/// wrote can never be reflected back to it.
///
/// ```
/// use tenure_transport::frame::{self, FrameKey, Kind};
/// use tenure_transport::handshake::ConnectionKeys;
/// let secret = FrameKey::new(b"a cluster secret of 16+ bytes").unwrap();
/// let this = ConnectionKeys::derive(&secret, &[1; 32], &[2; 32]).unwrap();
/// let other = ConnectionKeys::derive(&secret, &[1; 32], &[3; 32]).unwrap();
/// let body = frame::encode(&this.dialler, Kind::Protocol, "c", "a", "b", 1, b"x").unwrap();
/// let frame = frame::decode(&body).unwrap();
/// assert!(frame.verify(&this.dialler));
/// assert!(!frame.verify(&other.dialler) && !frame.verify(&this.listener));
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionKeys {
    /// Signs the dialler's hello and messages.
    pub dialler: FrameKey,
    /// Signs the listener's refusal.
    pub listener: FrameKey,
}

impl ConnectionKeys {
    /// HMAC-SHA256, keyed with `base` (the cluster secret, or the TLS
    /// session's exported key), of a per-direction label, the listener's
    /// nonce and the dialler's nonce.
    pub fn derive(
        base: &FrameKey,
        listener_nonce: &Nonce,
        dialler_nonce: &Nonce,
    ) -> Result<ConnectionKeys, frame::KeyError> {
        let key = |label: &[u8]| FrameKey::new(&base.tag(&[label, listener_nonce, dialler_nonce]));
        Ok(ConnectionKeys {
            dialler: key(DIALLER_LABEL)?,
            listener: key(LISTENER_LABEL)?,
        })
    }
}

/// What a TLS session yields in place of the secret and the challenge:
/// the base key (the first 32 exported bytes) and the listener nonce (the
/// last 32), so both ends know them without sending anything.
pub fn tls_keys(material: &[u8; 2 * NONCE_LEN]) -> Result<(FrameKey, Nonce), frame::KeyError> {
    let (base, nonce) = material.split_at(NONCE_LEN);
    let mut listener_nonce = [0; NONCE_LEN];
    listener_nonce.copy_from_slice(nonce);
    Ok((FrameKey::new(base)?, listener_nonce))
}

/// The listener's challenge frame: `from` the listener, `to` empty,
/// sequence 0, the nonce as payload, MAC'd with the cluster secret.
pub fn challenge(
    secret: &FrameKey,
    cluster_id: &str,
    listener: &str,
    nonce: &Nonce,
) -> Result<Bytes, FrameError> {
    frame::encode(secret, Kind::Challenge, cluster_id, listener, "", 0, nonce)
}

/// Why a dialler gave up on a listener's challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// It is not a well-formed version-2 frame.
    #[error("malformed challenge: {0}")]
    Malformed(String),
    /// It is another kind of frame (an old or foreign listener).
    #[error("expected a challenge, got a {0:?} frame")]
    NotAChallenge(Kind),
    /// It carries another cluster's id.
    #[error("the listener is in cluster {0:?}")]
    ForeignCluster(String),
    /// Its MAC does not verify under the cluster secret.
    #[error("the challenge's MAC does not verify (another secret?)")]
    Unauthenticated,
    /// It comes from another node than the one dialled (a stale or
    /// forged address).
    #[error("the listener is node {0:?}")]
    WrongNode(String),
}

/// Checks a listener's challenge as the dialler of `peer` and returns its
/// nonce.
pub fn check_challenge(
    secret: &FrameKey,
    cluster_id: &str,
    peer: &str,
    body: &[u8],
) -> Result<Nonce, ChallengeError> {
    let frame = frame::decode(body).map_err(|e| ChallengeError::Malformed(e.to_string()))?;
    if frame.kind != Kind::Challenge {
        return Err(ChallengeError::NotAChallenge(frame.kind));
    }
    if frame.cluster_id != cluster_id {
        return Err(ChallengeError::ForeignCluster(clip(frame.cluster_id)));
    }
    if !frame.verify(secret) {
        return Err(ChallengeError::Unauthenticated);
    }
    if frame.from != peer {
        return Err(ChallengeError::WrongNode(clip(frame.from)));
    }
    frame
        .payload
        .try_into()
        .map_err(|_| ChallengeError::Malformed(format!("a {}-byte nonce", frame.payload.len())))
}

/// A hello's payload: the listener's nonce (echoed), the dialler's nonce,
/// then as text the dialler's listen address, a space and its process's
/// incarnation in hex. Later space-separated words are ignored, so the
/// hello can grow.
///
/// ```
/// use tenure_transport::handshake::{hello_payload, split_hello};
/// let payload = hello_payload(&[1; 32], &[2; 32], "127.0.0.1:7001".parse().unwrap(), 0x3f);
/// let (echo, nonce, text) = split_hello(&payload).unwrap();
/// assert_eq!((echo, nonce, text), ([1; 32], [2; 32], &b"127.0.0.1:7001 000000000000003f"[..]));
/// ```
pub fn hello_payload(echo: &Nonce, nonce: &Nonce, listen: SocketAddr, incarnation: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 * NONCE_LEN + 64);
    payload.extend_from_slice(echo);
    payload.extend_from_slice(nonce);
    payload.extend_from_slice(format!("{listen} {incarnation:016x}").as_bytes());
    payload
}

/// Splits a hello's payload into the echoed nonce, the dialler's nonce and
/// the text after them; `None` if it is too short.
pub fn split_hello(payload: &[u8]) -> Option<(Nonce, Nonce, &[u8])> {
    let (echo, rest) = payload.split_first_chunk::<NONCE_LEN>()?;
    let (nonce, text) = rest.split_first_chunk::<NONCE_LEN>()?;
    Some((*echo, *nonce, text))
}

/// At most 64 characters of a peer-supplied string, for a log line or a
/// reason: a foreign cluster id or a hello address may be up to a frame
/// long. Reasons print it with `{:?}`, which escapes control characters.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> FrameKey {
        FrameKey::new(b"handshake-test-secret").unwrap()
    }

    #[test]
    fn keys_differ_per_direction_and_per_nonce() {
        let keys = ConnectionKeys::derive(&secret(), &[1; 32], &[2; 32]).unwrap();
        let same = ConnectionKeys::derive(&secret(), &[1; 32], &[2; 32]).unwrap();
        let other = ConnectionKeys::derive(&secret(), &[9; 32], &[2; 32]).unwrap();
        let print = |k: &FrameKey| k.tag(&[b"probe"]);
        assert_eq!(print(&keys.dialler), print(&same.dialler));
        assert_ne!(print(&keys.dialler), print(&keys.listener));
        assert_ne!(print(&keys.dialler), print(&other.dialler));
    }

    #[test]
    fn challenges_are_checked() {
        let nonce = fresh_nonce();
        let body = challenge(&secret(), "c", "b", &nonce).unwrap();
        assert_eq!(check_challenge(&secret(), "c", "b", &body), Ok(nonce));
        assert_eq!(
            check_challenge(&secret(), "c", "x", &body),
            Err(ChallengeError::WrongNode("b".into()))
        );
        assert!(matches!(
            check_challenge(&secret(), "d", "b", &body),
            Err(ChallengeError::ForeignCluster(_))
        ));
        let other = FrameKey::new(b"another secret, 16+").unwrap();
        assert_eq!(
            check_challenge(&other, "c", "b", &body),
            Err(ChallengeError::Unauthenticated)
        );
        let short = frame::encode(&secret(), Kind::Challenge, "c", "b", "", 0, b"x").unwrap();
        assert!(matches!(
            check_challenge(&secret(), "c", "b", &short),
            Err(ChallengeError::Malformed(_))
        ));
        let hello = frame::encode(&secret(), Kind::Hello, "c", "b", "", 0, &nonce).unwrap();
        assert_eq!(
            check_challenge(&secret(), "c", "b", &hello),
            Err(ChallengeError::NotAChallenge(Kind::Hello))
        );
    }

    #[test]
    fn short_hellos_do_not_split() {
        assert_eq!(split_hello(&[0; 63]), None);
        assert!(split_hello(&[0; 64]).is_some());
    }

    #[test]
    fn peer_strings_are_clipped_for_logs() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(clip(&long), format!("{}...", "é".repeat(64)));
    }
}
