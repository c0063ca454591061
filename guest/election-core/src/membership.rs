//! The voting membership: who counts in a majority, and how that changes.
//!
//! # Epochs, and who changes the membership
//!
//! Each node's voting membership (its *view*) carries an **epoch**,
//! persisted with it: 0 for the bootstrap view (and for state written by
//! builds before epochs). Only the **leader** changes its view, **one
//! change at a time**, and every change bumps the epoch by one:
//!
//! - an *admission*: a voter that is not a member spoke to the leader (a
//!   `Join`, or an ack of the heartbeat the leader sent it because a
//!   follower mentioned it, see [`crate::hints`]);
//! - a *removal*: [`Election::leave`] on the leader, or a node's
//!   self-removal that reached the leader in an ack's tombstones.
//!
//! The next change waits until the previous one has **settled**: a
//! majority of the new view acknowledged a heartbeat round sent after it
//! ([`crate::lease::Lease::change_settled`]); a new leader's first change
//! waits for a majority of its view to acknowledge it at all.
//!
//! Non-leaders never change their view on their own: speaking to a
//! follower makes no one a member (it may still be tracked for liveness),
//! and a `Join` that reaches a follower is answered with a `Welcome`
//! naming the leader, so the joiner asks the leader. Heartbeats carry the
//! leader's epoch with its view and tombstones; a follower whose epoch is
//! lower **replaces** its view with the leader's (never merges). A node is
//! a member — it votes, stands and counts — only while its own view lists
//! it: a joiner is not one until a heartbeat of a newer epoch lists it,
//! and while its `join` is pending it does not stand.
//!
//! Each view also carries the term of the leader that last confirmed it
//! (`epoch_term`, persisted too): a follower sets it from its leader's
//! heartbeats, a new leader to its own term. A follower takes the view of
//! the leader of a later term wholesale, even of a lower epoch (a change
//! that never settled is undone, like an uncommitted Raft entry).
//!
//! Vote and pre-vote requests carry the candidate's `(epoch_term,
//! epoch)`, and a voter refuses a candidate whose pair is lower than its
//! own (compared like Raft's logs: term first, then epoch). A candidate
//! counts votes only from members of its own view, and needs a majority
//! of it.
//!
//! # Why one leader per term still holds
//!
//! Assumptions: the durable state (term, vote, view, epoch, epoch term)
//! survives restarts (honest fsync, or a lost disk detected by
//! [`crate::identity`]); views are changed only by leaders as above, so
//! a view and the one it was made from differ by exactly one member; and
//! the views in use descend from one bootstrap view (two clusters formed
//! apart and then joined are out of scope, as before).
//!
//! 1. A view and its successor differ by one member, so any majority of
//!    one and any majority of the other share a node (with n and n ± 1
//!    members, two majorities together exceed the nodes of both).
//! 2. A leader makes a change only after a majority of its view
//!    acknowledged it in its term (so they hold its term as epoch term),
//!    and the next change only after a majority of the new view
//!    acknowledged a later round (so they hold the new epoch). Those
//!    nodes refuse every candidate of an older `(epoch term, epoch)`:
//!    a view older than the previous one can no longer win, since any
//!    majority of it meets them (point 1). So the views that can elect
//!    are the leader's current one and the one it came from.
//! 3. Epoch numbers cannot fork into two different views that both
//!    elect: a change made by a leader that lost office before it
//!    settled is known to a minority; the next leader was elected by a
//!    majority of the older view, which acknowledged it (point 2) before
//!    it changes anything, and those voters refuse the unsettled view's
//!    candidates (lower epoch term) while their own followers take the
//!    new leader's view wholesale. This is Raft's fix for its
//!    one-server-change bug (Ongaro, 2015): a new leader commits an entry
//!    of its term before it changes the configuration.
//! 4. A node votes once per term. Two candidates of one term whose views
//!    are the same or successive need majorities that share a voter
//!    (point 1), who voted for only one of them.
//! 5. The lease: a leader's lease starts from a round a majority of its
//!    view acknowledged; those nodes stay loyal (no vote) for a minimum
//!    election timeout. A rival must win a majority of a view at most one
//!    change away (points 2, 3), which contains one of the loyal nodes.
//!
//! # Joiners
//!
//! A node started with `options.joining` (or that called [`Election::join`]
//! before any leader confirmed its view) is in no view, not even its own:
//! its bootstrap list only names whom to ask. It never stands; it asks
//! those nodes on start and on every election timeout, and the answer
//! names the leader, which admits it (above). A welcome from the leader
//! itself asks for nothing more: the leader has the join already.
//!
//! Like a Raft server, it grants votes before it hears of its admission:
//! the admission settles once a majority of the new view acknowledged it,
//! and if the leader dies before the joiner heard, the survivors' views
//! count the joiner — without its vote they may have no majority. Its vote
//! is safe to give: it is once per term and persisted like any vote, only
//! a candidate whose view lists it counts it, and it still compares the
//! candidate's `(epoch_term, epoch)` with its own. Its data id must be
//! confirmed first, by a majority of the voters it has heard from (its own
//! list may name nodes that do not exist).
//!
//! # The removal of a live member
//!
//! `leave` no longer refuses a member heard from lately: a removed node
//! that never learns of its removal keeps its stale view and epoch, and
//! every up-to-date voter refuses it; the two views in use (before and
//! after the removal) overlap as above. When it hears a newer epoch
//! without itself, or a `Removed` notice, it stops voting and standing.
//!
//! # Tombstones, settled and not
//!
//! A removal is a tombstone (persisted, spread by the leader's heartbeats)
//! as well as a new epoch. A removal that never settled may be undone by
//! a later leader, like an uncommitted Raft entry, and its tombstones with
//! it:
//!
//! - a follower that takes a later view listing a tombstoned node drops
//!   the tombstone (a settled removal is in every later view);
//! - a tombstoned node that speaks from a later view that lists it (a
//!   vote request, or a leader's heartbeat) is heard again;
//! - a node takes a tombstone of *itself* only from a view at least as
//!   recent as its own (a heartbeat, or a `Removed` notice, which carries
//!   the sender's view), never from an ack — so no stale node can tell a
//!   later leader that it was removed.
//!
//! Other tombstones merge from any message; a leader turns one of its
//! members into a removal of its own (a new epoch, once its previous
//! change settled), so a node that left on its own reaches every view.
//!
//! # Limits
//!
//! A node that learned of its own removal from its leader stops voting for
//! good, even if that removal never settles and a later leader's view
//! still counts it (a liveness cost, never a safety one: remove it there
//! too, or start it under a new id). A tombstone of itself is never undone
//! by a later view, since it may have left on its own.

