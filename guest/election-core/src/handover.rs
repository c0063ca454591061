//! Moving a running election into another build of the protocol (a
//! protocol hot swap): the whole state, versioned.
//!
//! [`Election::export_state`] captures everything — term, vote, role,
//! leader, membership, votes in flight, liveness, the data ids of
//! [`crate::identity`] and the ids of the timers
//! it armed (the host keeps those timers running; they fire into the new
//! build, which recognises them) — as one [`HANDOVER_FORMAT`] byte plus a
//! postcard-encoded record. [`Election::import_state`] refuses any other
//! format, and a state of another node or cluster, naming the problem: the
//! old build then keeps running.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::election::Election;
use crate::identity::{Durable, Identity};
use crate::lease::Lease;
use crate::liveness::Liveness;
use crate::options::Options;
use crate::transfer::{Handing, Named};
use crate::types::{Environment, NodeId, Role, Term, TimerId};

/// The handover format this build writes. It also reads format 4 (the
/// builds before membership epochs: the membership is taken as epoch 0,
/// so the node adopts the next view its leader sends, and a leader makes
/// its first change only after a majority acknowledged it), format 3 (the
/// builds before data ids: the node draws a data id at once, persists it
/// and asks its peers to confirm it; until a majority of the others do it
/// neither votes nor stands), format 2 (the builds before named
/// transfers: a leader that had handed over abandons that transfer at
/// once and leases again from its next acknowledged round), and format 1
/// (the builds before leases), whose leader resumes without a lease until
/// its next acknowledged heartbeat round. Formats 1 and 2 draw a data id
/// as format 3 does.
pub const HANDOVER_FORMAT: u8 = 5;

/// Format 5: format 4's state plus the membership epoch (see
/// [`crate::membership`]) and the pending join.
#[derive(Serialize, Deserialize)]
pub(crate) struct HandoverWithEpoch {
    pub(crate) v4: HandoverWithIdentity,
    pub(crate) epoch: u64,
    pub(crate) epoch_term: Term,
    pub(crate) joining: Option<NodeId>,
}

/// Format 4: format 3's state plus the durable part of
/// [`crate::identity`] (data id, records, confirmations, abstention).
#[derive(Serialize, Deserialize)]
pub(crate) struct HandoverWithIdentity {
    pub(crate) v3: HandoverWithTransfer,
    pub(crate) identity: Durable,
}

/// Format 3: format 2's state plus the transfer bookkeeping of
/// [`crate::transfer`].
#[derive(Serialize, Deserialize)]
pub(crate) struct HandoverWithTransfer {
    pub(crate) v2: HandoverWithLease,
    pub(crate) handing: Option<Handing>,
    pub(crate) named: Named,
}

/// Format 2: format 1's state plus the leader's lease bookkeeping and the
/// members removed with `leave`.
#[derive(Serialize, Deserialize)]
pub(crate) struct HandoverWithLease {
    pub(crate) core: Handover,
    pub(crate) lease: Lease,
    pub(crate) removed: BTreeSet<NodeId>,
}

/// The state handed from one build to the next (all of format 1).
#[derive(Serialize, Deserialize)]
pub(crate) struct Handover {
    pub(crate) node_id: NodeId,
    pub(crate) cluster_id: String,
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) members: BTreeSet<NodeId>,
    /// 0 follower, 1 candidate, 2 leader.
    pub(crate) role: u8,
    pub(crate) leader: Option<NodeId>,
    pub(crate) granted: BTreeSet<NodeId>,
    pub(crate) rejected: BTreeSet<NodeId>,
    pub(crate) pre_campaign: bool,
    pub(crate) leader_heard_ns: Option<u64>,
    pub(crate) leader_since_ns: u64,
    pub(crate) liveness: Liveness,
    pub(crate) election_timer: Option<TimerId>,
    pub(crate) heartbeat_timer: Option<TimerId>,
    pub(crate) next_timer_id: TimerId,
    pub(crate) ignored_messages: u64,
}

pub(crate) fn role_code(role: Role) -> u8 {
    match role {
        Role::Follower => 0,
        Role::Candidate => 1,
        Role::Leader => 2,
    }
}

pub(crate) fn role_from(code: u8) -> Result<Role, String> {
    match code {
        0 => Ok(Role::Follower),
        1 => Ok(Role::Candidate),
        2 => Ok(Role::Leader),
        other => Err(format!("unknown role code {other}")),
    }
}

