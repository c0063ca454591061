//! When a peer's process counts as dead: the evidence fast failover acts on.
//!
//! A follower that hears its leader is dead stops being loyal to it at once
//! and helps elect another — which is only sound if the leader really is
//! dead, because the leader's lease counts on that loyalty. So the word
//! "unreachable" must not come from anything a live process can cause:
//!
//! - a dial that **times out**, or a hello that fails, proves nothing (a
//!   lossy or partitioned link, a full listen backlog, a middlebox): never
//!   evidence;
//! - a dial that is **refused** (a TCP reset: nothing listens on the port)
//!   is evidence, but a firewall that resets connections to one port, or a
//!   listener that is briefly down, can refuse a live process's dial too;
//! - so a peer counts as dead only when a dial to it was refused **and**
//!   no connection from it is open: a live leader keeps its own connection
//!   to this node, and its heartbeats arrive on it, while a killed
//!   process's connections all close together when the kernel reaps it.
//!
//! The assumption this rests on, stated in the README's protocol section:
//! a refused dial while every connection from the peer has closed means
//! its process is gone. A network that resets *all* of a live peer's
//! connections breaks it; switch `[protocol] fast-failover` off there.
//!
//! [`DeathEvidence`] is a pure state machine, so the simulator decides
//! with the very rule the transport uses.

/// What this node has seen of one peer's connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeathEvidence {
    /// Authenticated connections from the peer that are open now.
    inbound_open: usize,
    /// The latest dial to the peer was refused.
    refused: bool,
    /// The death was reported; not again until the peer is reached.
    reported: bool,
}

impl DeathEvidence {
    /// A connection from the peer was authenticated (its hello checked).
    pub fn inbound_opened(&mut self) {
        self.inbound_open += 1;
    }

    /// A connection from the peer closed. True if the peer now counts as
    /// dead (report it once).
    pub fn inbound_closed(&mut self) -> bool {
        self.inbound_open = self.inbound_open.saturating_sub(1);
        self.verdict()
    }

    /// A dial to the peer was refused. True if the peer now counts as dead.
    pub fn dial_refused(&mut self) -> bool {
        self.refused = true;
        self.verdict()
    }

    /// A dial to the peer reached it: any earlier refusal is void.
    pub fn dial_connected(&mut self) {
        self.refused = false;
        self.reported = false;
    }

    /// Whether a connection from the peer is open now.
    pub fn hears_from_it(&self) -> bool {
        self.inbound_open > 0
    }

    fn verdict(&mut self) -> bool {
        let dead = self.refused && self.inbound_open == 0 && !self.reported;
        if dead {
            self.reported = true;
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_alone_is_death_when_nothing_comes_from_the_peer() {
        let mut peer = DeathEvidence::default();
        assert!(peer.dial_refused());
        assert!(!peer.dial_refused(), "reported once per streak");
        peer.dial_connected();
        assert!(peer.dial_refused());
    }

    #[test]
    fn a_refusal_while_the_peer_still_talks_to_us_is_not_death() {
        let mut peer = DeathEvidence::default();
        peer.inbound_opened();
        assert!(!peer.dial_refused(), "a resetting firewall, not a death");
        assert!(!peer.dial_refused());
        // Its own connection closes too: now it is gone.
        assert!(peer.inbound_closed());
    }

    #[test]
    fn a_closed_connection_without_a_refusal_is_not_death() {
        let mut peer = DeathEvidence::default();
        peer.inbound_opened();
        assert!(!peer.inbound_closed());
        peer.inbound_opened();
        peer.inbound_opened();
        assert!(!peer.dial_refused());
        assert!(!peer.inbound_closed());
        assert!(peer.inbound_closed());
    }
}