use alloc::format;
use alloc::vec::Vec;

use crate::election::Election;
use crate::options::valid_node_id;
use crate::quorum;
use crate::refusal::ChangeRefusal;
use crate::types::{Environment, LogLevel, NodeId, Role, Term};
use crate::wire::Body;

impl Election {
    /// Asks `peer` (and through it, its leader) to admit this node. The
    /// node stands in no election until a leader's heartbeat lists it
    /// (its `join` stays pending and is repeated on each election
    /// timeout). A leader or candidate joining another cluster steps
    /// down first: the joiner defers to the cluster it joins.
    pub fn join(&mut self, peer: &str, env: &mut impl Environment) {
        if peer == self.id || !valid_node_id(peer) {
            self.log(
                LogLevel::Warn,
                format!("{} refused to join invalid peer {peer:?}", self.id),
            );
            return;
        }
        if self.removed.contains(peer) {
            self.log(
                LogLevel::Warn,
                format!(
                    "{} refused to join {peer}: it was removed for good",
                    self.id
                ),
            );
            return;
        }
        if self.standing.voter {
            self.joining = Some(peer.into());
            if self.epoch_term == 0 && self.members.contains(&self.id) {
                self.members.edit().remove(&self.id);
                self.unsaved = true;
            }
        }
        if self.role != Role::Follower {
            self.become_follower(self.term, None, env, 0);
        }
        let members = self.member_list();
        self.send(peer, Body::Join { members });
        self.flush();
    }