impl Election {
    /// The whole state, for [`Election::import_state`] in another build.
    /// The instance stays usable (a refused swap keeps it running).
    pub fn export_state(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(HANDOVER_FORMAT);
        let state = HandoverWithEpoch {
            v4: HandoverWithIdentity {
                v3: HandoverWithTransfer {
                    v2: HandoverWithLease {
                        core: self.handover(),
                        lease: (*self.lease).clone(),
                        removed: self.removed.clone(),
                    },
                    handing: self.handing.clone(),
                    named: self.named.clone(),
                },
                identity: self.identity.durable().clone(),
            },
            epoch: self.epoch,
            epoch_term: self.epoch_term,
            joining: self.joining.clone(),
        };
        match postcard::to_extend(&state, out) {
            Ok(out) => out,
            Err(_) => unreachable!("postcard encoding into a Vec is infallible"),
        }
    }

    /// Takes over from a state another build exported, instead of
    /// [`Election::start`]. `options` must be valid and name the same node
    /// and cluster; the timings may differ (they apply from the next timer
    /// armed). Nothing is sent or persisted (the exporting build already
    /// did both), except by a state of format 1 to 3: its new data id is
    /// persisted, and its peers asked to confirm it, at once.
    pub fn import_state(
        options: Options,
        state: &[u8],
        env: &mut impl Environment,
    ) -> Result<Election, String> {
        options.validate().map_err(|e| format!("{e}"))?;
        let (&format, rest) = state.split_first().ok_or("empty state")?;
        let (v3, identity, (epoch, epoch_term), joining) = match format {
            1..=3 => (import_before_identity(format, rest)?, None, (0, 0), None),
            4 => match postcard::take_from_bytes::<HandoverWithIdentity>(rest) {
                Ok((h, [])) => (h.v3, Some(h.identity), (0, 0), None),
                _ => return Err("malformed state".into()),
            },
            HANDOVER_FORMAT => match postcard::take_from_bytes::<HandoverWithEpoch>(rest) {
                Ok((h, [])) => (
                    h.v4.v3,
                    Some(h.v4.identity),
                    (h.epoch, h.epoch_term),
                    h.joining,
                ),
                _ => return Err("malformed state".into()),
            },
            other => {
                return Err(format!(
                    "state of handover format {other}; this build reads formats 1 to {HANDOVER_FORMAT}"
                ));
            }
        };
        let HandoverWithTransfer {
            v2:
                HandoverWithLease {
                    core: handover,
                    lease,
                    removed,
                },
            handing,
            named,
        } = v3;
        if handover.node_id != options.node_id || handover.cluster_id != options.cluster_id {
            return Err(format!(
                "state of node {} in cluster {}, not of {} in {}",
                handover.node_id, handover.cluster_id, options.node_id, options.cluster_id
            ));
        }
        let drawn = identity.is_none();
        let identity = identity.unwrap_or_else(|| Durable::fresh(env));
        let mut e = Election::from_handover(options, handover, lease, removed, env)?;
        e.epoch = epoch;
        e.epoch_term = epoch_term;
        e.joining = joining;
        e.handing = handing;
        e.named = named;
        e.identity = Identity::from_durable(identity);
        e.resume_identity(drawn);
        Ok(e)
    }
}

/// Reads a state of format 1, 2 or 3 as format 3.
fn import_before_identity(format: u8, rest: &[u8]) -> Result<HandoverWithTransfer, String> {
    Ok(match format {
        1 => match postcard::take_from_bytes::<Handover>(rest) {
            Ok((core, [])) => HandoverWithTransfer {
                v2: HandoverWithLease {
                    core,
                    lease: Lease::default(),
                    removed: BTreeSet::new(),
                },
                handing: None,
                named: Named::default(),
            },
            _ => return Err("malformed state".into()),
        },
        2 => match postcard::take_from_bytes::<HandoverWithLease>(rest) {
            Ok((mut v2, [])) => {
                // Format 2 gave the lease up for the rest of the term
                // and did not say to whom: end that transfer now. The
                // voters of this build honour no bypass they were not
                // told of, so leasing again from rounds sent from now
                // on is sound.
                if v2.lease.given_up {
                    v2.lease.abandon();
                }
                HandoverWithTransfer {
                    v2,
                    handing: None,
                    named: Named::default(),
                }
            }
            _ => return Err("malformed state".into()),
        },
        _ => match postcard::take_from_bytes(rest) {
            Ok((h, [])) => h,
            _ => return Err("malformed state".into()),
        },
    })
}
