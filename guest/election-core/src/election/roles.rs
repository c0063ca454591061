//! Role changes: the only places `role` is assigned, and the term that
//! comes with them. Each change writes one greppable log line.

use super::*;

impl Election {
    /// Gives up leadership or a candidacy. The node follows no one and
    /// waits at least the maximum election timeout before standing again,
    /// so that a peer (whose timer is at most that long) takes over.
    pub fn step_down(&mut self, env: &mut impl Environment) {
        if self.role == Role::Follower {
            self.log(
                LogLevel::Debug,
                format!("{} had nothing to step down from", self.id),
            );
            return;
        }
        self.log(
            LogLevel::Info,
            format!("{} stepped down at term {}", self.id, self.term),
        );
        let hold_off = u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS;
        self.become_follower(self.term, None, env, hold_off);
        self.flush();
    }

    pub(crate) fn become_follower(
        &mut self,
        term: Term,
        leader: Option<NodeId>,
        env: &mut impl Environment,
        hold_off_ns: u64,
    ) {
        if term > self.term {
            self.set_term(term, None);
        }
        let changed = self.role != Role::Follower || self.leader != leader;
        if leader.is_some() {
            self.failover_until_ns = None;
            self.identity.stand_when_confirmed = false;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.pre_campaign = false;
        self.handing = None;
        self.granted.clear();
        self.rejected.clear();
        self.pre_vote_retry_ns = None;
        self.cancel_heartbeat_timer();
        if hold_off_ns == 0
            && let Some(leader) = self.leader.clone()
        {
            self.arm_timeout_turn(&leader, env);
        } else {
            self.arm_election_timer(env, hold_off_ns);
        }
        if changed {
            let message = match &self.leader {
                Some(leader) => format!(
                    "{} became follower of {leader} at term {}",
                    self.id, self.term
                ),
                None => format!(
                    "{} became follower of no one at term {}",
                    self.id, self.term
                ),
            };
            self.log(LogLevel::Info, message);
            self.emit(Event::BecameFollower {
                leader: self.leader.clone(),
                term: self.term,
            });
        }
    }

    /// `transfer`: the leader handed over to this node (TimeoutNow), so
    /// its vote requests say so and loyal nodes grant them.
    pub(crate) fn become_candidate(&mut self, env: &mut impl Environment, transfer: bool) {
        // Illegal transitions caught in every native test run (as etcd's
        // raft.go panics in becomeCandidate): a leader never stands again.
        debug_assert_ne!(
            self.role,
            Role::Leader,
            "{}: a leader became candidate",
            self.id
        );
        self.pre_campaign = false;
        if !self.votes() {
            // An observer, a removed node, or one that learned it lost its
            // state while a pre-vote was under way: it never stands.
            return;
        }
        if !transfer && self.loyal() {
            // Every path here checks loyalty first; this is the last line.
            return self.wait_out_loyalty(env);
        }
        if !self.confirmed() {
            // Its own vote is a vote too.
            return self.wait_for_confirmation(env);
        }
        let Some(term) = self.next_term(env) else {
            return;
        };
        self.identity.stand_when_confirmed = false;
        let own_vote = Some(self.id.clone());
        self.set_term(term, own_vote);
        self.role = Role::Candidate;
        self.leader = None;
        self.granted.clear();
        self.granted.insert(self.id.clone());
        self.rejected.clear();
        self.cancel_heartbeat_timer();
        self.log(
            LogLevel::Info,
            format!("{} became candidate at term {}", self.id, self.term),
        );
        // Re-armed on every candidacy: a failed or split election ends
        // when this fires again, with a fresh random timeout.
        self.arm_election_timer(env, 0);
        self.send_to_all(Body::RequestVote {
            term: self.term,
            transfer,
            epoch: self.epoch,
            epoch_term: self.epoch_term,
        });
        self.count_votes();
    }

    pub(crate) fn become_leader(&mut self) {
        debug_assert_eq!(
            self.role,
            Role::Candidate,
            "{}: only a candidate becomes leader",
            self.id
        );
        debug_assert!(
            self.voted_for.as_deref() == Some(self.id.as_str()),
            "{}: a leader voted for itself in its term",
            self.id
        );
        self.role = Role::Leader;
        self.leader = Some(self.id.clone());
        self.leader_since_ns = self.now_ns;
        self.failover_until_ns = None;
        // Its view is now this term's (Raft's new leader's no-op entry):
        // the voters that acknowledge it refuse candidates of older views.
        if self.epoch_term != self.term {
            self.epoch_term = self.term;
            self.unsaved = true;
        }
        self.lease.set(Lease::starting_after(&self.lease));
        self.handing = None;
        self.granted.clear();
        self.rejected.clear();
        if let Some(id) = self.election_timer.take() {
            self.actions.push(Action::CancelTimer { id });
        }
        self.log(
            LogLevel::Info,
            format!("{} became leader at term {}", self.id, self.term),
        );
        self.emit(Event::BecameLeader(self.term));
        self.send_heartbeats();
        self.arm_heartbeat_timer();
    }

    /// Check-quorum: whether a leader has heard from a majority (itself
    /// included) within the last minimum election timeout. After that long
    /// without a majority, the others may already have elected someone
    /// else, so a leader that cannot tell otherwise must stop leading. A
    /// new leader gets one window before it is judged.
    pub(crate) fn majority_in_contact(&self) -> bool {
        let window = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        if self.now_ns.saturating_sub(self.leader_since_ns) < window {
            return true;
        }
        let since = self.now_ns.saturating_sub(window);
        let heard = self
            .members
            .iter()
            .filter(|m| **m != self.id && self.liveness.heard_since(m, since))
            .count();
        quorum::tally(self.members.len(), heard + 1, 0) == VoteResult::Won
    }

    /// The term this node would campaign in, or none at the term ceiling
    /// (see [`crate::terms`]): then it logs an error, re-arms its timer
    /// and keeps following whoever leads, rather than wrap around.
    pub(crate) fn next_term(&mut self, env: &mut impl Environment) -> Option<Term> {
        let next = terms::next(self.term);
        if next.is_none() {
            self.log(
                LogLevel::Error,
                format!(
                    "{} is at term {}, at or above the ceiling {}: it never campaigns again (a faulty peer may have pushed the term up)",
                    self.id,
                    self.term,
                    terms::TERM_CEILING
                ),
            );
            self.arm_election_timer(env, 0);
        }
        next
    }

    /// Moves to `term` with `vote` (a candidate's own, or none) and reports
    /// it; the new term and vote are persisted before the event leaves.
    pub(crate) fn set_term(&mut self, term: Term, vote: Option<NodeId>) {
        let old = self.term;
        debug_assert!(
            term > old,
            "{}: term {old} -> {term}: terms only rise",
            self.id
        );
        self.term = term;
        self.voted_for = vote;
        self.unsaved = true;
        self.emit(Event::TermChanged { old, new: term });
    }
}