    /// A pending `join` is repeated on the election timer, to the leader
    /// the welcome named and to the peer first asked.
    pub(crate) fn retry_join(&mut self, env: &mut impl Environment) {
        self.arm_election_timer(env, 0);
        let mut to: Vec<NodeId> = self.joining.iter().cloned().collect();
        if let Some(leader) = &self.leader
            && !to.contains(leader)
        {
            to.push(leader.clone());
        }
        let members = self.member_list();
        self.send_to_each(&to, Body::Join { members });
    }

    /// Removes `node` from the voting membership for good: the leader
    /// makes a new epoch without it, and a tombstone (persisted, and
    /// spread by the leader's heartbeats) keeps any message from making
    /// it a member again.
    ///
    /// Allowed for a live member too, even one cut off from the leader
    /// (see the module docs). Refused on a node that does not lead
    /// (except for removing itself, which stops it voting and standing at
    /// once), for the leader itself (transfer leadership first), and
    /// while the previous membership change has not settled. A removed id
    /// cannot come back: give the machine a new node id.
    pub fn leave(&mut self, node: &str, env: &mut impl Environment) -> Result<(), ChangeRefusal> {
        self.now_ns = env.now_ns();
        if self.removed.contains(node) {
            return Ok(());
        }
        if node == self.id {
            if self.role == Role::Leader {
                return Err(ChangeRefusal::LeaderMustTransfer { node: node.into() });
            }
        } else {
            if !self.members.contains(node) {
                return Err(ChangeRefusal::UnknownNode { node: node.into() });
            }
            if self.role != Role::Leader {
                return Err(ChangeRefusal::NotLeader {
                    node: self.id.clone(),
                    leader: self.leader.clone(),
                });
            }
            if self.change_pending() {
                return Err(ChangeRefusal::ChangePending {
                    node: self.id.clone(),
                });
            }
        }
        self.remove(node, env);
        self.flush();
        Ok(())
    }

    /// Whether this leader may not change its membership now: no majority
    /// has acknowledged its last change (or it, in this term) yet.
    pub(crate) fn change_pending(&self) -> bool {
        !self.lease.change_settled(&self.members, &self.id)
    }

    /// Tombstones `node`. On the leader, a membership change: a new epoch,
    /// announced at once.
    pub(crate) fn remove(&mut self, node: &str, env: &mut impl Environment) {
        let change = self.role == Role::Leader && self.members.contains(node);
        self.removed.insert(node.into());
        if self.members.contains(node) {
            self.members.edit().remove(node);
        }
        self.observers.remove(node);
        self.unsaved = true;
        if change {
            self.epoch = self.epoch.saturating_add(1);
            self.lease.edit().mark_change(self.now_ns);
        }
        self.log(
            LogLevel::Info,
            format!(
                "{} removed {node}: {} members, quorum {}, epoch {}",
                self.id,
                self.members.len(),
                quorum::majority(self.members.len()),
                self.epoch
            ),
        );
        if node == self.id {
            self.log(
                LogLevel::Warn,
                format!("{} left the cluster: it no longer votes or stands", self.id),
            );
            if self.role != Role::Follower {
                self.become_follower(self.term, None, env, 0);
            }
        }
        if change {
            // Tell everyone now rather than at the next round.
            self.send_heartbeats();
        }
    }

    /// A voter that is not a member spoke to this node. Only a leader
    /// admits it (a new epoch), and only once its previous change
    /// settled; otherwise the joiner asks again.
    pub(crate) fn consider_admission(&mut self, from: &str) {
        if self.role != Role::Leader
            || self.members.contains(from)
            || self.removed.contains(from)
            || !self.votes()
        {
            return;
        }
        if self.change_pending() {
            return self.log(
                LogLevel::Debug,
                format!(
                    "{} does not admit {from} yet: no majority has acknowledged its last \
                     membership change (or it, in this term) yet",
                    self.id
                ),
            );
        }
        self.members.edit().insert(from.into());
        self.epoch = self.epoch.saturating_add(1);
        self.lease.edit().mark_change(self.now_ns);
        self.unsaved = true;
        self.log(
            LogLevel::Info,
            format!(
                "{} admitted {from}: {} members, quorum {}, epoch {}",
                self.id,
                self.members.len(),
                quorum::majority(self.members.len()),
                self.epoch
            ),
        );
        self.send_heartbeats();
        self.ask_for_confirmation();
    }

