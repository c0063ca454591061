//! One live process per node id, as this node sees its peers.
//!
//! Every transport draws a random *incarnation* when it starts and sends it
//! in each hello. Two processes that claim one node id — a config copied to
//! a second host, a node started twice — have different incarnations. While
//! an authenticated connection from one incarnation of a peer is open, a
//! hello from another incarnation of it is refused and reported loudly: its
//! frames never reach the protocol, its hello never moves the peer's
//! address, so the two can never both count as that node *here*.
//!
//! A restart is not a duplicate: a killed process's connections close with
//! it (its kernel resets them), so the new incarnation finds no open claim.
//! A host that vanished without closing its connections leaves them
//! half-open until TCP keepalive gives up on them ([`KEEPALIVE`], about 4 s);
//! until then its restarted process is refused, and says so in the log.
//!
//! What one node cannot see: two processes each accepted by *different*
//! peers (each reached a peer the other never dialled). The protocol's data
//! ids catch that case when the two have separate data directories.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// TCP keepalive on accepted connections: the first probe after `idle`,
/// then every `interval`, giving up after `retries` unanswered probes.
pub(crate) struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub retries: u32,
}

/// The keepalive that ends a vanished host's half-open connections.
pub(crate) const KEEPALIVE: Keepalive = Keepalive {
    idle: Duration::from_secs(1),
    interval: Duration::from_secs(1),
    retries: 3,
};

/// Which incarnation of a peer this node listens to, and through how many
/// open connections.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    incarnation: u64,
    remote: SocketAddr,
    open: usize,
}

/// Every peer's live claim.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    live: BTreeMap<String, Claim>,
    /// Refused (node id, incarnation) pairs already reported.
    reported: std::collections::BTreeSet<(String, u64)>,
}

/// A hello refused because another incarnation of the peer is connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    /// The incarnation already connected, and from where.
    pub holder: (u64, SocketAddr),
    /// The refused one.
    pub refused: (u64, SocketAddr),
}

impl Claims {
    /// A hello from `peer`, incarnation `incarnation`, from `remote`:
    /// accepted (and counted open until [`Claims::close`]) unless another
    /// incarnation of `peer` holds an open connection.
    pub fn open(
        &mut self,
        peer: &str,
        incarnation: u64,
        remote: SocketAddr,
    ) -> Result<(), Duplicate> {
        match self.live.get_mut(peer) {
            Some(claim) if claim.open > 0 && claim.incarnation != incarnation => Err(Duplicate {
                holder: (claim.incarnation, claim.remote),
                refused: (incarnation, remote),
            }),
            Some(claim) if claim.incarnation == incarnation => {
                claim.open += 1;
                claim.remote = remote;
                Ok(())
            }
            _ => {
                self.live.insert(
                    peer.to_owned(),
                    Claim {
                        incarnation,
                        remote,
                        open: 1,
                    },
                );
                Ok(())
            }
        }
    }

    /// Whether this is the first refusal of `peer`'s `incarnation` (so it
    /// is logged and reported once, not on every redial).
    pub fn first_refusal(&mut self, peer: &str, incarnation: u64) -> bool {
        self.reported.insert((peer.to_owned(), incarnation))
    }

    /// An accepted connection of `peer`'s `incarnation` closed.
    pub fn close(&mut self, peer: &str, incarnation: u64) {
        if let Some(claim) = self.live.get_mut(peer)
            && claim.incarnation == incarnation
        {
            claim.open = claim.open.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_second_live_incarnation_is_refused_and_a_restart_is_not() {
        let mut claims = Claims::default();
        assert_eq!(claims.open("n1", 7, addr(1)), Ok(()));
        assert_eq!(
            claims.open("n1", 7, addr(2)),
            Ok(()),
            "same process, new connection"
        );
        let refused = claims.open("n1", 9, addr(3)).expect_err("a duplicate");
        assert_eq!(refused.holder.0, 7);
        assert_eq!(refused.refused, (9, addr(3)));
        claims.close("n1", 7);
        assert!(
            claims.open("n1", 9, addr(3)).is_err(),
            "one connection still open"
        );
        claims.close("n1", 9);
        claims.close("n1", 7);
        // Every connection of 7 closed: a restart (9) takes over.
        assert_eq!(claims.open("n1", 9, addr(3)), Ok(()));
        assert!(
            claims.open("n1", 7, addr(1)).is_err(),
            "the old one is now the duplicate"
        );
        assert_eq!(
            claims.open("n2", 7, addr(1)),
            Ok(()),
            "claims are per node id"
        );
    }
}
