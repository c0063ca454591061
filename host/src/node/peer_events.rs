//! What the node does with the transport's news of its connections: the
//! refused redial that shows a crashed leader, and the duplicate-id
//! refusals that stop a second process from counting as the same node.

use tenure_transport::PeerEvent;

use super::Node;
use crate::node_core::Output;

impl Node {
    /// Connection news from the transport. A refused reconnect to the
    /// leader is how a crashed leader shows (its kernel closed our
    /// connection and no process listens any more): the protocol is told,
    /// so it can campaign without waiting out the election timeout.
    ///
    /// A peer that refused this process as a duplicate (another live
    /// process holds this node id there) is fatal: this process stops, so
    /// two processes can never both count as one node.
    pub(super) fn on_peer_event(
        &mut self,
        event: PeerEvent,
    ) -> anyhow::Result<Option<anyhow::Result<Vec<Output>>>> {
        Ok(match event {
            PeerEvent::Connected { peer } => {
                tracing::debug!(node = %self.config.node_id, %peer, "connected");
                self.share_addresses(&peer);
                None
            }
            PeerEvent::Disconnected { peer } => {
                tracing::info!(node = %self.config.node_id, %peer, "connection lost");
                None
            }
            PeerEvent::RefusedAsDuplicate { peer, reason } => {
                anyhow::bail!(
                    "another live process already runs as node {}: {peer} says \"{reason}\"; \
                     this one stops (stop the other, or give this one its own node id and \
                     data directory)",
                    self.config.node_id
                );
            }
            PeerEvent::DuplicateId { peer } => {
                tracing::error!(
                    node = %self.config.node_id,
                    %peer,
                    "a second live process claims this peer's node id and was refused; stop one \
                     of them (a copied config, or a node started twice?)"
                );
                None
            }
            PeerEvent::Unreachable { peer } => {
                tracing::debug!(node = %self.config.node_id, %peer, "unreachable");
                Some(self.core.peer_unreachable(&peer))
            }
        })
    }
}