    /// The leader this node follows sent its view: a later epoch replaces
    /// this node's view wholesale. Callers make sure the sender is the
    /// leader followed, in the current term.
    pub(crate) fn adopt_view(&mut self, leader: &str, term: Term, epoch: u64, members: &[NodeId]) {
        if !members.iter().any(|m| m == leader) {
            // A leader is a member of its own view: anything else is no
            // view to take.
            return;
        }
        if members.contains(&self.id) {
            // Admitted (or a member all along): the join is done.
            self.joining = None;
        }
        if term < self.epoch_term || (term == self.epoch_term && epoch <= self.epoch) {
            return;
        }
        if epoch == self.epoch && self.same_view(members) {
            // The same view, confirmed by a later leader.
            self.epoch_term = term;
            self.unsaved = true;
            return;
        }
        // A later view that lists a node undoes a tombstone of it: that
        // removal never settled (a settled one is in every later view),
        // like an uncommitted Raft entry a new leader overwrites. Not a
        // tombstone of this node itself: it may have left on its own, and
        // the leader not have heard yet.
        let undone: Vec<NodeId> = members
            .iter()
            .filter(|m| **m != self.id && self.removed.contains(m.as_str()))
            .cloned()
            .collect();
        for node in &undone {
            self.removed.remove(node.as_str());
            self.log(
                LogLevel::Info,
                format!(
                    "{} restored {node}: the view of epoch {epoch} at term {term} lists it, so its removal never settled",
                    self.id
                ),
            );
        }
        let view: alloc::collections::BTreeSet<NodeId> = members
            .iter()
            .filter(|m| valid_node_id(m) && !self.removed.contains(m.as_str()))
            .cloned()
            .collect();
        self.log(
            LogLevel::Info,
            format!(
                "{} adopted epoch {epoch} of its leader: {} members, quorum {}{}",
                self.id,
                view.len(),
                quorum::majority(view.len()),
                if view.contains(&self.id) {
                    ""
                } else {
                    " (this node not among them)"
                }
            ),
        );
        self.members.set(view);
        self.epoch = epoch;
        self.epoch_term = term;
        self.unsaved = true;
        // A larger view needs more confirmations: ask the newcomers now,
        // not when a vote is refused for their lack.
        self.ask_for_confirmation();
    }

    fn same_view(&self, members: &[NodeId]) -> bool {
        // Tombstoned ids count: a view of a later term that lists one is
        // another view, which undoes the tombstone (see `adopt_view`).
        let counted = |m: &&NodeId| valid_node_id(m);
        members.iter().filter(counted).count() == self.members.len()
            && members
                .iter()
                .filter(counted)
                .all(|m| self.members.contains(m.as_str()))
    }

    /// Whether a candidate's view, `(epoch_term, epoch)`, is at least as
    /// recent as this node's (compared like Raft's logs: the confirming
    /// leader's term first, then the epoch).
    pub(crate) fn view_current(&self, epoch_term: Term, epoch: u64) -> bool {
        (epoch_term, epoch) >= (self.epoch_term, self.epoch)
    }

    /// `from` introduces itself. A leader admits it (see
    /// [`Election::consider_admission`], already called for every
    /// message); anyone answers with the leader's name. The members it
    /// lists add no one (see [`crate::hints`]).
    pub(crate) fn on_join(&mut self, from: &str) {
        let welcome = self.welcome();
        self.send(from, welcome);
        if self.role == Role::Leader {
            // Bring the newcomer in now rather than at the next round.
            let heartbeat = self.heartbeat();
            self.send(from, heartbeat);
        }
    }

