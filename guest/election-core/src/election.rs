//! The election state machine: Raft's leader election without a log.
//!
//! # How a host drives it
//!
//! ```text
//! let mut e = Election::start(options, persisted, &mut env)?;
//! loop {
//!     for action in e.take_actions() { carry it out, in order }
//!     wait for a message, a timer or a request, then call
//!     e.on_message(..) / e.on_timer(..) / e.join(..) / e.step_down(..)
//! }
//! ```
//!
//! Every call reads the time (once) and randomness from the [`Environment`]
//! and leaves its effects in the action queue. Nothing else reaches the
//! outside world, which is what makes runs reproducible.
//!
//! # Roles
//!
//! Roles change only in [`Election::become_follower`],
//! [`Election::become_candidate`] and [`Election::become_leader`], and each
//! change writes one greppable log line (`n1 became leader at term 3`).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::handover::{Handover, role_code, role_from};
use crate::hints::Hints;
use crate::identity::Identity;
use crate::lease::Lease;
use crate::liveness::{Change, Liveness};
use crate::options::{Options, OptionsError, Timings, valid_node_id};
use crate::quorum::{self, VoteResult};
use crate::refusal::Refusal;
use crate::terms;
use crate::transfer::{Handing, Named};
use crate::types::{
    Action, Environment, Event, LogLevel, NodeId, PersistedState, Role, Status, Term, TimerId,
};
use crate::wire::{Body, Message, Standing};

pub(crate) const NS_PER_MS: u64 = 1_000_000;

/// A peer's standing as this node last heard it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerStanding {
    pub(crate) standing: Standing,
    /// Start of the current unbroken run of messages from it.
    since_ns: u64,
    /// Its latest message.
    last_ns: u64,
}

/// One node's election state. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Election {
    pub(crate) id: NodeId,
    cluster_id: String,
    pub(crate) timings: Timings,
    /// Durable: the latest term seen.
    pub(crate) term: Term,
    /// Durable: the vote cast in `term`.
    voted_for: Option<NodeId>,
    /// Durable: the voting membership, self included once admitted.
    /// Liveness never removes a member (see [`crate::liveness`]). Only a
    /// leader changes it, one change (a new epoch) at a time; followers
    /// adopt their leader's (see [`crate::membership`]).
    pub(crate) members: BTreeSet<NodeId>,
    /// Durable: the epoch of `members`.
    pub(crate) epoch: u64,
    /// Durable: the term of the leader whose heartbeat last gave or
    /// confirmed `members` (this node's own term once it leads).
    pub(crate) epoch_term: Term,
    /// The peer a pending `join` asked: until a leader's heartbeat lists
    /// this node, it does not stand.
    pub(crate) joining: Option<NodeId>,
    /// Durable: members removed with `leave`. A tombstone: no message can
    /// make them members again.
    pub(crate) removed: BTreeSet<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    /// Votes granted to this node in `term` (candidates only).
    granted: BTreeSet<NodeId>,
    /// Votes refused to this node in `term` (candidates only).
    rejected: BTreeSet<NodeId>,
    /// Whether a pre-vote runs before each election.
    pre_vote: bool,
    /// A pre-vote for `term + 1` is under way (the node stays a follower).
    pre_campaign: bool,
    /// When this node last heard from a leader (or restarted): within a
    /// minimum election timeout of it, it grants no pre-vote and no vote
    /// (except to a transfer's target). That is what keeps a healthy
    /// leader in place and what makes its lease sound: a node that
    /// acknowledged a heartbeat helps elect no one else until the lease
    /// that heartbeat extended has run out. Cleared only when the host
    /// reports the leader's process dead (`peer_unreachable`).
    pub(crate) leader_heard_ns: Option<u64>,
    /// The leader's lease bookkeeping (leaders only).
    pub(crate) lease: Lease,
    /// The transfer this leader has under way (leaders only).
    pub(crate) handing: Option<Handing>,
    /// The transfer target the followed leader's newest heartbeat names:
    /// the only candidate this loyal node grants a transfer vote.
    pub(crate) named: Named,
    /// Durable: this node's data id, the ids it recorded for its peers,
    /// who confirmed its own, and whether it lost its state (see
    /// [`crate::identity`]).
    pub(crate) identity: Identity,
    /// This node's standing: voter or observer, and its priority.
    pub(crate) standing: Standing,
    /// Observers heard from: they get heartbeats but are not members.
    pub(crate) observers: BTreeSet<NodeId>,
    /// What each peer last said about itself, and since when it has been
    /// heard from without a break (for priority hand-overs).
    pub(crate) peers: BTreeMap<NodeId, PeerStanding>,
    /// When this leader last handed over for priority's sake.
    priority_handover_ns: Option<u64>,
    /// Until when this node is replacing a leader the host saw die, and
    /// how many survivors are in line: a pre-vote refused meanwhile (by a
    /// survivor that has not seen the death yet) is retried once everyone
    /// in line has had a turn, not a full timeout later.
    pub(crate) failover_until_ns: Option<u64>,
    pub(crate) failover_line: u64,
    pub(crate) liveness: Liveness,
    election_timer: Option<TimerId>,
    heartbeat_timer: Option<TimerId>,
    next_timer_id: TimerId,
    pub(crate) ignored_messages: u64,
    /// Ids that followers' acks mention and this leader has contacted.
    pub(crate) hints: Hints,
    /// The time of the call being handled (read once per call).
    pub(crate) now_ns: u64,
    /// When this node last became leader; check-quorum waits one window
    /// after it before judging.
    leader_since_ns: u64,
    /// The durable state changed and has not been handed to the host yet.
    /// [`Election::flush`] hands it over before any message leaves.
    pub(crate) unsaved: bool,
    actions: Vec<Action>,
}

