//! Votes and pre-votes: granting them, counting them, and standing for
//! election (or saying why not).

use super::*;

impl Election {
    /// Starts an election now, as if the election timer had fired (a
    /// pre-vote first when pre-vote is on).
    ///
    /// Refused, saying why, by a leader, an observer, a removed node, a
    /// node at the term ceiling, and a node loyal to a live leader (see
    /// [`Refusal::Loyal`]: standing then could elect a second leader
    /// inside the first one's lease). A refusal changes nothing.
    pub fn campaign(&mut self, env: &mut impl Environment) -> Result<(), Refusal> {
        self.now_ns = env.now_ns();
        if let Some(refusal) = self.stand_refusal() {
            self.log(
                LogLevel::Info,
                format!("{} refused to campaign: it {refusal}", self.id),
            );
            if let Refusal::Unconfirmed { .. } = refusal {
                self.ask_for_confirmation();
                self.flush();
            }
            return Err(refusal);
        }
        if self.pre_vote {
            self.start_pre_vote(env);
        } else {
            self.become_candidate(env, false);
        }
        self.flush();
        Ok(())
    }

    /// Why this node may not stand now (not as a transfer's target), if
    /// it may not.
    pub(crate) fn stand_refusal(&self) -> Option<Refusal> {
        if self.role == Role::Leader {
            Some(Refusal::Leading { term: self.term })
        } else if !self.standing.voter {
            Some(Refusal::Observer)
        } else if self.identity.abstaining() {
            Some(Refusal::LostState)
        } else if self.removed.contains(&self.id) {
            Some(Refusal::Removed)
        } else if !self.votes() || self.joining.is_some() {
            // Not (yet) admitted to the membership.
            Some(Refusal::NotAdmitted)
        } else if terms::next(self.term).is_none() {
            Some(Refusal::TermCeiling { term: self.term })
        } else if let Some(left) = self.aside_left_ns() {
            Some(Refusal::StandingAside {
                for_ms: left.div_ceil(NS_PER_MS),
            })
        } else if !self.confirmed() {
            let (have, need) = self
                .identity
                .confirmations(&self.confirmation_view(), &self.id);
            Some(Refusal::Unconfirmed {
                have: have as u32,
                need: need as u32,
            })
        } else {
            let left = self.loyalty_left_ns()?;
            Some(Refusal::Loyal {
                leader: self.leader.clone(),
                for_ms: left.div_ceil(NS_PER_MS),
            })
        }
    }

    /// How much longer this follower stays loyal, if it is (see
    /// [`Election::loyal`]).
    pub(crate) fn loyalty_left_ns(&self) -> Option<u64> {
        let window = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        let heard = self.leader_heard_ns?;
        let since = self.now_ns.saturating_sub(heard);
        (since < window).then(|| window - since)
    }

