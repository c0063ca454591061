//! Faults of the network's edge that a real host's transport sees, and the
//! rule it judges them by.
//!
//! A real transport reports a peer dead (the protocol's `peer-unreachable`)
//! only on the evidence of [`tenure_transport::death`]: a refused dial while
//! no connection from the peer is open. The simulator makes the refusals —
//! a crash's, but also a live peer's, as a firewall that resets one port or
//! a full listen backlog would cause — and passes them through the same
//! rule, so what it proves about fast failover is what the node does.

use tenure_transport::death::DeathEvidence;

use super::{NodeIndex, Simulation};

impl Simulation {
    /// `node`'s dial to `peer` is refused now, whether or not `peer`'s
    /// process lives (a resetting firewall, a listener briefly down).
    ///
    /// The connection `peer` holds to `node` stays open while `peer` runs
    /// and the network lets it reach `node`; judged by the transport's rule,
    /// the refusal then proves nothing and the protocol hears nothing. Only
    /// if `peer` is down or cut off from `node` is `node` told
    /// `peer-unreachable` (a refusal under a partition is the one case the
    /// rule cannot tell from a death; the README states that assumption).
    pub fn refuse_dial(&mut self, node: NodeIndex, peer: NodeIndex) {
        if node == peer || !self.is_up(node) || peer >= self.nodes.len() {
            return;
        }
        let mut evidence = DeathEvidence::default();
        if self.is_up(peer) && self.partition.connected(peer, node) {
            evidence.inbound_opened();
        }
        let dead = evidence.dial_refused();
        let peer_id = self.nodes[peer].spec.id.clone();
        self.trace_line(format!(
            "{}'s dial to {peer_id} refused ({})",
            self.nodes[node].spec.id,
            if dead {
                "taken for a death"
            } else {
                "ignored: it still talks to us"
            }
        ));
        if dead {
            let _ = self.call(node, |i| i.peer_unreachable(&peer_id));
        }
    }
}