    /// A voter outside this follower's view speaks to it, other than to
    /// join (answered already), to answer a vote, or from a later term
    /// (a node ahead of this one needs no pointer):
    /// it may believe itself a member of a view that a later leader
    /// undid, and then it only talks to the members of that view, never
    /// to the leader that could admit it (chaos seed 25322: a joiner
    /// admitted in an epoch the next leader overwrote asked the wrong
    /// nodes for confirmations for good). The follower names its leader,
    /// as it does to a joiner; the node then asks that leader.
    pub(crate) fn point_to_leader(&mut self, from: &str, body: &Body) {
        if self.role == Role::Leader
            || self.leader.is_none()
            || self.members.contains(from)
            || matches!(
                body,
                Body::Join { .. }
                    | Body::Welcome { .. }
                    | Body::Vote { .. }
                    | Body::PreVote { .. }
                    | Body::PreVoteLater { .. }
            )
            || crate::terms::terms_of(body)
                .into_iter()
                .flatten()
                .any(|t| t > self.term)
        {
            return;
        }
        let welcome = self.welcome();
        self.send(from, welcome);
    }

    /// The answer to a joiner (or a stray voter): this node's term, the
    /// leader it follows, and its view.
    fn welcome(&self) -> Body {
        Body::Welcome {
            term: self.term,
            leader: self.leader.clone(),
            members: self.member_list(),
        }
    }

    /// The answer to this node's `Join`. The members it lists and the
    /// leader it names are no members of this node's view: only that
    /// leader's heartbeat can list them.
    ///
    /// A node that learns of a leader from someone else introduces itself
    /// to that leader. A welcome from the leader itself asks for nothing:
    /// the leader has the join already and admits in its own time (one
    /// change at a time), and a pending join is repeated on the election
    /// timer, so a joiner and its leader never trade Join for Welcome
    /// without end (chaos seed 620: an observer did, and the storm grew
    /// with every re-announcement).
    pub(crate) fn on_welcome(
        &mut self,
        from: &str,
        term: Term,
        leader: Option<NodeId>,
        env: &mut impl Environment,
    ) {
        if term < self.term || (term == self.term && self.role == Role::Leader) {
            return;
        }
        match leader {
            // At most one leader per term, so the welcomer's leader of
            // `term` is the one to follow; its heartbeats will confirm it.
            Some(leader) if leader != self.id && valid_node_id(&leader) => {
                let introduce = from != leader
                    && (self.leader.as_deref() != Some(leader.as_str())
                        || !self.members.contains(&self.id)
                        || self.joining.is_some());
                self.become_follower(term, Some(leader.clone()), env, 0);
                if introduce {
                    // Only the leader admits: ask it directly.
                    let members = self.member_list();
                    self.send(&leader, Body::Join { members });
                }
            }
            _ if term > self.term => self.become_follower(term, None, env, 0),
            _ => {}
        }
    }

    /// A leader sends its heartbeat once to each id a follower's ack
    /// mentions that it has never heard from: a node that asked that
    /// follower to join then follows this leader and, by acknowledging,
    /// asks to be admitted. A phantom id costs one message per maximum
    /// election timeout and changes nothing.
    pub(crate) fn contact_mentioned(&mut self, mentioned: &[NodeId]) {
        let unknown = mentioned.iter().filter(|m| {
            **m != self.id
                && valid_node_id(m)
                && !self.members.contains(m.as_str())
                && !self.removed.contains(m.as_str())
                && !self.observers.contains(m.as_str())
        });
        let retry = u64::from(self.timings.election_timeout_max_ms) * crate::election::NS_PER_MS;
        let due = self.hints.due(unknown, self.now_ns, retry);
        for peer in due {
            self.log(
                LogLevel::Debug,
                format!("{} contacts {peer}, which a follower mentioned", self.id),
            );
            let heartbeat = self.heartbeat();
            self.send(&peer, heartbeat);
        }
    }
}