    pub(crate) fn on_request_vote(
        &mut self,
        from: &str,
        term: Term,
        transfer: bool,
        view_current: bool,
        env: &mut impl Environment,
    ) {
        if !view_current && self.grants_votes() && term > self.term && !self.loyal() {
            // The candidate's membership is older than this node's (see
            // crate::membership): no vote — but its term is adopted, as
            // Raft adopts the term of a candidate whose log is behind.
            // Otherwise the nodes of the older view, whose candidacies
            // fail, keep raising the term past the newer view's, whose
            // candidacies then arrive with stale terms: no one ever wins
            // (chaos seed 49).
            //
            // A follower keeps its running election timer, as in Raft
            // (only a granted vote or a leader resets it): otherwise the
            // older view's candidates, campaigning without pre-votes,
            // reset the one node that could win on every try, and no one
            // ever does (chaos seed 16423).
            self.set_term(term, None);
            let idle = self.role == Role::Follower && self.leader.is_none();
            if !(idle && self.election_timer.is_some()) {
                self.become_follower(term, None, env, 0);
            }
        }
        if !self.grants_votes() || !view_current {
            // Not a voter, or the candidate's membership is older than
            // this node's: no vote.
            return self.send(
                from,
                Body::Vote {
                    term: self.term,
                    granted: false,
                },
            );
        }
        if !self.confirmed() {
            // Not yet sure it never voted under another data id: refuse,
            // keep its term, and ask. The refusal carries this node's data
            // id, so the candidate records it and names it next time.
            self.refuse_unconfirmed(from, "a vote", term);
            return self.send(
                from,
                Body::Vote {
                    term: self.term,
                    granted: false,
                },
            );
        }
        if term > self.term && self.loyal() && !(transfer && self.honours_transfer(from, term)) {
            // Raft's disruption rule (thesis 4.2.3): within a minimum
            // election timeout of hearing from a leader, neither adopt the
            // term nor vote. The leader's lease counts on it.
            self.log(
                LogLevel::Debug,
                format!(
                    "{} refused {from} a vote at term {term}: its leader is alive (and named no such transfer)",
                    self.id
                ),
            );
            return self.send(
                from,
                Body::Vote {
                    term: self.term,
                    granted: false,
                },
            );
        }
        if term < self.term {
            return self.send(
                from,
                Body::Vote {
                    term: self.term,
                    granted: false,
                },
            );
        }
        let mut newly = false;
        if term > self.term {
            // In a new term the vote is free: adopt the term and cast the
            // vote in one durable step (one write, not two).
            self.set_term(term, Some(from.into()));
            self.become_follower(term, None, env, 0);
            newly = true;
        }
        let granted = match &self.voted_for {
            None => true,
            Some(vote) => vote == from,
        };
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(from.into());
                self.unsaved = true;
                newly = true;
            }
            if newly {
                self.log(
                    LogLevel::Info,
                    format!("{} voted for {from} at term {}", self.id, self.term),
                );
            }
            // Granting a vote resets the timer, so this node does not
            // compete with the candidate it just backed.
            self.arm_election_timer(env, 0);
        }
        self.send(
            from,
            Body::Vote {
                term: self.term,
                granted,
            },
        );
    }

    pub(crate) fn on_vote(
        &mut self,
        from: &str,
        term: Term,
        granted: bool,
        env: &mut impl Environment,
    ) {
        if term > self.term {
            return self.become_follower(term, None, env, 0);
        }
        if self.role != Role::Candidate || term < self.term || !self.members.contains(from) {
            return;
        }
        if granted {
            self.granted.insert(from.into());
        } else {
            self.rejected.insert(from.into());
        }
        self.count_votes();
    }

    pub(crate) fn on_request_pre_vote(
        &mut self,
        from: &str,
        term: Term,
        epoch: u64,
        epoch_term: Term,
        env: &mut impl Environment,
    ) {
        let view_current = self.view_current(epoch_term, epoch);
        // Grant only what a real vote could grant (a later term), and only
        // if this node has no reason to think the leader is alive: it is
        // not the leader, and has not heard from one within the minimum
        // election timeout. That is what keeps a returning node from
        // deposing a healthy leader. And, like a vote, only once enough
        // members confirmed its data id (see crate::identity).
        let granted = term > self.term && !self.loyal() && self.grants_votes() && view_current;
        if granted && !self.confirmed() {
            self.refuse_unconfirmed(from, "a pre-vote", term);
        }
        let granted = granted && self.confirmed();
        if granted && !self.pre_campaign && self.replacing_a_dead_leader() {
            // Someone is already taking its turn: step back a whole line
            // of turns rather than campaign against it a slot from now.
            self.defer_failover_turn(env);
        }
        if !granted
            && term > self.term
            && self.role != Role::Leader
            && self.grants_votes()
            && view_current
            && self.confirmed()
            && let Some(left) = self.loyalty_left_ns()
        {
            // Refused for loyalty alone: say when it ends, so a
            // pre-candidate whose leader froze asks again right then; and
            // remember it, so if the leader turns out dead the answer
            // comes again at once (see `peer_unreachable`).
            let after_ms = u32::try_from(left.div_ceil(NS_PER_MS)).unwrap_or(u32::MAX);
            self.refused_for_loyalty.retain(|(c, _, _, _)| c != from);
            if self.refused_for_loyalty.len() < self.members.len() {
                self.refused_for_loyalty
                    .push((from.into(), term, epoch, epoch_term));
            }
            return self.send(
                from,
                Body::PreVoteLater {
                    term,
                    current: self.term,
                    after_ms,
                },
            );
        }
        self.send(
            from,
            Body::PreVote {
                term,
                granted,
                current: self.term,
            },
        );
    }

    pub(crate) fn on_pre_vote(
        &mut self,
        from: &str,
        term: Term,
        granted: bool,
        current: Term,
        env: &mut impl Environment,
    ) {
        if !self.answers_own_pre_vote(from, term, current, env) {
            return;
        }
        if granted {
            // A grant may follow a refusal for loyalty (the voter saw the
            // death after it answered): the grant stands.
            self.rejected.remove(from);
            self.granted.insert(from.into());
        } else {
            self.rejected.insert(from.into());
            if self.replacing_a_dead_leader() {
                // The refuser most likely has not seen the death yet. Ask
                // again once everyone in line has had a turn (asking sooner
                // would race the next in line and split the vote), rather
                // than a whole election timeout later.
                self.defer_failover_turn(env);
            }
        }
        self.count_pre_votes(env);
    }

    /// Whether an answer from `from` (at its term `current`) to a
    /// pre-vote for `term` counts: this node is a pre-candidate for that
    /// very term and `from` a member. A later `current` makes this node
    /// a follower of that term first (and the answer then does not count).
    fn answers_own_pre_vote(
        &mut self,
        from: &str,
        term: Term,
        current: Term,
        env: &mut impl Environment,
    ) -> bool {
        if current > self.term {
            self.become_follower(current, None, env, 0);
            return false;
        }
        self.pre_campaign && Some(term) == terms::next(self.term) && self.members.contains(from)
    }

    /// `from` refused this node's pre-vote for `term` only because it is
    /// loyal to a leader for `after_ms` more. If that is little (under half
    /// a heartbeat: it has missed its leader's heartbeats too, so the
    /// leader is most likely frozen or cut off), ask again just after the
    /// last such window ends rather than a whole timeout later. A voter
    /// that still hears its leader has most of a window left, so a node
    /// cut off alone from a live leader gains nothing by this.
    pub(crate) fn on_pre_vote_later(
        &mut self,
        from: &str,
        term: Term,
        current: Term,
        after_ms: u32,
        env: &mut impl Environment,
    ) {
        if !self.answers_own_pre_vote(from, term, current, env) {
            return;
        }
        self.rejected.insert(from.into());
        let after_ns = u64::from(after_ms) * NS_PER_MS;
        let soon = u64::from(self.timings.heartbeat_interval_ms) * NS_PER_MS / 2;
        if after_ns <= soon {
            let retry = self.now_ns.saturating_add(after_ns + NS_PER_MS);
            let retry = self.pre_vote_retry_ns.map_or(retry, |r| r.max(retry));
            self.pre_vote_retry_ns = Some(retry);
            self.log(
                LogLevel::Debug,
                format!(
                    "{} asks again for term {term} in {} ms: {from} is loyal {after_ms} ms more",
                    self.id,
                    (retry - self.now_ns).div_ceil(NS_PER_MS)
                ),
            );
            self.rearm_election_timer(retry - self.now_ns);
        } else if self.replacing_a_dead_leader() {
            self.defer_failover_turn(env);
        }
        self.count_pre_votes(env);
    }

    /// Starts a pre-vote for `term + 1`: the node stays a follower, forgets
    /// its leader (so it, too, grants other pre-candidates: with
    /// check-quorum, nodes that all still trusted a dead leader would
    /// otherwise refuse each other forever) and asks everyone.
    pub(crate) fn start_pre_vote(&mut self, env: &mut impl Environment) {
        let Some(term) = self.next_term(env) else {
            return;
        };
        self.become_follower(self.term, None, env, 0);
        self.pre_campaign = true;
        self.granted.insert(self.id.clone());
        self.log(
            LogLevel::Debug,
            format!("{} started a pre-vote for term {term}", self.id),
        );
        self.send_to_all(Body::RequestPreVote {
            term,
            epoch: self.epoch,
            epoch_term: self.epoch_term,
        });
        self.count_pre_votes(env);
    }

    pub(crate) fn count_pre_votes(&mut self, env: &mut impl Environment) {
        let voters = self.members.len();
        match quorum::tally(voters, self.granted.len(), self.rejected.len()) {
            VoteResult::Won => self.become_candidate(env, false),
            // Replacing a dead leader, the refusals most likely come from
            // voters that have not seen the death yet, and each answers
            // again when it does (see `peer_unreachable`): the pre-vote
            // stays open for those grants until this node's next turn.
            VoteResult::Lost if self.replacing_a_dead_leader() => {}
            VoteResult::Lost => {
                self.pre_campaign = false;
                self.log(
                    LogLevel::Debug,
                    format!(
                        "{} lost the pre-vote for term {}",
                        self.id,
                        self.term.saturating_add(1)
                    ),
                );
            }
            VoteResult::Pending => {}
        }
    }

    pub(crate) fn count_votes(&mut self) {
        let voters = self.members.len();
        match quorum::tally(voters, self.granted.len(), self.rejected.len()) {
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.log(
                LogLevel::Debug,
                format!(
                    "{} lost the election at term {} ({} of {voters} refused)",
                    self.id,
                    self.term,
                    self.rejected.len()
                ),
            ),
            VoteResult::Pending => {}
        }
    }

    /// The election timer fired (early: a host's timer or a clock jump)
    /// while this node is still loyal: it does not stand, and tries again
    /// once its loyalty has run out.
    pub(crate) fn wait_out_loyalty(&mut self, env: &mut impl Environment) {
        let left = self.loyalty_left_ns().unwrap_or(0);
        self.log(
            LogLevel::Debug,
            format!(
                "{} does not stand for {} ms yet: it is loyal to a live leader",
                self.id,
                left.div_ceil(NS_PER_MS)
            ),
        );
        self.arm_election_timer(env, left);
    }
}
