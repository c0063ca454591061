//! The frame body: encoding, structural decoding and the HMAC.
//!
//! This module knows nothing about sockets. [`encode`] builds a complete,
//! authenticated frame body; [`decode`] splits a body into its fields
//! without trusting it, and [`Frame::verify`] checks its MAC. The length
//! prefix around a body is added and removed by
//! [`tokio_util::codec::LengthDelimitedCodec`] in the connection tasks.
//!
//! Layout (see the crate documentation for the whole wire format):
//!
//! ```text
//! version u8 | kind u8 | cluster_id (u16 BE len + bytes) | from (u8 len + bytes)
//!            | to (u8 len + bytes) | seq u64 BE | payload (the rest)
//!            | HMAC-SHA256 (32 bytes)
//! ```
//!
//! Which key signs a frame, and which sequence number it must carry, is the
//! connection's business: see [`crate::handshake`].

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The only wire-format version this crate speaks. Version 2 added the
/// sequence number, the challenge frame and per-connection keys.
pub const VERSION: u8 = 2;

/// Length in bytes of the HMAC-SHA256 tag that ends every frame body.
pub const MAC_LEN: usize = 32;

/// Longest cluster id the wire format can carry (its length is a `u16`).
pub const MAX_CLUSTER_ID_LEN: usize = u16::MAX as usize;

/// Longest node id the wire format can carry (its length is a `u8`).
pub const MAX_NODE_ID_LEN: usize = u8::MAX as usize;

/// Length in bytes of the sequence number every frame carries.
pub const SEQ_LEN: usize = 8;

/// Size of a frame body with empty ids and an empty payload:
/// version, kind, the three length fields, the sequence number and the MAC.
pub const MIN_FRAME_LEN: usize = 1 + 1 + 2 + 1 + 1 + SEQ_LEN + MAC_LEN;

/// What a frame carries; the `kind` byte on the wire.
///
/// ```
/// use tenure_transport::frame::Kind;
/// assert_eq!(Kind::Plugin.to_byte(), 2);
/// assert_eq!(Kind::from_byte(0), Some(Kind::Hello));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The dialler's first frame on a connection: it answers the challenge
    /// and introduces the sender (see [`crate::handshake`]).
    Hello,
    /// A payload of the election protocol.
    Protocol,
    /// A payload for a behaviour plugin.
    Plugin,
    /// A payload for the receiving host itself (e.g. a forwarded call).
    Host,
    /// A listener's answer on a dialled connection, just before it closes
    /// it: the payload says why the dialler is refused (the only frame
    /// that travels from listener to dialler). Sent to a second process
    /// claiming a node id that a live process holds.
    Refusal,
    /// The listener's first frame on an accepted connection (shared-secret
    /// mode only): a fresh random nonce the dialler's hello must echo.
    Challenge,
}

impl Kind {
    /// The wire value of this kind.
    pub fn to_byte(self) -> u8 {
        match self {
            Kind::Hello => 0,
            Kind::Protocol => 1,
            Kind::Plugin => 2,
            Kind::Host => 3,
            Kind::Refusal => 4,
            Kind::Challenge => 5,
        }
    }

    /// The kind with wire value `byte`, if there is one.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Hello),
            1 => Some(Kind::Protocol),
            2 => Some(Kind::Plugin),
            3 => Some(Kind::Host),
            4 => Some(Kind::Refusal),
            5 => Some(Kind::Challenge),
            _ => None,
        }
    }
}

/// Why a frame body could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The body ends before the field named here is complete.
    #[error("frame truncated in {0}")]
    Truncated(&'static str),
    /// The version byte is not [`VERSION`].
    #[error("unsupported frame version {0}")]
    UnsupportedVersion(u8),
    /// The kind byte names no [`Kind`].
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// An id field is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// An id is too long for its length field (encoding only).
    #[error("{field} is {len} bytes, longer than the {max} the wire format allows")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most its length field can express.
        max: usize,
    },
}

