//! What a host reads of a node: its view of the election, and its lease.

use super::*;

/// A status handed to the host, and the versions of the values its lists
/// and lease were derived from.
#[derive(Debug)]
pub(crate) struct Reported {
    status: Status,
    members: u64,
    liveness: u64,
    lease: u64,
}

impl Election {
    /// The node's status, if it changed since the last call (always on
    /// the first): what a host calls after each call instead of polling
    /// [`Election::status`], so it learns of every change of role, term,
    /// leader, lease, members or peers, and of nothing else.
    pub fn status_change(&mut self) -> Option<Status> {
        let unchanged = self.reported.as_ref().is_some_and(|r| self.status_is(r));
        // Every test build checks the shortcuts against the whole status.
        debug_assert_eq!(
            unchanged,
            self.reported
                .as_ref()
                .is_some_and(|r| r.status == self.status()),
            "status_is and status disagree"
        );
        if unchanged {
            return None;
        }
        let now = self.status();
        self.reported = Some(Reported {
            status: now.clone(),
            members: self.members.version(),
            liveness: self.liveness.version(),
            lease: self.lease.version(),
        });
        Some(now)
    }

    /// Whether `status()` would equal `reported`, compared in place: the
    /// host asks after every call, and building a status copies every
    /// member and live peer (at 51 members that was a quarter of the
    /// simulator's time). The lists and the lease are compared only if
    /// what they derive from changed since (see [`crate::versioned`]): a
    /// steady cluster's calls change neither. Destructured, so a new field
    /// cannot be missed.
    fn status_is(&self, reported: &Reported) -> bool {
        let same_members = reported.members == self.members.version();
        let same_liveness = reported.liveness == self.liveness.version();
        let same_lease = same_members && reported.lease == self.lease.version();
        let Reported { status, .. } = reported;
        let Status {
            node_id,
            cluster_id,
            role,
            term,
            leader,
            voted_for,
            members,
            epoch,
            alive_peers,
            quorum,
            ignored_messages,
            lease_expires_ns,
            data_id,
            abstaining,
            confirmed,
        } = status;
        *role == self.role
            && *term == self.term
            && *epoch == self.epoch
            && *ignored_messages == self.ignored_messages
            && *leader == self.leader
            && *voted_for == self.voted_for
            && (same_lease || *lease_expires_ns == self.lease_expires_ns())
            && *data_id == self.identity.data_id()
            && *abstaining == self.identity.abstaining()
            && *quorum == quorum::majority(self.members.len()) as u32
            && (same_members || members.iter().eq(self.members.iter()))
            && (same_liveness || alive_peers.iter().eq(self.liveness.alive_ids()))
            && *confirmed == self.confirmed()
            && *node_id == self.id
            && *cluster_id == self.cluster_id
    }

    /// The node's current view.
    pub fn status(&self) -> Status {
        Status {
            node_id: self.id.clone(),
            cluster_id: self.cluster_id.clone(),
            role: self.role,
            term: self.term,
            leader: self.leader.clone(),
            voted_for: self.voted_for.clone(),
            members: self.member_list(),
            epoch: self.epoch,
            alive_peers: self.liveness.alive(),
            quorum: quorum::majority(self.members.len()) as u32,
            ignored_messages: self.ignored_messages,
            lease_expires_ns: self.lease_expires_ns(),
            data_id: self.identity.data_id(),
            abstaining: self.identity.abstaining(),
            confirmed: self.confirmed(),
        }
    }

    /// Until when this node may act as the sole leader, if it leads and
    /// holds a lease.
    ///
    /// The lease starts at the send time of the latest heartbeat round that
    /// a majority (this node included) acknowledged: every node of that
    /// majority received the round after it was sent, and stays loyal (no
    /// vote for anyone else, see `leader_heard_ns`) for a minimum election
    /// timeout after receiving it, so no other leader can be elected before
    /// `start + min timeout`. The clock-drift margin covers clocks that run
    /// at slightly different rates.
    pub fn lease_expires_ns(&self) -> Option<u64> {
        if self.role != Role::Leader {
            return None;
        }
        let start = self.lease.start_of(&self.members, &self.id)?;
        let window = u64::from(self.timings.election_timeout_min_ms)
            .saturating_sub(u64::from(self.timings.lease_drift_margin_ms))
            * NS_PER_MS;
        Some(start.saturating_add(window))
    }

    /// The heartbeat timer a leader has armed (for tests and tools that
    /// drive a leader by hand).
    pub fn heartbeat_timer_id(&self) -> Option<TimerId> {
        self.heartbeat_timer
    }
}
