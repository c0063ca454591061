//! Handing leadership over: operator transfers (Raft's TimeoutNow) and
//! hand-overs to a voter of higher priority.

use super::*;

impl Election {
    /// Hands leadership to `to` (Raft's TimeoutNow): the leader tells `to`
    /// to campaign at once, without a pre-vote; `to` wins the next term
    /// within about a round trip, since the others' votes are free in it.
    /// Refused, with the reason, unless this node leads and `to` is another
    /// member heard from within the minimum election timeout.
    pub fn transfer_leadership(
        &mut self,
        to: &str,
        env: &mut impl Environment,
    ) -> Result<(), ChangeRefusal> {
        self.now_ns = env.now_ns();
        if self.role != Role::Leader {
            return Err(ChangeRefusal::NotLeader {
                node: self.id.clone(),
                leader: self.leader.clone(),
            });
        }
        if to == self.id {
            return Err(ChangeRefusal::AlreadyLeads { node: to.into() });
        }
        if !self.members.contains(to) {
            return Err(ChangeRefusal::UnknownNode { node: to.into() });
        }
        let window = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        let since = self.now_ns.saturating_sub(window);
        if !self.liveness.heard_since(to, since) {
            return Err(ChangeRefusal::NotHeardLately { node: to.into() });
        }
        if let Some(handing) = &self.handing {
            return Err(ChangeRefusal::TransferUnderWay {
                to: handing.to.clone(),
                for_ms: u64::from(self.timings.election_timeout_max_ms),
            });
        }
        self.hand_over(to);
        self.flush();
        Ok(())
    }

    /// Hands leadership to `to` (see [`crate::transfer`]): a heartbeat
    /// round naming `to` goes to everyone first, and once a majority has
    /// acknowledged it `to` is told to campaign now (TimeoutNow, from
    /// [`Election::tell_transfer_target`]). The target's election is exempt
    /// from the others' loyalty, so this leader holds no lease until the
    /// transfer is abandoned.
    pub(crate) fn hand_over(&mut self, to: &str) {
        self.log(
            LogLevel::Info,
            format!("{} hands leadership of term {} to {to}", self.id, self.term),
        );
        self.lease.edit().given_up = true;
        self.handing = Some(Handing {
            to: to.into(),
            began_ns: self.now_ns,
            naming_round: self.lease.round + 1,
            told: false,
        });
        self.send_heartbeats();
        self.tell_transfer_target();
    }

    /// Sends the transfer target its TimeoutNow once a majority has
    /// acknowledged a round naming it (so every voter of that majority
    /// honours the target's vote request, however fast it travels).
    pub(crate) fn tell_transfer_target(&mut self) {
        let Some(handing) = self.handing.as_ref().filter(|h| !h.told) else {
            return;
        };
        if !self
            .lease
            .majority_acked(&self.members, &self.id, handing.naming_round)
        {
            return;
        }
        let to = handing.to.clone();
        if let Some(handing) = self.handing.as_mut() {
            handing.told = true;
        }
        let round = self.lease.round;
        self.send(
            &to,
            Body::TimeoutNow {
                term: self.term,
                round,
            },
        );
    }

    /// A transfer not won within a maximum election timeout (its
    /// TimeoutNow lost, its target down) is abandoned: the heartbeats that
    /// follow name no one, and the lease starts again from them.
    pub(crate) fn abandon_stale_transfer(&mut self) {
        let max = u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS;
        let Some(handing) = self.handing.take_if(|h| h.expired(self.now_ns, max)) else {
            return;
        };
        self.log(
            LogLevel::Warn,
            format!(
                "{} abandoned its transfer to {} at term {}: not taken up within {} ms",
                self.id, handing.to, self.term, self.timings.election_timeout_max_ms
            ),
        );
        self.lease.edit().abandon();
    }

    /// Whether this loyal node grants `candidate` a transfer vote for
    /// `term`: only for the next term, and only to the target its leader
    /// named (or, for the leader itself, its own target).
    pub(crate) fn honours_transfer(&self, candidate: &str, term: Term) -> bool {
        if Some(term) != terms::next(self.term) {
            return false;
        }
        if self.role == Role::Leader {
            return self.handing.as_ref().is_some_and(|h| h.to == candidate);
        }
        self.leader
            .as_deref()
            .is_some_and(|leader| self.named.names(leader, self.term, candidate))
    }

    pub(crate) fn on_timeout_now(
        &mut self,
        from: &str,
        term: Term,
        round: u64,
        env: &mut impl Environment,
    ) {
        // Only from the leader this node follows, in its term: a stale or
        // forged hand-over is ignored.
        if term != self.term
            || self.leader.as_deref() != Some(from)
            || self.role != Role::Follower
            || !self.votes()
        {
            return;
        }
        if self.aside_left_ns().is_some() {
            return self.log(
                LogLevel::Info,
                format!(
                    "{} ignored a hand-over from {from}: it stands aside",
                    self.id
                ),
            );
        }
        if self.named.superseded(from, term, round, &self.id) {
            return self.log(
                LogLevel::Info,
                format!(
                    "{} ignored a hand-over from {from}: its later heartbeats no longer name it",
                    self.id
                ),
            );
        }
        self.log(
            LogLevel::Info,
            format!("{} takes over from {from} after term {term}", self.id),
        );
        self.become_candidate(env, true);
    }

    /// A leader that has led for the stability window hands over to the
    /// voter of highest priority above its own that has been heard from
    /// without a break for that long (at most once per maximum election
    /// timeout, in case the hand-over fails).
    pub(crate) fn prefer_priority(&mut self) {
        let now = self.now_ns;
        let window = u64::from(self.timings.stability_window_ms) * NS_PER_MS;
        let unbroken = 3 * u64::from(self.timings.heartbeat_interval_ms) * NS_PER_MS;
        // Twice the time a failed transfer takes to be abandoned, so the
        // lease resumes between attempts at an unreachable target.
        let retry = 2 * u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS;
        if now.saturating_sub(self.leader_since_ns) < window
            || self.handing.is_some()
            || self
                .priority_handover_ns
                .is_some_and(|at| now.saturating_sub(at) < retry)
        {
            return;
        }
        let mine = self.standing.priority;
        let reachable = |(peer, p): &(&NodeId, &PeerStanding)| {
            self.members.contains(peer.as_str())
                && p.standing.voter
                && now.saturating_sub(p.last_ns) <= unbroken
        };
        // Only the top priority among reachable voters is a target: handing
        // to a lower one first would mean a second hand-over soon after.
        let top = self
            .peers
            .iter()
            .filter(reachable)
            .map(|(_, p)| p.standing.priority)
            .max()
            .unwrap_or(0);
        if top <= mine {
            return;
        }
        let best = self
            .peers
            .iter()
            .filter(reachable)
            .filter(|(_, p)| p.standing.priority == top && now.saturating_sub(p.since_ns) >= window)
            .max_by(|(a, pa), (b, pb)| {
                pa.standing
                    .priority
                    .cmp(&pb.standing.priority)
                    .then_with(|| b.cmp(a))
            })
            .map(|(peer, p)| (peer.clone(), p.standing.priority));
        if let Some((to, priority)) = best {
            self.log(
                LogLevel::Info,
                format!(
                    "{} hands over to {to}, of higher priority ({priority} > {mine})",
                    self.id
                ),
            );
            self.priority_handover_ns = Some(now);
            self.hand_over(&to);
        }
    }
}
