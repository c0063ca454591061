//! The protocol's messages and their encoding.
//!
//! The host carries these bytes without looking inside (see DESIGN.md: "the
//! wire carries opaque protocol bytes"). A message is one version byte
//! followed by a postcard-encoded [`Message`]. A receiver drops messages of
//! an unknown version, so a future incompatible encoding bumps
//! [`WIRE_VERSION`]; new [`Body`] variants may be appended without a bump,
//! since old receivers fail to decode them and drop them.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::types::{NodeId, Term};

/// The first byte of every message this version sends. Version 2 added
/// the sender's standing, heartbeat rounds (for leases) and the transfer
/// flag on vote requests. Version 3 added the transfer target a leader's
/// heartbeats name (`Heartbeat::transfer_to`) and the round a
/// `TimeoutNow` was sent in (see [`crate::transfer`]), the sender's and
/// the recipient's data ids and `Body::Identify` (see
/// [`crate::identity`]), and membership epochs on heartbeats, vote and
/// pre-vote requests (see [`crate::membership`]). Version 4 sends the
/// leader's lists only when they changed (`Heartbeat::generation` and
/// `full`, `HeartbeatAck::holds`, see [`crate::lists`]). Nodes of
/// different versions ignore each other.
pub const WIRE_VERSION: u8 = 4;

/// Messages longer than this are dropped undecoded: a member list of a few
/// hundred ids fits easily, and a hostile length costs nothing.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's cluster id: receivers of another cluster ignore it.
    pub cluster_id: String,
    /// Whether the sender votes and how much it wants to lead.
    pub sender: Standing,
    /// The sender's data id: which copy of its state speaks (see
    /// [`crate::identity`]).
    pub sender_data_id: u64,
    /// The data id the sender recorded for the recipient, if it heard from
    /// it: it confirms the recipient's id, or tells it that it lost its
    /// state.
    pub recipient_data_id: Option<u64>,
    /// What the message says.
    pub body: Body,
}

/// What every message says about its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// False for an observer: it follows but never votes or stands, and
    /// receivers keep it out of the voting membership.
    pub voter: bool,
    /// Its leadership priority: a leader hands over to a healthy voter of
    /// higher priority (see `stability-window-ms`).
    pub priority: u8,
}

impl Default for Standing {
    /// A voter of priority 0.
    fn default() -> Self {
        Standing {
            voter: true,
            priority: 0,
        }
    }
}