impl Election {
    /// Starts a node as a follower, with the state it last persisted (none
    /// on its first start), and arms its election timer.
    ///
    /// Fails, naming the field, if `options` are invalid.
    pub fn start(
        options: Options,
        persisted: Option<PersistedState>,
        env: &mut impl Environment,
    ) -> Result<Election, OptionsError> {
        options.validate()?;
        let standing = options.standing();
        let mut members: BTreeSet<NodeId> = options.bootstrap.into_iter().collect();
        // An observer is never a member, not even of its own view; nor is
        // a joiner until its leader's heartbeat lists it (a persisted view
        // that lists it says it was admitted, or bootstrapped with them).
        if options.voter && !options.joining {
            members.insert(options.node_id.clone());
        } else {
            members.remove(&options.node_id);
        }
        let introduce = !options.voter || options.joining;
        let (term, voted_for, removed, epoch) = match &persisted {
            // A view a leader made replaces the bootstrap one wholesale
            // (this node among it only if admitted).
            Some(p) if p.epoch > 0 => {
                members = p
                    .members
                    .iter()
                    .filter(|m| valid_node_id(m))
                    .cloned()
                    .collect();
                if !options.voter {
                    members.remove(&options.node_id);
                }
                let removed: BTreeSet<NodeId> = p.removed.iter().cloned().collect();
                (p.term, p.voted_for.clone(), removed, p.epoch)
            }
            Some(p) => {
                members.extend(p.members.iter().filter(|m| valid_node_id(m)).cloned());
                let removed: BTreeSet<NodeId> = p.removed.iter().cloned().collect();
                (p.term, p.voted_for.clone(), removed, 0)
            }
            None => (0, None, BTreeSet::new(), 0),
        };
        members.retain(|m| !removed.contains(m));
        // Drawn (if need be) before anything else, and persisted with the
        // first flush: before any message leaves.
        let (identity, drawn) = Identity::start(persisted.as_ref(), env);
        let mut e = Election {
            id: options.node_id,
            cluster_id: options.cluster_id,
            timings: options.timings,
            term,
            voted_for,
            members,
            epoch,
            epoch_term: persisted.as_ref().map_or(0, |p| p.epoch_term),
            joining: None,
            removed,
            role: Role::Follower,
            leader: None,
            granted: BTreeSet::new(),
            rejected: BTreeSet::new(),
            pre_vote: options.pre_vote,
            pre_campaign: false,
            // A restarted node may have acknowledged a heartbeat just
            // before it went down: it stays loyal for one window, as if it
            // had heard from that leader now.
            leader_heard_ns: persisted.as_ref().map(|_| env.now_ns()),
            lease: Lease::default(),
            handing: None,
            named: Named::default(),
            identity,
            standing,
            observers: BTreeSet::new(),
            peers: BTreeMap::new(),
            priority_handover_ns: None,
            failover_until_ns: None,
            failover_line: 1,
            liveness: Liveness::default(),
            election_timer: None,
            heartbeat_timer: None,
            next_timer_id: 1,
            ignored_messages: 0,
            hints: Hints::default(),
            now_ns: env.now_ns(),
            leader_since_ns: 0,
            unsaved: false,
            actions: Vec::new(),
        };
        e.unsaved = persisted.as_ref() != Some(&e.persisted_state());
        e.log(
            LogLevel::Info,
            format!(
                "{} started as follower at term {} with {} members",
                e.id,
                e.term,
                e.members.len()
            ),
        );
        e.introduce_identity(drawn);
        e.arm_election_timer(env, 0);
        if introduce && !e.votes() {
            // Let whoever leads know to send this observer heartbeats, or
            // to admit this joiner. Both repeat it on each election
            // timeout until a leader answers.
            let members = e.member_list();
            e.send_to_all(Body::Join { members });
        }
        e.ask_for_confirmation();
        e.flush();
        Ok(e)
    }