/// Shortest cluster secret [`FrameKey::new`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a secret cannot key a [`FrameKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    #[error("the cluster secret is {len} bytes; it must be at least {min}")]
    TooShort {
        /// Its length.
        len: usize,
        /// [`MIN_SECRET_LEN`].
        min: usize,
    },
    /// The MAC implementation refused the key (HMAC accepts any length, so
    /// this is not expected).
    #[error("HMAC-SHA256 refused the key")]
    Rejected,
}

/// The HMAC-SHA256 key of a cluster, ready to sign and verify frames.
///
/// Keying is done once; every use clones the keyed state, which is cheap.
///
/// ```
/// use tenure_transport::frame::FrameKey;
/// assert!(FrameKey::new(b"a cluster secret of 16+ bytes").is_ok());
/// assert!(FrameKey::new(b"short").is_err());
/// ```
#[derive(Clone)]
pub struct FrameKey {
    mac: Hmac<Sha256>,
}

impl FrameKey {
    /// Keys HMAC-SHA256 with `secret`, which must be at least
    /// [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Result<FrameKey, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| KeyError::Rejected)?;
        Ok(FrameKey { mac })
    }

    /// HMAC-SHA256 of `parts`, concatenated, under this key.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn verify(&self, signed: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(signed);
        // Constant-time comparison.
        mac.verify_slice(tag).is_ok()
    }
}

impl std::fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameKey(..)")
    }
}

/// Length of the body [`encode`] produces for these field lengths.
pub fn encoded_len(cluster_id: &str, from: &str, to: &str, payload_len: usize) -> usize {
    MIN_FRAME_LEN + cluster_id.len() + from.len() + to.len() + payload_len
}

/// Builds a complete frame body, MAC included. `seq` is the frame's
/// sequence number on its connection (see [`crate::handshake`]).
///
/// ```
/// use tenure_transport::frame::{self, FrameKey, Kind};
/// let key = FrameKey::new(b"0123456789abcdef").unwrap();
/// let body = frame::encode(&key, Kind::Protocol, "prod", "a", "b", 7, b"vote").unwrap();
/// let frame = frame::decode(&body).unwrap();
/// assert_eq!((frame.kind, frame.from, frame.to, frame.seq, frame.payload), (Kind::Protocol, "a", "b", 7, &b"vote"[..]));
/// assert!(frame.verify(&key));
/// ```
pub fn encode(
    key: &FrameKey,
    kind: Kind,
    cluster_id: &str,
    from: &str,
    to: &str,
    seq: u64,
    payload: &[u8],
) -> Result<Bytes, FrameError> {
    let cluster_len = field_len::<u16>("cluster id", cluster_id.len(), MAX_CLUSTER_ID_LEN)?;
    let from_len = field_len::<u8>("from", from.len(), MAX_NODE_ID_LEN)?;
    let to_len = field_len::<u8>("to", to.len(), MAX_NODE_ID_LEN)?;

    let mut body = BytesMut::with_capacity(encoded_len(cluster_id, from, to, payload.len()));
    body.put_u8(VERSION);
    body.put_u8(kind.to_byte());
    body.put_u16(cluster_len);
    body.put_slice(cluster_id.as_bytes());
    body.put_u8(from_len);
    body.put_slice(from.as_bytes());
    body.put_u8(to_len);
    body.put_slice(to.as_bytes());
    body.put_u64(seq);
    body.put_slice(payload);
    let tag = key.tag(&[&body]);
    body.put_slice(&tag);
    Ok(body.freeze())
}

fn field_len<T: TryFrom<usize>>(
    field: &'static str,
    len: usize,
    max: usize,
) -> Result<T, FrameError> {
    T::try_from(len).map_err(|_| FrameError::FieldTooLong { field, len, max })
}

/// A frame body split into its fields. Nothing in it is trusted until
/// [`Frame::verify`] returns true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What the frame carries.
    pub kind: Kind,
    /// The sender's cluster id.
    pub cluster_id: &'a str,
    /// The sender's node id.
    pub from: &'a str,
    /// The addressee's node id.
    pub to: &'a str,
    /// The frame's sequence number on its connection.
    pub seq: u64,
    /// The opaque payload (for a hello or a challenge, see
    /// [`crate::handshake`]).
    pub payload: &'a [u8],
    signed: &'a [u8],
    mac: &'a [u8],
}