/// The kinds of message. Those that carry a `term` follow Raft's rule: a
/// higher term makes the receiver a follower in that term, a lower one is
/// answered with the receiver's current term so the sender can catch up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// A candidate asks for a vote in `term`. `transfer` is set when the
    /// leader handed over to it (TimeoutNow): only then do nodes that
    /// heard from a leader within the minimum election timeout grant it.
    ///
    /// `epoch` is the candidate's membership epoch and `epoch_term` the
    /// term of the leader that last confirmed it (see
    /// [`crate::membership`]): a voter whose `(epoch_term, epoch)` is
    /// later refuses it.
    RequestVote {
        term: Term,
        transfer: bool,
        epoch: u64,
        epoch_term: Term,
    },
    /// The answer to `RequestVote`.
    Vote { term: Term, granted: bool },
    /// The leader of `term` asserts itself and shares what it knows: the
    /// voting membership and the members it has heard from recently.
    ///
    /// `round` numbers the leader's heartbeat rounds; the ack echoes it, so
    /// the leader knows which round (and so which send time) a majority
    /// acknowledged: that is where its lease starts.
    ///
    /// `removed` lists members removed with `leave`, so every node learns
    /// of a removal from the leader.
    ///
    /// `transfer_to` names the target of a leadership transfer under way:
    /// the only candidate to which a loyal voter grants a transfer vote.
    ///
    /// `epoch` numbers the leader's membership: a follower of an earlier
    /// epoch replaces its own with `members` (see [`crate::membership`]).
    ///
    /// `generation` numbers the contents of the three lists within the
    /// leader's term. They are in the message only when `full`; otherwise
    /// they are empty and stand for the lists of that generation the
    /// recipient acknowledged holding (see [`crate::lists`]).
    Heartbeat {
        term: Term,
        round: u64,
        epoch: u64,
        members: Vec<NodeId>,
        alive: Vec<NodeId>,
        removed: Vec<NodeId>,
        transfer_to: Option<NodeId>,
        generation: u64,
        full: bool,
    },
    /// A follower's answer to `Heartbeat`: `ok` is false when the heartbeat's
    /// term was stale. Carries the follower's membership and tombstones
    /// back to the leader when they differ from the heartbeat's, so
    /// members learned anywhere reach everyone (empty otherwise). `holds`
    /// is the generation of the leader's lists the follower handled the
    /// heartbeat with (`None`: it could not resolve them; send them in
    /// full, see [`crate::lists`]).
    HeartbeatAck {
        term: Term,
        ok: bool,
        round: u64,
        members: Vec<NodeId>,
        removed: Vec<NodeId>,
        holds: Option<u64>,
    },
    /// A node introduces itself (the `join` export) with what it knows.
    Join { members: Vec<NodeId> },
    /// The answer to `Join`: the cluster's membership, term and leader as
    /// the receiver knows them.
    Welcome {
        term: Term,
        leader: Option<NodeId>,
        members: Vec<NodeId>,
    },
    /// A pre-candidate asks whether it would win an election for `term`
    /// (its own term + 1), with its membership `epoch`. Nobody changes
    /// term or vote for it.
    RequestPreVote {
        term: Term,
        epoch: u64,
        epoch_term: Term,
    },
    /// The answer to `RequestPreVote` for `term`; `current` is the
    /// receiver's own term, so a pre-candidate behind it catches up.
    PreVote {
        term: Term,
        granted: bool,
        current: Term,
    },
    /// The leader of `term` hands leadership to the receiver: campaign now
    /// (Raft's TimeoutNow), without a pre-vote. `round` is the heartbeat
    /// round that first named the receiver: a later heartbeat that names
    /// no one means the transfer was abandoned, and this is ignored.
    TimeoutNow { term: Term, round: u64 },
    /// The answer to any message from a node this one removed with
    /// `leave`: the removals it knows, the sender among them, and the
    /// sender's view `(epoch_term, epoch)`: a node takes its own removal
    /// only from a view at least as recent as its own (see
    /// [`crate::membership`]).
    Removed {
        removed: Vec<NodeId>,
        epoch: u64,
        epoch_term: Term,
    },
    /// Only the header matters: it names the recipient by the data id the
    /// sender recorded for it. `ask` asks for an `Identify` back, so the
    /// sender learns which id the recipient recorded for it; a node asks
    /// the members that have not confirmed its id yet. Also the answer to
    /// a node that speaks with a data id other than the recorded one.
    Identify { ask: bool },
    /// A refusal of `RequestPreVote` for `term` for loyalty alone: the
    /// receiver (at term `current`) heard from its leader within the
    /// minimum election timeout, and stops being loyal in `after_ms`. A
    /// pre-candidate whose leader froze retries just after that, instead
    /// of a whole election timeout later (see [`crate::failover`]).
    /// Appended without a version bump: an older node cannot decode it and
    /// drops it, which costs it only the retry.
    PreVoteLater {
        term: Term,
        current: Term,
        after_ms: u32,
    },
}

/// Why bytes could not be decoded into a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Nothing to decode.
    Empty,
    /// Longer than [`MAX_MESSAGE_BYTES`].
    TooLong,
    /// The version byte is not [`WIRE_VERSION`].
    UnknownVersion(u8),
    /// The body is not a valid postcard `Message`.
    Malformed,
}

