//! What the transport hands up: inbound messages and peer events.

use crate::frame::Kind;

/// What a payload is for; carried in the frame's `kind` byte
/// (1 = protocol, 2 = plugin).
///
/// ```
/// use tenure_transport::Channel;
/// assert_eq!(Channel::Plugin.to_byte(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A message of the election protocol.
    Protocol,
    /// A message for a behaviour plugin.
    Plugin,
    /// A message for the receiving host itself, such as a call a follower
    /// forwards to its leader.
    Host,
}

impl Channel {
    /// The wire value of this channel's frame kind.
    pub fn to_byte(self) -> u8 {
        self.kind().to_byte()
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Channel::Protocol => Kind::Protocol,
            Channel::Plugin => Kind::Plugin,
            Channel::Host => Kind::Host,
        }
    }

    pub(crate) fn from_kind(kind: Kind) -> Option<Channel> {
        match kind {
            Kind::Hello | Kind::Refusal | Kind::Challenge => None,
            Kind::Protocol => Some(Channel::Protocol),
            Kind::Plugin => Some(Channel::Plugin),
            Kind::Host => Some(Channel::Host),
        }
    }
}

/// An authenticated payload from a peer of this cluster, addressed to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The sender's node id (as introduced by the connection's hello).
    pub from: String,
    /// What the payload is for.
    pub channel: Channel,
    /// The payload, exactly as the sender passed it to `send`.
    pub payload: Vec<u8>,
}

/// A change in the state of this node's outbound connection to a peer.
///
/// `Connected` and `Disconnected` are emitted on every connection made and
/// lost; `Unreachable` once per streak of refused attempts (not on every
/// retry), until a connection succeeds again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// An outbound connection to `peer` is established and introduced (hello sent).
    Connected {
        /// The peer's node id.
        peer: String,
    },
    /// An established outbound connection to `peer` closed (EOF or error).
    Disconnected {
        /// The peer's node id.
        peer: String,
    },
    /// `peer`'s process is gone: a dial to it was refused while no
    /// connection from it is open (see [`crate::death`] for why exactly
    /// that, and never a timeout). Once per streak, until a dial succeeds.
    Unreachable {
        /// The peer's node id.
        peer: String,
    },
    /// A second live process claimed `peer`'s node id and was refused (see
    /// the transport's `claims` module): an operator must stop one of them.
    DuplicateId {
        /// The node id two processes claim.
        peer: String,
    },
    /// `peer` refused this process: another live process already speaks
    /// for this node's id there. This process must stop.
    RefusedAsDuplicate {
        /// The peer that refused.
        peer: String,
        /// Its reason, as it sent it.
        reason: String,
    },
}

impl PeerEvent {
    /// The peer the event is about.
    pub fn peer(&self) -> &str {
        match self {
            PeerEvent::Connected { peer }
            | PeerEvent::Disconnected { peer }
            | PeerEvent::Unreachable { peer }
            | PeerEvent::DuplicateId { peer }
            | PeerEvent::RefusedAsDuplicate { peer, .. } => peer,
        }
    }
}
