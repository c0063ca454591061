//! Calls a follower forwards to its leader, over the transport's host
//! channel.
//!
//! A `POST /call` on a follower that knows its leader is sent to the
//! leader's host, which hands it to its plugin's `on-call` and sends the
//! answer back; the follower's caller gets the leader's answer. Messages on
//! the host channel are `kind u8 | id u64 (big-endian) | body`: kind 1 a
//! request (body: the request bytes), 2 a reply (body: the plugin's
//! answer), 3 a refusal (body: the reason, UTF-8), 4 peer addresses
//! passed on (id 0; body: see `node/addresses.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tenure_transport::Channel;
use tokio::sync::oneshot;

use super::Node;
use crate::plugin::runner::PluginInput;

/// How long a forwarded call may wait for the leader's answer.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// A message on the host channel.
#[derive(Debug, PartialEq, Eq)]
pub enum HostMessage {
    /// A call forwarded to this node.
    Request { id: u64, request: Vec<u8> },
    /// The answer to a call this node forwarded.
    Reply {
        id: u64,
        answer: Result<Vec<u8>, String>,
    },
    /// Peer addresses the sender passed on (see `node/addresses.rs`).
    Addresses { book: Vec<u8> },
}

impl HostMessage {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, id, body) = match self {
            HostMessage::Request { id, request } => (1u8, *id, request.as_slice()),
            HostMessage::Reply {
                id,
                answer: Ok(reply),
            } => (2, *id, reply.as_slice()),
            HostMessage::Reply {
                id,
                answer: Err(reason),
            } => (3, *id, reason.as_bytes()),
            HostMessage::Addresses { book } => (4, 0, book.as_slice()),
        };
        let mut out = Vec::with_capacity(9 + body.len());
        out.push(kind);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Parses the wire form; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<HostMessage> {
        let (&kind, rest) = bytes.split_first()?;
        let id = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let body = rest.get(8..)?.to_vec();
        match kind {
            1 => Some(HostMessage::Request { id, request: body }),
            2 => Some(HostMessage::Reply {
                id,
                answer: Ok(body),
            }),
            3 => Some(HostMessage::Reply {
                id,
                answer: Err(String::from_utf8_lossy(&body).into_owned()),
            }),
            4 => Some(HostMessage::Addresses { book: body }),
            _ => None,
        }
    }
}

/// Where the answer to a call goes: the plugin's reply, or why there is
/// none.
pub type CallReply = oneshot::Sender<Result<Vec<u8>, String>>;

/// Calls this node forwarded and still waits for.
#[derive(Default)]
pub struct Forwarded {
    next_id: u64,
    waiting: BTreeMap<u64, (Instant, CallReply)>,
}

impl Forwarded {
    /// Registers a call about to be forwarded; returns its id. Calls older
    /// than [`FORWARD_TIMEOUT`] are dropped (their callers get an error).
    pub fn register(&mut self, reply: CallReply) -> u64 {
        let now = Instant::now();
        self.waiting
            .retain(|_, (at, _)| now.duration_since(*at) < FORWARD_TIMEOUT);
        self.next_id += 1;
        self.waiting.insert(self.next_id, (now, reply));
        self.next_id
    }

    /// Hands the leader's answer to the waiting caller, if any.
    pub fn answer(&mut self, id: u64, answer: Result<Vec<u8>, String>) {
        if let Some((_, reply)) = self.waiting.remove(&id) {
            let _ = reply.send(answer);
        }
    }
}

impl Node {
    /// A call from the admin endpoint: to the leader's plugin when this
    /// node follows a known leader (and the caller did not ask for this
    /// node's own), else to this node's plugin.
    pub(super) fn call(
        &mut self,
        request: Vec<u8>,
        local: bool,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    ) {
        let leader = self.core.status().leader.clone();
        match leader {
            Some(leader) if !local && leader != self.config.node_id => {
                let id = self.forwarded.register(reply);
                let message = HostMessage::Request { id, request }.encode();
                if let Err(e) = self.transport.send(&leader, Channel::Host, message) {
                    self.forwarded
                        .answer(id, Err(format!("cannot reach the leader {leader}: {e}")));
                }
            }
            _ if self.plugin.is_some() => self.to_plugin(PluginInput::Call { request, reply }),
            _ => {
                let _ = reply.send(Err("this node runs no plugin".into()));
            }
        }
    }

    /// A message on the host channel: a call forwarded here, or the answer
    /// to one this node forwarded.
    pub(super) fn on_host_message(&mut self, from: String, payload: &[u8]) {
        match HostMessage::decode(payload) {
            Some(HostMessage::Request { id, request }) => {
                let (reply, answer) = oneshot::channel();
                if self.plugin.is_some() {
                    self.to_plugin(PluginInput::Call { request, reply });
                } else {
                    let _ = reply.send(Err("the leader runs no plugin".into()));
                }
                let replies = self.host_replies.clone();
                tokio::spawn(async move {
                    let answer = match tokio::time::timeout(FORWARD_TIMEOUT, answer).await {
                        Ok(Ok(answer)) => answer,
                        _ => Err("the leader's plugin did not answer".into()),
                    };
                    let _ = replies.send((from, id, answer));
                });
            }
            Some(HostMessage::Reply { id, answer }) => self.forwarded.answer(id, answer),
            Some(HostMessage::Addresses { book }) => self.learn_addresses(&from, &book),
            None => {
                tracing::warn!(node = %self.config.node_id, peer = %from, "malformed host message")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        for m in [
            HostMessage::Request {
                id: 7,
                request: b"runs".to_vec(),
            },
            HostMessage::Reply {
                id: 8,
                answer: Ok(b"12".to_vec()),
            },
            HostMessage::Reply {
                id: u64::MAX,
                answer: Err("not leader".into()),
            },
        ] {
            assert_eq!(HostMessage::decode(&m.encode()), Some(m));
        }
        assert_eq!(HostMessage::decode(&[]), None);
        assert_eq!(HostMessage::decode(&[1, 2, 3]), None);
        assert_eq!(HostMessage::decode(&[9, 0, 0, 0, 0, 0, 0, 0, 1]), None);
    }

    #[test]
    fn answers_reach_their_caller_once() {
        let mut f = Forwarded::default();
        let (tx, mut rx) = oneshot::channel();
        let id = f.register(tx);
        f.answer(id, Ok(b"x".to_vec()));
        f.answer(id, Ok(b"y".to_vec()));
        assert_eq!(rx.try_recv().expect("answered"), Ok(b"x".to_vec()));
    }
}