impl Message {
    /// Encodes the message with its version byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(WIRE_VERSION);
        // Encoding into a Vec cannot fail for these plain types.
        match postcard::to_extend(self, out) {
            Ok(out) => out,
            Err(_) => unreachable!("postcard encoding into a Vec is infallible"),
        }
    }

    /// Decodes bytes produced by [`Message::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let (&version, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLong);
        }
        if version != WIRE_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        match postcard::take_from_bytes::<Message>(rest) {
            Ok((message, [])) => Ok(message),
            _ => Err(DecodeError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn samples() -> Vec<Message> {
        let m = |body| Message {
            cluster_id: "c".into(),
            sender: Standing::default(),
            sender_data_id: u64::MAX,
            recipient_data_id: Some(1),
            body,
        };
        vec![
            m(Body::RequestVote {
                term: 7,
                transfer: false,
                epoch: 3,
                epoch_term: 6,
            }),
            m(Body::Vote {
                term: 7,
                granted: true,
            }),
            m(Body::Heartbeat {
                term: u64::MAX,
                round: 0,
                epoch: u64::MAX,
                members: vec!["a".into(), "b".into()],
                alive: vec!["b".into()],
                removed: vec![],
                transfer_to: Some("b".into()),
                generation: 1,
                full: true,
            }),
            m(Body::Heartbeat {
                term: 3,
                round: 9,
                epoch: 1,
                members: vec![],
                alive: vec![],
                removed: vec![],
                transfer_to: None,
                generation: u64::MAX,
                full: false,
            }),
            m(Body::HeartbeatAck {
                term: 1,
                ok: false,
                round: 0,
                members: vec![],
                removed: vec![],
                holds: None,
            }),
            m(Body::HeartbeatAck {
                term: 1,
                ok: true,
                round: 7,
                members: vec![],
                removed: vec!["c".into()],
                holds: Some(2),
            }),
            m(Body::Join {
                members: vec!["a".into()],
            }),
            m(Body::Welcome {
                term: 3,
                leader: Some("a".into()),
                members: vec!["a".into(), "b".into()],
            }),
            m(Body::RequestPreVote {
                term: 4,
                epoch: 0,
                epoch_term: 3,
            }),
            m(Body::PreVote {
                term: 4,
                granted: false,
                current: 5,
            }),
            m(Body::TimeoutNow { term: 9, round: 4 }),
            m(Body::Removed {
                removed: vec!["x".into()],
                epoch: 2,
                epoch_term: 7,
            }),
            m(Body::Identify { ask: true }),
            m(Body::PreVoteLater {
                term: 4,
                current: 3,
                after_ms: 2,
            }),
            Message {
                recipient_data_id: None,
                ..m(Body::Identify { ask: false })
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn bad_bytes_are_refused_not_panicked_on() {
        assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(
            Message::decode(&[9, 1, 2]),
            Err(DecodeError::UnknownVersion(9))
        );
        assert_eq!(
            Message::decode(&[WIRE_VERSION]),
            Err(DecodeError::Malformed)
        );
        let mut long = vec![WIRE_VERSION];
        long.resize(MAX_MESSAGE_BYTES + 1, 0);
        assert_eq!(Message::decode(&long), Err(DecodeError::TooLong));
        // Trailing garbage after a valid message is refused too.
        let mut extra = samples()[0].encode();
        extra.push(0);
        assert_eq!(Message::decode(&extra), Err(DecodeError::Malformed));
        // Every truncation of every sample fails cleanly.
        for message in samples() {
            let bytes = message.encode();
            for len in 0..bytes.len() {
                assert!(Message::decode(&bytes[..len]).is_err());
            }
        }
    }

    /// A heartbeat of a three-node cluster was 30 bytes before data ids
    /// (31 with the membership epoch, 33 with the lists' generation and
    /// flag).
    /// The two ids add 19 to 21: a random 64-bit id is a 10-byte postcard
    /// varint half of the time and a 9-byte one nearly all the rest, and
    /// the recipient's is an `Option` (one more byte). So 51 to 54 bytes,
    /// still far inside one small packet; a fixed 8-byte encoding would
    /// save 2 to 4 of them.
    #[test]
    fn heartbeats_are_small() {
        let hb = |sender_data_id, recipient_data_id| Message {
            cluster_id: "prod".into(),
            sender: Standing::default(),
            sender_data_id,
            recipient_data_id,
            body: Body::Heartbeat {
                term: 12,
                round: 0,
                epoch: 2,
                members: vec!["n1".into(), "n2".into(), "n3".into()],
                alive: vec!["n2".into(), "n3".into()],
                removed: vec![],
                transfer_to: None,
                generation: 1,
                full: true,
            },
        };
        // Without ids (the smallest header) and with the largest ones.
        // The body and the rest of the header: 30 bytes before epochs,
        // 31 with one (a varint: one byte up to epoch 127, two to 16383),
        // 33 with the generation (a varint) and the flag.
        assert_eq!(hb(0, None).encode().len(), 33 + 2);
        // With the largest ids, and with typical ones (9-byte varints).
        assert_eq!(hb(u64::MAX, Some(u64::MAX)).encode().len(), 54);
        assert_eq!(hb(1 << 62, Some(1 << 62)).encode().len(), 52);
        // An identity question or answer is the header alone: 31 bytes.
        let identify = Message {
            body: Body::Identify { ask: true },
            ..hb(u64::MAX, Some(u64::MAX))
        };
        assert_eq!(identify.encode().len(), 31);
    }

    /// Without its lists a heartbeat's size does not depend on the
    /// cluster's: the 109-node heartbeat that carried ~1.3 KB of ids is as
    /// small as a three-node one (see [`crate::lists`]).
    #[test]
    fn a_heartbeat_without_its_lists_does_not_grow_with_the_cluster() {
        let ids: Vec<NodeId> = (0..109).map(|i| alloc::format!("node-{i}")).collect();
        let hb = |full: bool| Message {
            cluster_id: "prod".into(),
            sender: Standing::default(),
            sender_data_id: 1 << 62,
            recipient_data_id: Some(1 << 62),
            body: Body::Heartbeat {
                term: 12,
                round: 1_000_000,
                epoch: 2,
                members: if full { ids[..9].to_vec() } else { vec![] },
                alive: if full { ids.clone() } else { vec![] },
                removed: vec![],
                transfer_to: None,
                generation: 3,
                full,
            },
        };
        assert!(hb(true).encode().len() > 900, "{}", hb(true).encode().len());
        assert!(
            hb(false).encode().len() <= 48,
            "{}",
            hb(false).encode().len()
        );
    }
}
