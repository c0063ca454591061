//! The address book: for each peer, the name to dial (if it was given one)
//! and the last socket address known for it.
//!
//! Two sources disagree when a peer moves: its configured name, and the
//! listen address its last hello carried. The name wins for dialling — a
//! rescheduled pod keeps its name but not its IP, so a learned IP would pin
//! the node to an address nobody listens on. The learned address still
//! matters: it is what the node passes on to joiners and shows in status,
//! and it is the only address of a peer that was never configured (a
//! joiner heard of through a hello or the address book).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::address::PeerAddr;

/// What is known of one peer's address.
#[derive(Debug, Clone, Default)]
struct Entry {
    /// The configured name, resolved on every dial; authoritative.
    name: Option<(String, u16)>,
    /// The last address known: a literal given for it, the one its hello
    /// carried, or the one its name last resolved to and answered on.
    addr: Option<SocketAddr>,
}

/// Where to dial a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Resolve this name first.
    Name {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
    },
    /// Dial this address.
    Socket(SocketAddr),
}

/// Every peer's address, by node id.
#[derive(Debug, Default)]
pub(crate) struct PeerBook {
    entries: BTreeMap<String, Entry>,
}

impl PeerBook {
    /// A book of the configured peers.
    pub fn new(configured: BTreeMap<String, PeerAddr>) -> PeerBook {
        let mut book = PeerBook::default();
        for (id, addr) in configured {
            book.set(&id, addr);
        }
        book
    }

    /// Records `addr` as `id`'s address, replacing what was known: a name
    /// becomes the one to dial; a literal replaces the name too.
    pub fn set(&mut self, id: &str, addr: PeerAddr) {
        let entry = self.entries.entry(id.to_owned()).or_default();
        match addr {
            PeerAddr::Socket(addr) => {
                entry.name = None;
                entry.addr = Some(addr);
            }
            PeerAddr::Name { host, port } => {
                entry.name = Some((host, port));
                entry.addr = None;
            }
        }
    }

    /// Records where `id` says (in its hello) or was found to listen,
    /// keeping its name, if it has one, as the address to dial. Returns
    /// the address it replaced.
    pub fn learn(&mut self, id: &str, addr: SocketAddr) -> Option<SocketAddr> {
        self.entries
            .entry(id.to_owned())
            .or_default()
            .addr
            .replace(addr)
    }

    /// Whether anything is known of `id`'s address.
    pub fn knows(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    /// Where to dial `id`: its name if it has one, else its last address.
    pub fn target(&self, id: &str) -> Option<Target> {
        let entry = self.entries.get(id)?;
        match (&entry.name, entry.addr) {
            (Some((host, port)), _) => Some(Target::Name {
                host: host.clone(),
                port: *port,
            }),
            (None, Some(addr)) => Some(Target::Socket(addr)),
            (None, None) => None,
        }
    }

    /// The last socket address of each peer that has one.
    pub fn addresses(&self) -> BTreeMap<String, SocketAddr> {
        self.entries
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), e.addr?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    #[test]
    fn a_name_stays_the_dial_target_whatever_hellos_say() {
        let name = PeerAddr::Name {
            host: "b.test".into(),
            port: 7101,
        };
        let mut book = PeerBook::new(BTreeMap::from([("b".to_string(), name)]));
        assert!(book.knows("b"));
        assert!(book.addresses().is_empty());
        book.learn("b", addr("10.0.0.9:7101"));
        let by_name = Target::Name {
            host: "b.test".into(),
            port: 7101,
        };
        assert_eq!(book.target("b"), Some(by_name));
        assert_eq!(book.addresses().get("b"), Some(&addr("10.0.0.9:7101")));
    }

    #[test]
    fn a_literal_is_replaced_by_what_the_peer_says() {
        let mut book = PeerBook::default();
        book.set("b", addr("10.0.0.1:7101").into());
        assert_eq!(
            book.learn("b", addr("10.0.0.2:7101")),
            Some(addr("10.0.0.1:7101"))
        );
        assert_eq!(
            book.target("b"),
            Some(Target::Socket(addr("10.0.0.2:7101")))
        );
        // Learned only (a joiner): dialled at the learned address.
        book.learn("j", addr("10.0.0.3:7101"));
        assert_eq!(
            book.target("j"),
            Some(Target::Socket(addr("10.0.0.3:7101")))
        );
        assert_eq!(book.target("nobody"), None);
    }
}
