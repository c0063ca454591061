//! The frame body format, byte by byte, and decoding hostile bodies.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tenure_transport::frame::{self, FrameError, FrameKey, Kind, MAC_LEN, MIN_FRAME_LEN, SEQ_LEN};

const SECRET: &[u8] = b"frame-test-secret-16+";

fn key() -> FrameKey {
    FrameKey::new(SECRET).unwrap()
}

#[test]
fn layout_is_as_documented() {
    let body = frame::encode(&key(), Kind::Plugin, "clu", "ab", "xyz", 0x0102, b"PAY").unwrap();
    let header: &[u8] = &[
        2, // version
        2, // kind: plugin
        0, 3, b'c', b'l', b'u', // cluster id, u16 BE length
        2, b'a', b'b', // from
        3, b'x', b'y', b'z', // to
        0, 0, 0, 0, 0, 0, 1, 2, // sequence number, u64 BE
        b'P', b'A', b'Y', // payload
    ];
    assert_eq!(&body[..header.len()], header);
    assert_eq!(body.len(), header.len() + MAC_LEN);

    // The MAC is HMAC-SHA256 with the secret over every preceding byte.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
    mac.update(header);
    assert_eq!(&body[header.len()..], &mac.finalize().into_bytes()[..]);
}

#[test]
fn kinds_round_trip() {
    for (kind, byte) in [
        (Kind::Hello, 0),
        (Kind::Protocol, 1),
        (Kind::Plugin, 2),
        (Kind::Host, 3),
        (Kind::Refusal, 4),
        (Kind::Challenge, 5),
    ] {
        assert_eq!(kind.to_byte(), byte);
        assert_eq!(Kind::from_byte(byte), Some(kind));
        let body = frame::encode(&key(), kind, "c", "a", "b", u64::MAX, b"p").unwrap();
        let f = frame::decode(&body).unwrap();
        assert_eq!(
            (f.kind, f.cluster_id, f.from, f.to, f.seq, f.payload),
            (kind, "c", "a", "b", u64::MAX, &b"p"[..])
        );
        assert!(f.verify(&key()));
    }
    assert_eq!(Kind::from_byte(6), None);
}

#[test]
fn long_fields_round_trip() {
    let cluster = "c".repeat(300); // needs both bytes of its u16 length
    let from = "f".repeat(255);
    let to = "t".repeat(255);
    let payload = vec![7u8; 70_000];
    let body = frame::encode(&key(), Kind::Protocol, &cluster, &from, &to, 1, &payload).unwrap();
    assert_eq!(
        body.len(),
        frame::encoded_len(&cluster, &from, &to, payload.len())
    );
    let f = frame::decode(&body).unwrap();
    assert_eq!(
        (f.cluster_id, f.from, f.to),
        (cluster.as_str(), from.as_str(), to.as_str())
    );
    assert_eq!(f.payload, &payload[..]);
    assert!(f.verify(&key()));
}

#[test]
fn every_truncation_fails_cleanly() {
    let body = frame::encode(
        &key(),
        Kind::Protocol,
        "cluster",
        "from",
        "to",
        42,
        b"some payload",
    )
    .unwrap();
    let header_len = MIN_FRAME_LEN - MAC_LEN + "cluster".len() + "from".len() + "to".len();
    assert_eq!(header_len, 1 + 1 + 2 + 7 + 1 + 4 + 1 + 2 + SEQ_LEN);
    for len in 0..body.len() {
        let cut = &body[..len];
        match frame::decode(cut) {
            // Too short for the header and the MAC: a structural error.
            Err(e) => assert!(matches!(e, FrameError::Truncated(_)), "{len}: {e}"),
            // Cut inside the payload: it parses (the payload is "the rest"),
            // but the MAC can no longer verify.
            Ok(f) => {
                assert!(len >= header_len + MAC_LEN, "{len} bytes decoded");
                assert!(!f.verify(&key()), "truncation to {len} bytes verified");
            }
        }
        if len < header_len + MAC_LEN {
            assert!(frame::decode(cut).is_err(), "{len}");
        }
    }
    assert!(frame::decode(&body).unwrap().verify(&key()));
}

#[test]
fn every_bit_flip_is_detected() {
    let body = frame::encode(&key(), Kind::Hello, "c", "a", "b", 3, b"127.0.0.1:1").unwrap();
    for i in 0..body.len() * 8 {
        let mut bad = body.to_vec();
        bad[i / 8] ^= 1 << (i % 8);
        if let Ok(f) = frame::decode(&bad) {
            assert!(!f.verify(&key()), "flipping bit {i} went unnoticed");
        }
    }
}

#[test]
fn structural_errors_are_named() {
    let body = frame::encode(&key(), Kind::Protocol, "c", "a", "b", 0, b"").unwrap();
    let mut v1 = body.to_vec();
    v1[0] = 1;
    assert_eq!(frame::decode(&v1), Err(FrameError::UnsupportedVersion(1)));
    let mut kind9 = body.to_vec();
    kind9[1] = 9;
    assert_eq!(frame::decode(&kind9), Err(FrameError::UnknownKind(9)));
    let mut not_utf8 = body.to_vec();
    not_utf8[6] = 0xFF; // the single byte of "a"
    assert_eq!(frame::decode(&not_utf8), Err(FrameError::NotUtf8("from")));
    // A length field pointing past the end.
    let mut long_cluster = body.to_vec();
    long_cluster[2] = 0xFF;
    assert!(matches!(
        frame::decode(&long_cluster),
        Err(FrameError::Truncated(_))
    ));
}

#[test]
fn random_bodies_never_panic() {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = (next() % 120) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Often a plausible header, so decoding gets past the first bytes.
        if len > 2 && next() % 2 == 0 {
            body[0] = 2;
            body[1] = (next() % 6) as u8;
        }
        if let Ok(f) = frame::decode(&body) {
            assert!(!f.verify(&key()));
        }
    }
}

#[test]
fn secrets_shorter_than_16_bytes_are_refused() {
    assert!(FrameKey::new(&[0; 15]).is_err());
    assert!(FrameKey::new(&[0; 16]).is_ok());
}
