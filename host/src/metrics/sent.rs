//! `tenure_sent_messages_total{kind}` and `tenure_sent_bytes_total{kind}`:
//! the protocol messages this node hands its transport, and their payload
//! bytes, by message kind — so `bytes / messages` of one kind is the mean
//! size of that message on the wire, less the transport's frame (its
//! length prefix, header and MAC; see `tenure_transport::frame`).
//!
//! The kinds are a bounded set read from the built-in build's wire format
//! ([`kind`]); a message of another protocol build counts as `unknown`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};
use tenure_election_core::wire::Body;

use super::KindLabel;

/// Every `kind` label value, in the order they are documented.
pub const KINDS: [&str; 8] = [
    "heartbeat",
    "heartbeat_ack",
    "pre_vote_request",
    "pre_vote",
    "vote_request",
    "vote",
    "other",
    "unknown",
];

/// The `kind` label of a sent message: its body's kind (`pre_vote` covers
/// both answers to a pre-vote request, `other` the membership, transfer
/// and identity messages), or `unknown` when it did not decode.
pub fn kind(body: Option<&Body>) -> &'static str {
    match body {
        Some(Body::Heartbeat { .. }) => "heartbeat",
        Some(Body::HeartbeatAck { .. }) => "heartbeat_ack",
        Some(Body::RequestPreVote { .. }) => "pre_vote_request",
        Some(Body::PreVote { .. } | Body::PreVoteLater { .. }) => "pre_vote",
        Some(Body::RequestVote { .. }) => "vote_request",
        Some(Body::Vote { .. }) => "vote",
        Some(_) => "other",
        None => "unknown",
    }
}

/// The two counters, one sample per kind each.
#[derive(Debug)]
pub struct SentMessages {
    messages: Family<KindLabel, Counter>,
    bytes: Family<KindLabel, Counter>,
}

impl Default for SentMessages {
    /// Every kind at zero, so a rate over a kind never sent yet is 0,
    /// not absent.
    fn default() -> Self {
        let sent = SentMessages {
            messages: Family::default(),
            bytes: Family::default(),
        };
        for kind in KINDS {
            let label = KindLabel {
                kind: kind.to_string(),
            };
            let _ = sent.messages.get_or_create(&label);
            let _ = sent.bytes.get_or_create(&label);
        }
        sent
    }
}

impl SentMessages {
    /// Counts one message of `kind` whose payload was `len` bytes.
    pub fn note(&self, kind: &str, len: usize) {
        let label = KindLabel {
            kind: kind.to_string(),
        };
        self.messages.get_or_create(&label).inc();
        self.bytes.get_or_create(&label).inc_by(len as u64);
    }

    /// Registers both counters in `r` (shared: a scrape reads the live
    /// counts).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "tenure_sent_messages",
            SENT_MESSAGES_HELP,
            self.messages.clone(),
        );
        r.register_with_unit(
            "tenure_sent",
            SENT_BYTES_HELP,
            Unit::Bytes,
            self.bytes.clone(),
        );
    }
}

const SENT_MESSAGES_HELP: &str = "Protocol messages this node sent, by kind: heartbeat, \
heartbeat_ack, pre_vote_request, pre_vote (either answer), vote_request, vote, other \
(membership, transfer, identity), unknown (not the built-in wire format); one per recipient";

const SENT_BYTES_HELP: &str = "Payload bytes of the protocol messages this node sent, by kind \
as in tenure_sent_messages_total (the transport's frame around each is not counted)";

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_election_core::wire::{Message, Standing};

    fn message(body: Body) -> Vec<u8> {
        Message {
            cluster_id: "c".into(),
            sender: Standing::default(),
            sender_data_id: 1,
            recipient_data_id: None,
            body,
        }
        .encode()
    }

    fn samples(text: &str, name: &str) -> Vec<(String, u64)> {
        text.lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter_map(|l| l.strip_prefix("{kind=\""))
            .filter_map(|l| l.split_once("\"} "))
            .map(|(kind, n)| (kind.to_string(), n.parse().expect("a count")))
            .collect()
    }

    #[test]
    fn bytes_and_messages_are_counted_by_kind() {
        let heartbeat = message(Body::Heartbeat {
            term: 3,
            round: 7,
            epoch: 1,
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            alive: vec!["n2".into()],
            removed: vec![],
            transfer_to: None,
            generation: 1,
            full: true,
        });
        let ack = message(Body::HeartbeatAck {
            term: 3,
            ok: true,
            round: 7,
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            removed: vec![],
            holds: None,
        });
        let m = super::super::NodeMetrics::default();
        for payload in [&heartbeat, &heartbeat, &ack] {
            m.on_sent(payload);
        }
        m.on_sent(b"\xffnot ours");
        let mut r = Registry::default();
        m.sent.register(&mut r);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).expect("encodes");
        let messages = samples(&text, "tenure_sent_messages_total");
        let bytes = samples(&text, "tenure_sent_bytes_total");
        let of = |list: &[(String, u64)], kind: &str| {
            list.iter()
                .find(|(k, _)| k == kind)
                .map(|(_, n)| *n)
                .unwrap_or_else(|| panic!("no {kind} sample:\n{text}"))
        };
        assert_eq!(of(&messages, "heartbeat"), 2);
        assert_eq!(of(&bytes, "heartbeat"), 2 * heartbeat.len() as u64);
        assert_eq!(of(&messages, "heartbeat_ack"), 1);
        assert_eq!(of(&bytes, "heartbeat_ack"), ack.len() as u64);
        assert_eq!((of(&messages, "unknown"), of(&bytes, "unknown")), (1, 9));
        assert!(
            messages.iter().all(|(k, _)| KINDS.contains(&k.as_str())),
            "{text}"
        );
    }

    #[test]
    fn every_kind_is_named_in_the_list() {
        let votes = [
            Body::RequestVote {
                term: 1,
                transfer: false,
                epoch: 0,
                epoch_term: 0,
            },
            Body::Vote {
                term: 1,
                granted: true,
            },
            Body::Join { members: vec![] },
        ];
        for body in &votes {
            assert!(KINDS.contains(&kind(Some(body))));
        }
        assert_eq!(kind(None), "unknown");
    }
}
