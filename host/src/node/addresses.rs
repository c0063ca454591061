//! Peer addresses, passed on over the host channel.
//!
//! The transport learns a peer's address from its configuration or from
//! the peer's own hello. A node added with `join` lists some members in its
//! `[peers]` and dials them, so they learn its address — but the other
//! joiners, and members it does not list, never would: the leader that
//! admits two joiners could not make them hear each other. So each node
//! passes on what it knows:
//!
//! - when its connection to a peer opens, it sends that peer every address
//!   it knows;
//! - the first time it hears from a peer (whose hello just gave it the
//!   address), it sends that one address to every other peer it knows.
//!
//! A receiver only fills gaps: a peer it already knows (configured by
//! address or by name, or from the peer's own hello) is never replaced,
//! since only the peer itself says authoritatively where it listens — and
//! a configured name stays what is dialled, re-resolved on every dial (see
//! the transport's `PeerAddr`). The host channel is
//! authenticated with the cluster secret like every frame, so only members
//! can tell each other addresses.
//!
//! Wire form (the host channel's kind 4, see [`super::forward`]): lines of
//! `node-id SP ip:port`, UTF-8.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tenure_transport::Channel;

use super::Node;
use super::forward::HostMessage;

/// Encodes an address book as lines of `id addr`.
pub fn encode_book(book: &BTreeMap<String, SocketAddr>) -> Vec<u8> {
    let mut out = String::new();
    for (id, addr) in book {
        out.push_str(id);
        out.push(' ');
        out.push_str(&addr.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// Decodes an address book; lines that do not parse are skipped.
pub fn decode_book(bytes: &[u8]) -> BTreeMap<String, SocketAddr> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| {
            let (id, addr) = line.split_once(' ')?;
            Some((id.to_owned(), addr.parse().ok()?))
        })
        .collect()
}

impl Node {
    /// The connection to `peer` opened: tell it every address known here.
    pub(super) fn share_addresses(&self, peer: &str) {
        let mut book = self.transport.peers();
        book.remove(peer);
        if book.is_empty() {
            return;
        }
        let message = HostMessage::Addresses {
            book: encode_book(&book),
        };
        let _ = self.transport.send(peer, Channel::Host, message.encode());
    }

    /// A message came from `from`: the first time, pass its address (just
    /// learned from its hello, or configured) on to every other peer.
    pub(super) fn pass_on_address(&mut self, from: &str) {
        if self.addresses_passed_on.contains(from) {
            return;
        }
        let peers = self.transport.peers();
        let Some(addr) = peers.get(from) else {
            return;
        };
        self.addresses_passed_on.insert(from.to_owned());
        let book = encode_book(&BTreeMap::from([(from.to_owned(), *addr)]));
        for peer in peers.keys().filter(|p| p.as_str() != from) {
            let message = HostMessage::Addresses { book: book.clone() };
            let _ = self.transport.send(peer, Channel::Host, message.encode());
        }
    }

    /// Addresses `from` passed on: each one unknown here is recorded.
    pub(super) fn learn_addresses(&self, from: &str, book: &[u8]) {
        for (id, addr) in decode_book(book) {
            // A peer known by name stays dialled by its name.
            if id == self.config.node_id || self.transport.knows_peer(&id) {
                continue;
            }
            tracing::info!(node = %self.config.node_id, peer = %id, %addr, via = %from, "learned peer address");
            self.transport.add_peer(&id, addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn books_round_trip_and_bad_lines_are_skipped() {
        let book = BTreeMap::from([
            ("j1".to_string(), "127.0.0.1:7104".parse().expect("addr")),
            ("n2".to_string(), "[::1]:7102".parse().expect("addr")),
        ]);
        assert_eq!(decode_book(&encode_book(&book)), book);
        let mut bytes = encode_book(&book);
        bytes.extend_from_slice(b"garbage\nx nowhere:1\n");
        assert_eq!(decode_book(&bytes), book);
    }
}