    /// Takes the effects of the calls so far, oldest first. The host must
    /// carry them out in this order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        core::mem::take(&mut self.actions)
    }

    /// Handles bytes a peer sent. `from` is the sender as the host's
    /// transport knows it.
    pub fn on_message(&mut self, from: &str, payload: &[u8], env: &mut impl Environment) {
        self.now_ns = env.now_ns();
        let message = match Message::decode(payload) {
            Ok(message) => message,
            Err(error) => {
                return self.ignore(format!("a malformed message from {from} ({error:?})"));
            }
        };
        if message.cluster_id != self.cluster_id {
            return self.ignore(format!(
                "a message from {from} of cluster {:?}",
                message.cluster_id
            ));
        }
        if from == self.id || !valid_node_id(from) {
            return self.ignore(format!("a message from invalid sender {from:?}"));
        }
        for term in terms::terms_of(&message.body).into_iter().flatten() {
            if let Err(refusal) = terms::admissible(self.term, term) {
                return self.ignore(format!("a message from {from}: {refusal}"));
            }
        }
        let now = self.now_ns;
        if self.removed.contains(from) {
            self.restore_if_vouched(from, &message.body);
        }
        if self.removed.contains(from) {
            // A removed node takes no part, and cannot disturb the term.
            // Whoever hears from it tells it it was removed (it may have
            // been down, or have tombstoned the leader itself); never in
            // answer to that very notice, so two nodes that removed each
            // other do not bounce it back and forth.
            if !matches!(message.body, Body::Removed { .. }) {
                let removed = self.removed_list();
                let (epoch, epoch_term) = (self.epoch, self.epoch_term);
                self.send(
                    from,
                    Body::Removed {
                        removed,
                        epoch,
                        epoch_term,
                    },
                );
                self.flush();
            }
            return;
        }
        if !self.hear_identity(from, &message, env) {
            return self.flush();
        }
        if message.sender.voter {
            // Speaking makes no one a member, except to the leader, which
            // may admit it (see crate::membership).
            self.consider_admission(from);
            self.point_to_leader(from, &message.body);
        } else {
            self.observe(from);
        }
        self.note_standing(from, message.sender, now);
        self.news_of(from, now);
        match message.body {
            Body::RequestVote {
                term,
                transfer,
                epoch,
                epoch_term,
            } => {
                let current = self.view_current(epoch_term, epoch);
                self.on_request_vote(from, term, transfer, current, env);
            }
            Body::Vote { term, granted } => self.on_vote(from, term, granted, env),
            Body::Heartbeat {
                term,
                round,
                epoch,
                members,
                alive,
                removed,
                transfer_to,
            } => {
                // Removals first: the members that come with them must not
                // bring a removed node back. A leader's view is confirmed
                // by its own term.
                self.merge_removed(&removed, Some((term, epoch)), env);
                self.on_heartbeat(from, term, round, epoch, &members, &alive, now, env);
                if self.leader.as_deref() == Some(from) && self.term == term {
                    self.named.heard(from, term, round, transfer_to);
                }
            }
            Body::HeartbeatAck {
                term,
                ok,
                round,
                members,
                removed,
            } => {
                // An ack says nothing of its sender's view: it cannot
                // remove this node (a leader, typically).
                self.merge_removed(&removed, None, env);
                self.on_heartbeat_ack(from, term, ok, round, &members, env);
            }
            Body::Join { members: _ } => self.on_join(from),
            Body::Welcome {
                term,
                leader,
                members: _,
            } => self.on_welcome(from, term, leader, env),
            Body::RequestPreVote {
                term,
                epoch,
                epoch_term,
            } => {
                let current = self.view_current(epoch_term, epoch);
                self.on_request_pre_vote(from, term, current, env);
            }
            Body::TimeoutNow { term, round } => self.on_timeout_now(from, term, round, env),
            Body::Removed {
                removed,
                epoch,
                epoch_term,
            } => self.merge_removed(&removed, Some((epoch_term, epoch)), env),
            Body::PreVote {
                term,
                granted,
                current,
            } => self.on_pre_vote(from, term, granted, current, env),
            Body::Identify { ask } => {
                if ask {
                    let ask = self.votes() && self.identity.lacks(from);
                    self.send(from, Body::Identify { ask });
                }
            }
        }
        if self.identity.stand_when_confirmed && self.confirmed() {
            // The election timer fired while this node waited for
            // confirmations: stand now rather than a timeout later.
            self.identity.stand_when_confirmed = false;
            self.election_timeout(env);
        }
        self.flush();
    }

    /// Handles the expiry of a timer armed with [`Action::SetTimer`].
    /// Stale and unknown ids are ignored.
    pub fn on_timer(&mut self, id: TimerId, env: &mut impl Environment) {
        let now = env.now_ns();
        self.now_ns = now;
        if self.election_timer == Some(id) {
            self.election_timer = None;
            self.election_timeout(env);
        } else if self.heartbeat_timer == Some(id) {
            self.heartbeat_timer = None;
            if self.role == Role::Leader {
                self.expire_peers(now);
                self.abandon_stale_transfer();
                if self.majority_in_contact() {
                    self.send_heartbeats();
                    self.arm_heartbeat_timer();
                    self.prefer_priority();
                } else {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{} lost contact with a majority at term {}; stepping down",
                            self.id, self.term
                        ),
                    );
                    self.become_follower(self.term, None, env, 0);
                }
            }
        } else {
            self.log(
                LogLevel::Trace,
                format!("{} ignored stale timer {id}", self.id),
            );
        }
        self.flush();
    }

    /// What the election timer's expiry means: stand (after a pre-vote if
    /// it is on) unless this node leads, does not vote, is loyal to a live
    /// leader, or lacks confirmations of its data id (then it asks again
    /// and stands when they arrive).
    fn election_timeout(&mut self, env: &mut impl Environment) {
        self.expire_peers(self.now_ns);
        match self.role {
            Role::Leader => {}
            _ if !self.standing.voter => self.announce_observer(env),
            _ if self.joining.is_some() => self.retry_join(env),
            // Removed, abstaining or not admitted: it (re)introduces
            // itself, and whoever hears it answers (a `Removed` notice,
            // or the leader's admission).
            _ if !self.votes() => self.announce_observer(env),
            _ if self.loyal() => self.wait_out_loyalty(env),
            _ if !self.confirmed() => self.wait_for_confirmation(env),
            _ if self.pre_vote => self.start_pre_vote(env),
            Role::Follower | Role::Candidate => self.become_candidate(env, false),
        }
    }

    /// Hands leadership to `to` (Raft's TimeoutNow): the leader tells `to`
    /// to campaign at once, without a pre-vote; `to` wins the next term
    /// within about a round trip, since the others' votes are free in it.
    /// Refused, with the reason, unless this node leads and `to` is another
    /// member heard from within the minimum election timeout.
    pub fn transfer_leadership(
        &mut self,
        to: &str,
        env: &mut impl Environment,
    ) -> Result<(), String> {
        self.now_ns = env.now_ns();
        if self.role != Role::Leader {
            return Err(format!(
                "{} does not lead; only the leader can transfer",
                self.id
            ));
        }
        if to == self.id {
            return Err(format!("{to} already leads"));
        }
        if !self.members.contains(to) {
            return Err(format!("{to} is not a member of this cluster"));
        }
        let window = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        let since = self.now_ns.saturating_sub(window);
        if !self.liveness.heard_since(to, since) {
            return Err(format!(
                "{to} has not been heard from recently; it may be down"
            ));
        }
        if let Some(handing) = &self.handing {
            return Err(format!(
                "a transfer to {} is under way; it ends within {} ms",
                handing.to, self.timings.election_timeout_max_ms
            ));
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
    fn hand_over(&mut self, to: &str) {
        self.log(
            LogLevel::Info,
            format!("{} hands leadership of term {} to {to}", self.id, self.term),
        );
        self.lease.given_up = true;
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
    fn tell_transfer_target(&mut self) {
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
    fn abandon_stale_transfer(&mut self) {
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
        self.lease.abandon();
    }

    /// Whether this loyal node grants `candidate` a transfer vote for
    /// `term`: only for the next term, and only to the target its leader
    /// named (or, for the leader itself, its own target).
    fn honours_transfer(&self, candidate: &str, term: Term) -> bool {
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

    fn on_timeout_now(&mut self, from: &str, term: Term, round: u64, env: &mut impl Environment) {
        // Only from the leader this node follows, in its term: a stale or
        // forged hand-over is ignored.
        if term != self.term
            || self.leader.as_deref() != Some(from)
            || self.role != Role::Follower
            || !self.votes()
        {
            return;
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
    fn stand_refusal(&self) -> Option<Refusal> {
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
    fn loyalty_left_ns(&self) -> Option<u64> {
        let window = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        let heard = self.leader_heard_ns?;
        let since = self.now_ns.saturating_sub(heard);
        (since < window).then(|| window - since)
    }

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
        let start = self.lease.start(&self.members, &self.id)?;
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

    /// Whether this node may grant votes and pre-votes: a voter that has
    /// not left and has not lost its state. Like a Raft server, it need
    /// not be in its own view: a joiner the leader admitted but whose
    /// admission it has not heard of yet votes for candidates whose
    /// (current) view lists it — only they count its vote — or a cluster
    /// that lost a leader mid-admission could lack a majority for good.
    pub(crate) fn grants_votes(&self) -> bool {
        self.standing.voter && !self.removed.contains(&self.id) && !self.identity.abstaining()
    }

    /// Whether this node takes part in elections as a member: a voter not
    /// removed, in its own view (see [`crate::membership`]), that has not
    /// lost its state. Only such a node stands and counts itself.
    pub(crate) fn votes(&self) -> bool {
        self.standing.voter
            && !self.removed.contains(&self.id)
            && self.members.contains(&self.id)
            && !self.identity.abstaining()
    }

    /// Whether enough other members confirmed this node's data id for it
    /// to vote and stand (see [`crate::identity`]).
    pub(crate) fn confirmed(&self) -> bool {
        self.identity.confirmed(&self.confirmation_view(), &self.id)
    }

    /// Whether this node is loyal to a leader it believes alive: it leads
    /// itself, or heard from a leader (or restarted) within the minimum
    /// election timeout. A loyal node grants no pre-vote, and no vote
    /// except to a transfer's target.
    fn loyal(&self) -> bool {
        let window = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        self.role == Role::Leader
            || self
                .leader_heard_ns
                .is_some_and(|at| self.now_ns.saturating_sub(at) < window)
    }

    pub(crate) fn handover(&self) -> Handover {
        Handover {
            node_id: self.id.clone(),
            cluster_id: self.cluster_id.clone(),
            term: self.term,
            voted_for: self.voted_for.clone(),
            members: self.members.clone(),
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
            members: h.members,
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
            lease,
            handing: None,
            named: Named::default(),
            identity: Identity::default(),
            standing,
            observers: BTreeSet::new(),
            peers: BTreeMap::new(),
            priority_handover_ns: None,
            failover_until_ns: None,
            failover_line: 1,
            liveness: h.liveness,
            election_timer: h.election_timer,
            heartbeat_timer: h.heartbeat_timer,
            next_timer_id: h.next_timer_id,
            ignored_messages: h.ignored_messages,
            hints: Hints::default(),
            now_ns: env.now_ns(),
            leader_since_ns: h.leader_since_ns,
            unsaved: false,
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

    // ---- message handlers ----

    fn on_request_vote(
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

    fn on_vote(&mut self, from: &str, term: Term, granted: bool, env: &mut impl Environment) {
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

    #[allow(clippy::too_many_arguments)]
    fn on_heartbeat(
        &mut self,
        from: &str,
        term: Term,
        round: u64,
        epoch: u64,
        members: &[NodeId],
        alive: &[NodeId],
        now: u64,
        env: &mut impl Environment,
    ) {
        if term < self.term {
            // A deposed leader: tell it the current term so it steps down.
            let members = self.member_list();
            return self.send(
                from,
                Body::HeartbeatAck {
                    term: self.term,
                    ok: false,
                    round,
                    members,
                    removed: self.removed_list(),
                },
            );
        }
        if term == self.term && self.role == Role::Leader {
            // Two leaders of one term can only come from two clusters that
            // formed apart (each of its own members) and have now met. Both
            // step down; the next election, over the merged membership,
            // picks one.
            self.log(
                LogLevel::Warn,
                format!(
                    "{} met {from}, also leader at term {}; stepping down",
                    self.id, self.term
                ),
            );
            return self.become_follower(term, None, env, 0);
        }
        // A higher term, a candidate meeting the leader of its own term, or
        // a follower hearing its leader: all follow `from` and re-arm.
        self.become_follower(term, Some(from.into()), env, 0);
        self.leader_heard_ns = Some(now);
        // The leader this node follows is the one source of its view.
        self.adopt_view(from, term, epoch, members);
        for peer in alive {
            if *peer != self.id && self.members.contains(peer.as_str()) {
                self.news_of(peer, now);
            }
        }
        self.expire_peers(now);
        let members = self.member_list();
        self.send(
            from,
            Body::HeartbeatAck {
                term: self.term,
                ok: true,
                round,
                members,
                removed: self.removed_list(),
            },
        );
    }

    fn on_heartbeat_ack(
        &mut self,
        from: &str,
        term: Term,
        ok: bool,
        round: u64,
        members: &[NodeId],
        env: &mut impl Environment,
    ) {
        if term > self.term {
            return self.become_follower(term, None, env, 0);
        }
        if ok && term == self.term && self.role == Role::Leader {
            self.lease.acked(from, round);
            self.contact_mentioned(members);
            self.tell_transfer_target();
        }
    }

    fn on_request_pre_vote(
        &mut self,
        from: &str,
        term: Term,
        view_current: bool,
        env: &mut impl Environment,
    ) {
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
        self.send(
            from,
            Body::PreVote {
                term,
                granted,
                current: self.term,
            },
        );
    }

    fn on_pre_vote(
        &mut self,
        from: &str,
        term: Term,
        granted: bool,
        current: Term,
        env: &mut impl Environment,
    ) {
        if current > self.term {
            return self.become_follower(current, None, env, 0);
        }
        if !self.pre_campaign
            || Some(term) != terms::next(self.term)
            || !self.members.contains(from)
        {
            return;
        }
        if granted {
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

    /// Starts a pre-vote for `term + 1`: the node stays a follower, forgets
    /// its leader (so it, too, grants other pre-candidates: with
    /// check-quorum, nodes that all still trusted a dead leader would
    /// otherwise refuse each other forever) and asks everyone.
    fn start_pre_vote(&mut self, env: &mut impl Environment) {
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

    fn count_pre_votes(&mut self, env: &mut impl Environment) {
        let voters = self.members.len();
        match quorum::tally(voters, self.granted.len(), self.rejected.len()) {
            VoteResult::Won => self.become_candidate(env, false),
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

    // ---- role changes: the only places `role` is assigned ----

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
        self.cancel_heartbeat_timer();
        self.arm_election_timer(env, hold_off_ns);
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
    fn become_candidate(&mut self, env: &mut impl Environment, transfer: bool) {
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

    fn become_leader(&mut self) {
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
        self.lease = Lease::starting_after(&self.lease);
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
    fn majority_in_contact(&self) -> bool {
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

    fn count_votes(&mut self) {
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

    // ---- helpers ----

    /// The election timer fired (early: a host's timer or a clock jump)
    /// while this node is still loyal: it does not stand, and tries again
    /// once its loyalty has run out.
    fn wait_out_loyalty(&mut self, env: &mut impl Environment) {
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

    /// The term this node would campaign in, or none at the term ceiling
    /// (see [`crate::terms`]): then it logs an error, re-arms its timer
    /// and keeps following whoever leads, rather than wrap around.
    fn next_term(&mut self, env: &mut impl Environment) -> Option<Term> {
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
    fn set_term(&mut self, term: Term, vote: Option<NodeId>) {
        let old = self.term;
        self.term = term;
        self.voted_for = vote;
        self.unsaved = true;
        self.emit(Event::TermChanged { old, new: term });
    }

    fn news_of(&mut self, peer: &str, now: u64) {
        if let Some(Change::Joined(peer)) = self.liveness.heard(peer, now) {
            self.log(LogLevel::Debug, format!("{} sees {peer} joined", self.id));
            self.emit(Event::PeerJoined(peer));
        }
    }

    fn expire_peers(&mut self, now: u64) {
        let timeout = u64::from(self.timings.heartbeat_interval_ms)
            * u64::from(self.timings.peer_timeout_heartbeats)
            * NS_PER_MS;
        for change in self.liveness.expire(now, timeout) {
            if let Change::Left(peer) = change {
                self.log(LogLevel::Debug, format!("{} sees {peer} left", self.id));
                self.emit(Event::PeerLeft(peer));
            }
        }
    }

    pub(crate) fn member_list(&self) -> Vec<NodeId> {
        self.members.iter().cloned().collect()
    }

    pub(crate) fn removed_list(&self) -> Vec<NodeId> {
        self.removed.iter().cloned().collect()
    }

    /// A heartbeat of the latest round (a newcomer's extra heartbeat
    /// reuses it: its ack then dates from that round's earlier send time,
    /// which only shortens the lease).
    pub(crate) fn heartbeat(&self) -> Body {
        Body::Heartbeat {
            term: self.term,
            round: self.lease.round,
            epoch: self.epoch,
            members: self.member_list(),
            alive: self.liveness.alive(),
            removed: self.removed_list(),
            transfer_to: self.handing.as_ref().map(|h| h.to.clone()),
        }
    }

    /// Starts a new heartbeat round, now, to every member and observer.
    pub(crate) fn send_heartbeats(&mut self) {
        self.lease.new_round(self.now_ns);
        let heartbeat = self.heartbeat();
        self.send_to_all(heartbeat.clone());
        let observers: Vec<NodeId> = self.observers.iter().cloned().collect();
        self.send_to_each(&observers, heartbeat);
    }

    pub(crate) fn send(&mut self, to: &str, body: Body) {
        self.flush();
        let payload = self.encode(&body, to);
        self.actions.push(Action::Send {
            to: to.into(),
            payload,
        });
    }

    /// Sends one message to every member but self (encoded for each: the
    /// header names the recipient).
    fn send_to_all(&mut self, body: Body) {
        let peers: Vec<NodeId> = self
            .members
            .iter()
            .filter(|m| **m != self.id)
            .cloned()
            .collect();
        self.send_to_each(&peers, body);
    }

    pub(crate) fn send_to_each(&mut self, peers: &[NodeId], body: Body) {
        self.flush();
        for peer in peers {
            let payload = self.encode(&body, peer);
            self.actions.push(Action::Send {
                to: peer.clone(),
                payload,
            });
        }
    }

    /// Encodes `body` for `to`, naming it by the data id recorded for it.
    fn encode(&self, body: &Body, to: &str) -> Vec<u8> {
        // A node that abstains (it lost its state) will never stand: it
        // claims no priority, so no leader hands over to it in vain.
        let mut sender = self.standing;
        if self.identity.abstaining() {
            sender.priority = 0;
        }
        Message {
            cluster_id: self.cluster_id.clone(),
            sender,
            sender_data_id: self.identity.data_id(),
            recipient_data_id: self.identity.recorded(to),
            body: body.clone(),
        }
        .encode()
    }

    /// `peer` says it is an observer: it gets heartbeats, and it is no
    /// member (if a bootstrap list named it, it leaves the membership: it
    /// never votes, so counting it only made the quorum harder to reach).
    fn observe(&mut self, peer: &str) {
        if self.observers.insert(peer.into()) {
            self.log(LogLevel::Info, format!("{} sees observer {peer}", self.id));
        }
        if self.members.remove(peer) {
            self.unsaved = true;
            self.log(
                LogLevel::Warn,
                format!(
                    "{} dropped {peer} from the voting members: it is an observer",
                    self.id
                ),
            );
        }
    }

    fn note_standing(&mut self, peer: &str, standing: Standing, now: u64) {
        let unbroken = 3 * u64::from(self.timings.heartbeat_interval_ms) * NS_PER_MS;
        let entry = self.peers.entry(peer.into()).or_insert(PeerStanding {
            standing,
            since_ns: now,
            last_ns: now,
        });
        if now.saturating_sub(entry.last_ns) > unbroken {
            entry.since_ns = now;
        }
        entry.last_ns = now;
        entry.standing = standing;
    }

    /// An observer without a leader (re)introduces itself to every member,
    /// so whoever leads learns to send it heartbeats.
    fn announce_observer(&mut self, env: &mut impl Environment) {
        if self.leader.is_some() {
            self.become_follower(self.term, None, env, 0);
        } else {
            self.arm_election_timer(env, 0);
        }
        let members = self.member_list();
        self.send_to_all(Body::Join { members });
    }

    /// A leader that has led for the stability window hands over to the
    /// voter of highest priority above its own that has been heard from
    /// without a break for that long (at most once per maximum election
    /// timeout, in case the hand-over fails).
    fn prefer_priority(&mut self) {
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

    /// Hands unsaved durable state to the host. Called before every send,
    /// so nothing that depends on a vote or term leaves before it is saved.
    pub(crate) fn flush(&mut self) {
        if self.unsaved {
            self.unsaved = false;
            let state = self.persisted_state();
            self.actions.push(Action::Persist(state));
        }
    }

    fn next_timer(&mut self) -> TimerId {
        let id = self.next_timer_id;
        self.next_timer_id += 1;
        id
    }

    /// Arms the election timer with a timeout drawn uniformly, to the
    /// nanosecond, from [min, max], plus `hold_off_ns`.
    pub(crate) fn arm_election_timer(&mut self, env: &mut impl Environment, hold_off_ns: u64) {
        let min = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        let span = u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS - min;
        let after_ns = min + env.random_u64() % (span + 1) + hold_off_ns;
        self.rearm_election_timer(after_ns);
    }

    /// Replaces the election timer (if armed) with one due in `after_ns`.
    pub(crate) fn rearm_election_timer(&mut self, after_ns: u64) {
        if let Some(id) = self.election_timer.take() {
            self.actions.push(Action::CancelTimer { id });
        }
        let id = self.next_timer();
        self.election_timer = Some(id);
        self.actions.push(Action::SetTimer { id, after_ns });
    }

    fn arm_heartbeat_timer(&mut self) {
        self.cancel_heartbeat_timer();
        let id = self.next_timer();
        self.heartbeat_timer = Some(id);
        self.actions.push(Action::SetTimer {
            id,
            after_ns: u64::from(self.timings.heartbeat_interval_ms) * NS_PER_MS,
        });
    }

    fn cancel_heartbeat_timer(&mut self) {
        if let Some(id) = self.heartbeat_timer.take() {
            self.actions.push(Action::CancelTimer { id });
        }
    }

    /// Reports an event, after handing over any unsaved durable state: an
    /// event never announces a term or vote that a crash could take back.
    fn emit(&mut self, event: Event) {
        self.flush();
        self.actions.push(Action::Emit(event));
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        self.actions.push(Action::Log { level, message });
    }

    fn ignore(&mut self, what: String) {
        self.ignored_messages = self.ignored_messages.saturating_add(1);
        self.log(LogLevel::Debug, format!("{} ignored {what}", self.id));
    }
}