impl Frame<'_> {
    /// Whether the frame's MAC is valid under `key` (constant-time check).
    pub fn verify(&self, key: &FrameKey) -> bool {
        key.verify(self.signed, self.mac)
    }
}

/// Splits a frame body into its fields, checking its structure, version,
/// kind and that the ids are UTF-8. Never panics, whatever the input.
pub fn decode(body: &[u8]) -> Result<Frame<'_>, FrameError> {
    let Some(signed_len) = body.len().checked_sub(MAC_LEN) else {
        return Err(FrameError::Truncated("mac"));
    };
    let (signed, mac) = body.split_at(signed_len);
    let mut r = Reader { rest: signed };

    let version = r.u8("version")?;
    if version != VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let kind_byte = r.u8("kind")?;
    let kind = Kind::from_byte(kind_byte).ok_or(FrameError::UnknownKind(kind_byte))?;
    let cluster_len = usize::from(r.u16("cluster id length")?);
    let cluster_id = r.str(cluster_len, "cluster id")?;
    let from_len = usize::from(r.u8("from length")?);
    let from = r.str(from_len, "from")?;
    let to_len = usize::from(r.u8("to length")?);
    let to = r.str(to_len, "to")?;
    let seq = r.u64("sequence number")?;
    Ok(Frame {
        kind,
        cluster_id,
        from,
        to,
        seq,
        payload: r.rest,
        signed,
        mac,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(FrameError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, FrameError> {
        match self.take(1, field)? {
            [b] => Ok(*b),
            _ => Err(FrameError::Truncated(field)),
        }
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, FrameError> {
        match self.take(2, field)? {
            [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err(FrameError::Truncated(field)),
        }
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, FrameError> {
        let bytes = self.take(SEQ_LEN, field)?;
        let bytes: [u8; SEQ_LEN] = bytes.try_into().map_err(|_| FrameError::Truncated(field))?;
        Ok(u64::from_be_bytes(bytes))
    }

    fn str(&mut self, n: usize, field: &'static str) -> Result<&'a str, FrameError> {
        std::str::from_utf8(self.take(n, field)?).map_err(|_| FrameError::NotUtf8(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FrameKey {
        FrameKey::new(b"0123456789abcdef0123").unwrap()
    }

    #[test]
    fn round_trip_every_kind() {
        for kind in [Kind::Hello, Kind::Protocol, Kind::Plugin, Kind::Challenge] {
            let body = encode(&key(), kind, "c", "from-node", "to-node", 9, b"payload").unwrap();
            assert_eq!(body.len(), encoded_len("c", "from-node", "to-node", 7));
            let f = decode(&body).unwrap();
            assert_eq!(f.kind, kind);
            assert_eq!(f.cluster_id, "c");
            assert_eq!(f.from, "from-node");
            assert_eq!(f.to, "to-node");
            assert_eq!(f.seq, 9);
            assert_eq!(f.payload, b"payload");
            assert!(f.verify(&key()));
            assert!(!f.verify(&FrameKey::new(b"another secret, 16+").unwrap()));
        }
    }

    #[test]
    fn empty_fields_are_the_minimum() {
        let body = encode(&key(), Kind::Protocol, "", "", "", 0, b"").unwrap();
        assert_eq!(body.len(), MIN_FRAME_LEN);
        assert!(decode(&body).unwrap().verify(&key()));
    }

    #[test]
    fn overlong_ids_are_refused() {
        let long = "x".repeat(256);
        assert!(matches!(
            encode(&key(), Kind::Protocol, "c", &long, "b", 0, b""),
            Err(FrameError::FieldTooLong {
                field: "from",
                len: 256,
                ..
            })
        ));
        assert!(matches!(
            encode(&key(), Kind::Protocol, "c", "a", &long, 0, b""),
            Err(FrameError::FieldTooLong { field: "to", .. })
        ));
        let huge = "x".repeat(MAX_CLUSTER_ID_LEN + 1);
        assert!(matches!(
            encode(&key(), Kind::Protocol, &huge, "a", "b", 0, b""),
            Err(FrameError::FieldTooLong {
                field: "cluster id",
                ..
            })
        ));
    }
}
