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
//!
//! # Layout
//!
//! This file holds the state and the entry points (start, messages,
//! timers, status); the rest is split by what it handles: `votes`
//! (votes, pre-votes, standing), `roles` (role and term changes),
//! `heartbeats` (leaders asserting themselves, followers following),
//! `handoff` (transfers and priority hand-overs), `state` (what is
//! persisted and handed over on a swap), `status` (what a host reads:
//! the node's view and its lease) and `output` (the action queue).
//! Membership changes and data ids live in [`crate::membership`] and
//! [`crate::identity`].

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
use crate::refusal::{ChangeRefusal, Refusal};
use crate::terms;
use crate::transfer::{Handing, Named};
use crate::types::{
    Action, Environment, Event, LogLevel, NodeId, PersistedState, Role, Status, Term, TimerId,
};
use crate::versioned::Versioned;
use crate::wire::{Body, Message, Standing};

mod aside;
mod handoff;
mod heartbeats;
mod output;
mod roles;
mod state;
mod status;
mod votes;

use heartbeats::PeerStanding;
use status::Reported;

pub(crate) const NS_PER_MS: u64 = 1_000_000;

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
    pub(crate) members: Versioned<BTreeSet<NodeId>>,
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
    pub(crate) lease: Versioned<Lease>,
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
    /// Written only by [`Election::note_standing`].
    pub(crate) peers: BTreeMap<NodeId, PeerStanding>,
    /// Moves on whenever a peer's standing in `peers` is new or changed
    /// (not its times): what [`Election::failover_rank`] reads of them.
    pub(crate) standings_version: u64,
    /// When this leader last handed over for priority's sake.
    priority_handover_ns: Option<u64>,
    /// Until when this node is replacing a leader the host saw die, and
    /// how many survivors are in line: a pre-vote refused meanwhile (by a
    /// survivor that has not seen the death yet) is retried once everyone
    /// in line has had a turn, not a full timeout later.
    pub(crate) failover_until_ns: Option<u64>,
    pub(crate) failover_line: u64,
    /// When the loyalty windows of the voters that refused this node's
    /// pre-vote only for loyalty, with little of it left, run out: the
    /// pre-vote is retried just after, not a whole timeout later.
    pub(crate) pre_vote_retry_ns: Option<u64>,
    /// Pre-vote requests this node refused for loyalty alone, as asked
    /// (candidate, term, epoch, epoch term): if its leader then turns out
    /// dead, it answers them again at once (see `peer_unreachable`).
    pub(crate) refused_for_loyalty: Vec<(NodeId, Term, u64, Term)>,
    pub(crate) liveness: Liveness,
    /// The lists this leader's heartbeats carried, and those this follower
    /// kept from its leader's (see [`crate::lists`]).
    pub(crate) lists_sent: crate::lists::Sent,
    pub(crate) lists_kept: crate::lists::Kept,
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
    /// Until when this node stands aside (see [`Election::stand_aside`]):
    /// it does not stand before then, however it is asked to.
    pub(crate) aside_until_ns: Option<u64>,
    /// The status last handed out by [`Election::status_change`].
    reported: Option<Reported>,
    /// [`Election::confirmed`]'s last answer for a member, and the
    /// versions of the membership and the identity it was computed from.
    confirmed_memo: core::cell::Cell<Option<((u64, u64), bool)>>,
    /// [`Election::failover_rank`]'s last answer and what it depended on.
    pub(crate) rank_memo: Option<crate::failover::RankMemo>,
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
            members: Versioned::new(members),
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
            lease: Versioned::default(),
            handing: None,
            named: Named::default(),
            identity,
            standing,
            observers: BTreeSet::new(),
            peers: BTreeMap::new(),
            standings_version: 0,
            priority_handover_ns: None,
            failover_until_ns: None,
            failover_line: 1,
            pre_vote_retry_ns: None,
            refused_for_loyalty: Vec::new(),
            liveness: Liveness::default(),
            lists_sent: crate::lists::Sent::default(),
            lists_kept: crate::lists::Kept::default(),
            election_timer: None,
            heartbeat_timer: None,
            next_timer_id: 1,
            ignored_messages: 0,
            hints: Hints::default(),
            now_ns: env.now_ns(),
            leader_since_ns: 0,
            unsaved: false,
            aside_until_ns: None,
            reported: None,
            confirmed_memo: core::cell::Cell::new(None),
            rank_memo: None,
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
        if self.removed.contains(from) && !self.restore_if_vouched(from, &message) {
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
                generation,
                full,
            } => {
                // Removals first: the members that come with them must not
                // bring a removed node back. A leader's view is confirmed
                // by its own term.
                let received = crate::lists::Received {
                    leader: from,
                    data_id: message.sender_data_id,
                    term,
                    generation,
                    full,
                };
                let carried = crate::lists::Lists {
                    members,
                    alive,
                    removed,
                };
                let (held, lists) = self.lists_kept.resolve(received, carried);
                self.merge_removed(&lists.removed, Some((term, epoch)), env);
                self.on_heartbeat(from, term, round, epoch, &lists, held, now, env);
                self.lists_kept.keep(held, lists);
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
                holds,
            } => {
                // An ack says nothing of its sender's view: it cannot
                // remove this node (a leader, typically).
                self.merge_removed(&removed, None, env);
                self.on_heartbeat_ack(from, term, ok, round, &members, holds, env);
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
            } => self.on_request_pre_vote(from, term, epoch, epoch_term, env),
            Body::TimeoutNow { term, round } => self.on_timeout_now(from, term, round, env),
            Body::Removed {
                removed,
                epoch,
                epoch_term,
            } => {
                // Not an ack: whatever lists it held of this node's, it
                // no longer says so (see crate::lists).
                self.lists_sent.forget(from);
                self.merge_removed(&removed, Some((epoch_term, epoch)), env)
            }
            Body::PreVote {
                term,
                granted,
                current,
            } => self.on_pre_vote(from, term, granted, current, env),
            Body::PreVoteLater {
                term,
                current,
                after_ms,
            } => self.on_pre_vote_later(from, term, current, after_ms, env),
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
            _ if self.aside_left_ns().is_some() => self.wait_out_aside(env),
            _ if self.loyal() => self.wait_out_loyalty(env),
            _ if !self.confirmed() => self.wait_for_confirmation(env),
            _ if self.pre_vote => self.start_pre_vote(env),
            Role::Follower | Role::Candidate => self.become_candidate(env, false),
        }
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
        // A member's answer depends only on the membership and its
        // identity records: remembered per version of the two, since the
        // status asks after every call (at 51 members the count was an
        // eighth of the simulator's time). A joiner's view also depends on
        // tombstones and observers, and is rare: computed each time.
        let key = (self.members.version(), self.identity.version());
        if let Some((seen, confirmed)) = self.confirmed_memo.get()
            && seen == key
        {
            debug_assert_eq!(
                confirmed,
                self.identity.confirmed(&self.confirmation_view(), &self.id),
                "stale confirmed memo"
            );
            return confirmed;
        }
        let view = self.confirmation_view();
        let confirmed = self.identity.confirmed(&view, &self.id);
        if matches!(view, alloc::borrow::Cow::Borrowed(_)) {
            self.confirmed_memo.set(Some((key, confirmed)));
        }
        confirmed
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
}
