//! The durable state a host persists, and the hand-over a protocol swap
//! carries to the next build (see [`crate::handover`]).

use super::*;

impl Election {
    pub(crate) fn handover(&self) -> Handover {
        Handover {
            node_id: self.id.clone(),
            cluster_id: self.cluster_id.clone(),
            term: self.term,
            voted_for: self.voted_for.clone(),
            members: (*self.members).clone(),
            role: role_code(self.role),
            leader: self.leader.clone(),
            granted: self.granted.clone(),
            rejected: self.rejected.clone(),
            pre_campaign: self.pre_campaign,
            leader_heard_ns: self.leader_heard_ns,
            leader_since_ns: self.leader_since_ns,
            liveness: self.liveness.clone(),
            election_timer: self.election_timer,
            heartbeat_timer: self.heartbeat_timer,
            next_timer_id: self.next_timer_id,
            ignored_messages: self.ignored_messages,
        }
    }

    pub(crate) fn from_handover(
        options: Options,
        h: Handover,
        lease: Lease,
        removed: BTreeSet<NodeId>,
        env: &mut impl Environment,
    ) -> Result<Election, String> {
        let role = role_from(h.role)?;
        let standing = options.standing();
        let mut e = Election {
            id: options.node_id,
            cluster_id: options.cluster_id,
            timings: options.timings,
            term: h.term,
            voted_for: h.voted_for,
            members: Versioned::new(h.members),
            // Set by the caller from format 5 on (0 before: see
            // crate::handover).
            epoch: 0,
            epoch_term: 0,
            joining: None,
            removed,
            role,
            leader: h.leader,
            granted: h.granted,
            rejected: h.rejected,
            pre_vote: options.pre_vote,
            pre_campaign: h.pre_campaign,
            leader_heard_ns: h.leader_heard_ns,
            lease: Versioned::new(lease),
            handing: None,
            named: Named::default(),
            identity: Identity::default(),
            standing,
            observers: BTreeSet::new(),
            peers: BTreeMap::new(),
            standings_version: 0,
            priority_handover_ns: None,
            failover_until_ns: None,
            failover_line: 1,
            pre_vote_retry_ns: None,
            refused_for_loyalty: Vec::new(),
            liveness: h.liveness,
            lists_sent: crate::lists::Sent::default(),
            lists_kept: crate::lists::Kept::default(),
            election_timer: h.election_timer,
            heartbeat_timer: h.heartbeat_timer,
            next_timer_id: h.next_timer_id,
            ignored_messages: h.ignored_messages,
            hints: Hints::default(),
            now_ns: env.now_ns(),
            leader_since_ns: h.leader_since_ns,
            unsaved: false,
            // A stand-aside is not handed over: a swap during one ends it
            // early (it only keeps a refusing plugin's node out of the way;
            // no safety rests on it).
            aside_until_ns: None,
            reported: None,
            confirmed_memo: core::cell::Cell::new(None),
            rank_memo: None,
            actions: Vec::new(),
        };
        e.log(
            LogLevel::Info,
            format!(
                "{} took over as {} at term {} from another build",
                e.id,
                e.role.as_str(),
                e.term
            ),
        );
        Ok(e)
    }

    /// The state that must survive a restart.
    pub fn persisted_state(&self) -> PersistedState {
        PersistedState {
            term: self.term,
            voted_for: self.voted_for.clone(),
            members: self.member_list(),
            epoch: self.epoch,
            epoch_term: self.epoch_term,
            removed: self.removed_list(),
            data_id: self.identity.data_id(),
            known_ids: self.identity.known_list(),
            confirmed_by: self.identity.confirmed_list(),
            abstain: self.identity.abstaining(),
        }
    }
}
