//! Data ids: how a node that lost its disk is kept from voting twice in
//! one term.
//!
//! # The hole
//!
//! A node persists its term and vote before it answers a vote request, so
//! a *restart* cannot make it vote twice in one term. A node whose data
//! directory is gone (a wiped disk, a replaced volume, a fresh container)
//! starts with no state at all — exactly like a first start — and would
//! grant a vote in a term it already voted in: two leaders in one term.
//!
//! # The rule
//!
//! 1. **A data id.** A node that starts without persisted state draws a
//!    random 64-bit *data id* and persists it before it sends anything. It
//!    names this copy of the node's state: it dies with the disk.
//! 2. **Every message says who speaks, and to whom it believes it speaks**:
//!    its sender's data id, and the data id the sender has recorded for
//!    the recipient, if any (see [`crate::wire::Message`]).
//! 3. **Records never change.** The first data id a node hears from a peer
//!    is recorded durably (before anything is sent that mentions it) and
//!    never replaced. A later message with another id comes from a node
//!    that lost its state, or from a second process under the same node
//!    id: it does not count. Its receiver logs a warning (once per id it
//!    sees) and answers, at most once per maximum election timeout, with
//!    the recorded id. (An observer's messages still count: it never
//!    votes, so its lost state is harmless.)
//! 4. **A node learns it lost its state** when a message names it with an
//!    id other than its own. It then *abstains* for good (persisted): it
//!    never votes, grants no pre-vote, never stands, and says so; it still
//!    follows a leader, like an observer, so an operator can see it. The
//!    cure: remove it with `leave` on the leader and start it again under
//!    a new node id.
//! 5. **A node votes only once confirmed.** A peer *confirms* this node's
//!    data id by sending it a message that names it with that id. A voter
//!    grants votes and pre-votes, and stands (its own vote is a vote too),
//!    only once [`needed`] of the other members have confirmed its current
//!    data id: a strict majority of the *others*. A one-node cluster needs
//!    none. Confirmations are persisted with the data id: they are a fact
//!    about the confirmers' durable records, true as long as this node's
//!    own state (its data id among it) survives, and they die with it.
//!
//! # Why this is safe
//!
//! Say node X, with data id D1, voted in term T. It did so confirmed: a
//! set S1 of more than half of the other members had recorded D1. X loses
//! its state and draws D2. To vote again it needs a set S2 of more than
//! half of the others to have recorded D2. Two sets each holding more
//! than half of the others intersect, and a record never changes, so some
//! node would have recorded both D1 and D2: impossible. Instead, the nodes
//! of S1 that X talks to name it D1 (item 4), and X abstains.
//!
//! The records S1 holds were durable before they confirmed anything
//! (a node saves a new record before it sends a message, like a vote),
//! and X's vote was durable before X sent it.
//!
//! Assumptions: records are durable (honest fsync, as for the vote
//! itself), and the membership X counts is the cluster's (a node wiped
//! together with the bootstrap list that named its peers counts fewer
//! members, as it would for votes). A peer that loses its state too
//! forgets its records; the argument survives as long as some node of S1
//! keeps its record: with `n` members and `k = needed(n)`, as long as at
//! most `2k - (n - 1)` members in all (X among them) have lost their
//! state — two of three or of five, one of two or of four — until the
//! operator removes them. An operator who wipes a majority of the
//! cluster's disks at once starts a new cluster.
//!
//! # Why a majority of the others, not a majority less one
//!
//! A vote's quorum is a majority of all members, self included; the
//! confirmers must be a majority of the *others*. For an even cluster
//! that is a majority less one; for an odd one it is one more. In a cluster of three,
//! one confirmer is not enough: X could be confirmed by B, vote for B in
//! T, be wiped, be confirmed by C (which never heard from X before) and
//! vote for C in T. So a three-node cluster needs both others' records:
//! at its first boot both peers must have been up once; after that, with
//! confirmations persisted, any one of them may stay down.
//!
//! # Confirmations flow by themselves
//!
//! Heartbeats, acks, votes and every other message name their recipient,
//! so a running cluster confirms everyone within a heartbeat. A node
//! without enough confirmations asks for them ([`crate::wire::Body::Identify`])
//! when it starts, whenever its election timer fires, and when it refuses
//! a vote or a pre-vote for their lack; it stands as soon as they arrive
//! if its timer fired meanwhile. A fresh cluster whose nodes start
//! together is confirmed within one round trip, well before the first
//! election timeout.

use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::election::{Election, NS_PER_MS};
use crate::quorum;
use crate::types::{Environment, LogLevel, NodeId, PersistedState, Role, Term};
use crate::wire::{Body, Message};

/// How many of the other members must confirm a node's data id before it
/// votes, in a membership of `members` (self included): a strict
/// majority of the others, so that any two such sets intersect. None for
/// a node alone.
pub fn needed(members: usize) -> usize {
    if members <= 1 {
        0
    } else {
        quorum::majority(members - 1)
    }
}

/// Draws a data id: 64 random bits, never 0 (0 means "none" in
/// [`PersistedState::data_id`]).
fn draw(env: &mut impl Environment) -> u64 {
    env.random_u64().max(1)
}

/// The durable part: persisted with the vote, and handed over in a swap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Durable {
    /// This copy of the node's state.
    pub(crate) data_id: u64,
    /// The first data id heard from each peer.
    pub(crate) known: BTreeMap<NodeId, u64>,
    /// Peers that named this node by `data_id`.
    pub(crate) confirmed: BTreeSet<NodeId>,
    /// This node learned it lost its state: it never votes or stands.
    pub(crate) abstain: bool,
}

impl Durable {
    /// A new copy of the state, with a fresh data id.
    pub(crate) fn fresh(env: &mut impl Environment) -> Durable {
        Durable {
            data_id: draw(env),
            ..Durable::default()
        }
    }
}

/// What a message's header means for whether its body counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The body counts.
    Counts,
    /// The body counts, and it told this node, for the first time, that it
    /// lost its state: the sender knows it as `recorded`.
    LostState { recorded: u64 },
    /// The sender speaks with `seen`, not the `recorded` id: its body does
    /// not count. `warn`: first time this id is seen from it; `answer`:
    /// due for (rate-limited) news of the recorded id.
    Impostor {
        recorded: u64,
        seen: u64,
        warn: bool,
        answer: bool,
    },
}

/// One node's data id, what it recorded of its peers', and who confirmed
/// its own.
#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    /// Changed only by this module's methods, each of which moves
    /// `version` on when it changes it.
    durable: Durable,
    /// Moves on whenever `durable` changed (see [`Identity::version`]).
    version: u64,
    /// The last mismatching id warned about, per peer: one warning per
    /// change, not per message.
    warned: BTreeMap<NodeId, u64>,
    /// When each mismatching peer was last answered.
    answered_ns: BTreeMap<NodeId, u64>,
    /// The election timer fired while unconfirmed: stand as soon as the
    /// confirmations arrive.
    pub(crate) stand_when_confirmed: bool,
    /// The error about the lost state was logged.
    pub(crate) told: bool,
}

impl Identity {
    /// The identity `persisted` carries, or a fresh one (with `true`) when
    /// there is none: no state at all, or state of a build before data
    /// ids, whose vote history is intact but has no id yet.
    pub(crate) fn start(
        persisted: Option<&PersistedState>,
        env: &mut impl Environment,
    ) -> (Identity, bool) {
        let (durable, drawn) = match persisted {
            Some(p) if p.data_id != 0 => (
                Durable {
                    data_id: p.data_id,
                    known: p.known_ids.iter().cloned().collect(),
                    confirmed: p.confirmed_by.iter().cloned().collect(),
                    abstain: p.abstain,
                },
                false,
            ),
            _ => (Durable::fresh(env), true),
        };
        (Identity::from_durable(durable), drawn)
    }

    pub(crate) fn from_durable(durable: Durable) -> Identity {
        Identity {
            durable,
            ..Identity::default()
        }
    }

    pub(crate) fn data_id(&self) -> u64 {
        self.durable.data_id
    }

    pub(crate) fn abstaining(&self) -> bool {
        self.durable.abstain
    }

    /// The data id recorded for `peer`, which messages to it carry.
    pub(crate) fn recorded(&self, peer: &str) -> Option<u64> {
        self.durable.known.get(peer).copied()
    }

    /// Reads a message's header. Returns whether durable state changed
    /// (a new record, a new confirmation, abstention), and the verdict.
    /// `retry_ns` spaces out the answers to one mismatching peer.
    pub(crate) fn hear(
        &mut self,
        from: &str,
        sender_id: u64,
        recipient_id: Option<u64>,
        now_ns: u64,
        retry_ns: u64,
    ) -> (bool, Verdict) {
        let mut changed = false;
        // Looked up before inserting: the entry API would copy `from` on
        // every message, and this runs on every message.
        let recorded = match self.durable.known.get(from) {
            Some(recorded) => *recorded,
            None => {
                changed = true;
                self.durable.known.insert(from.into(), sender_id);
                sender_id
            }
        };
        if recorded != sender_id {
            // Its body does not count, but its record of *this* node does:
            // a node that lost its own state records this node afresh, and
            // a record is a record (the proof's bound on lost disks covers
            // it). Without this, a cluster of three in which one node lost
            // its disk before it had confirmed another could never confirm
            // that other again: no leader, and so no `leave` to fix it.
            if recipient_id == Some(self.durable.data_id) {
                changed |= self.confirm(from);
            }
            let warn = self.warned.insert(from.into(), sender_id) != Some(sender_id);
            let answer = self
                .answered_ns
                .get(from)
                .is_none_or(|at| now_ns.saturating_sub(*at) >= retry_ns);
            if answer {
                self.answered_ns.insert(from.into(), now_ns);
            }
            let verdict = Verdict::Impostor {
                recorded,
                seen: sender_id,
                warn,
                answer,
            };
            self.version += u64::from(changed);
            return (changed, verdict);
        }
        // The peer speaks as recorded again: a later change warns anew.
        if !self.warned.is_empty() {
            self.warned.remove(from);
        }
        let (changed, verdict) = match recipient_id {
            Some(id) if id == self.durable.data_id => {
                changed |= self.confirm(from);
                (changed, Verdict::Counts)
            }
            Some(id) if !self.durable.abstain => {
                self.durable.abstain = true;
                (true, Verdict::LostState { recorded: id })
            }
            _ => (changed, Verdict::Counts),
        };
        self.version += u64::from(changed);
        (changed, verdict)
    }

    /// Records that `peer` confirmed this node's data id; whether that is
    /// news (copies `peer` only then).
    fn confirm(&mut self, peer: &str) -> bool {
        !self.durable.confirmed.contains(peer) && self.durable.confirmed.insert(peer.into())
    }

    /// Takes every one of `peers`' confirmations as given (tests that
    /// drive one node by hand).
    #[cfg(test)]
    pub(crate) fn confirm_all(&mut self, peers: impl IntoIterator<Item = NodeId>) {
        self.durable.confirmed.extend(peers);
        self.version += 1;
    }

    /// The durable part, to persist or hand over.
    pub(crate) fn durable(&self) -> &Durable {
        &self.durable
    }

    /// Moves on whenever the durable part changed: equal versions of one
    /// instance mean the same records and confirmations.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// How many of the other `members` confirmed this node's data id, and
    /// how many must.
    pub(crate) fn confirmations(&self, members: &BTreeSet<NodeId>, me: &str) -> (usize, usize) {
        // Both sets are sorted: one merged pass, no lookups (asked after
        // every call, through the status).
        let have = members
            .intersection(&self.durable.confirmed)
            .filter(|m| m.as_str() != me)
            .count();
        // A joiner is not in its own view yet; it counts as if it were.
        let size = members.len() + usize::from(!members.contains(me));
        (have, needed(size))
    }

    /// Whether enough other members confirmed this node's data id for it
    /// to vote and stand.
    pub(crate) fn confirmed(&self, members: &BTreeSet<NodeId>, me: &str) -> bool {
        let (have, need) = self.confirmations(members, me);
        have >= need
    }

    /// Whether `peer` has yet to confirm this node's data id.
    pub(crate) fn lacks(&self, peer: &str) -> bool {
        !self.durable.confirmed.contains(peer)
    }

    /// The other members that have not confirmed this node's data id.
    pub(crate) fn unconfirmed(&self, members: &BTreeSet<NodeId>, me: &str) -> Vec<NodeId> {
        members
            .iter()
            .filter(|m| m.as_str() != me && self.lacks(m))
            .cloned()
            .collect()
    }

    /// The records, for [`PersistedState::known_ids`].
    pub(crate) fn known_list(&self) -> Vec<(NodeId, u64)> {
        self.durable
            .known
            .iter()
            .map(|(peer, id)| (peer.clone(), *id))
            .collect()
    }

    /// The peers whose data ids this node has recorded.
    pub(crate) fn recorded_peers(&self) -> impl Iterator<Item = &NodeId> {
        self.durable.known.keys()
    }

    /// The confirmers, for [`PersistedState::confirmed_by`].
    pub(crate) fn confirmed_list(&self) -> Vec<NodeId> {
        self.durable.confirmed.iter().cloned().collect()
    }
}

/// How the state machine uses its `Identity`: the header of every
/// message goes through [`Election::hear_identity`] before its body.
impl Election {
    /// Reads the identity header of a message from `from`: records the
    /// sender's id, notes a confirmation, learns of a lost state. Returns
    /// whether the body counts: not if the sender speaks with a data id
    /// other than the one recorded for it.
    pub(crate) fn hear_identity(
        &mut self,
        from: &str,
        m: &Message,
        env: &mut impl Environment,
    ) -> bool {
        let retry = u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS;
        let (changed, verdict) = self.identity.hear(
            from,
            m.sender_data_id,
            m.recipient_data_id,
            self.now_ns,
            retry,
        );
        self.unsaved |= changed;
        match verdict {
            Verdict::Counts => true,
            Verdict::LostState { recorded } => {
                self.lost_state(from, recorded, env);
                true
            }
            // An observer never votes, so a lost state costs nothing there:
            // one restarted without its disk (observers are often
            // stateless) still follows. Its record stays: should it come
            // back as a voter with the new id, that id does not count.
            Verdict::Impostor { .. } if !m.sender.voter => true,
            Verdict::Impostor {
                recorded,
                seen,
                warn,
                answer,
            } => {
                self.ignored_messages = self.ignored_messages.saturating_add(1);
                if warn {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "{} ignores {from}: it speaks with data id {seen:#018x}, but {from} first spoke with {recorded:#018x}; it lost its state, or a second process runs as {from}",
                            self.id
                        ),
                    );
                }
                if answer {
                    // Named by the recorded id, which tells it.
                    self.send(from, Body::Identify { ask: false });
                }
                false
            }
        }
    }

    /// `from` names this node by `recorded`, not its own data id: this node
    /// lost its state. It abstains for good (persisted).
    fn lost_state(&mut self, from: &str, recorded: u64, env: &mut impl Environment) {
        self.identity.told = true;
        self.log(
            LogLevel::Error,
            format!(
                "{} lost its state: {from} knows it as data id {recorded:#018x}, and it is {:#018x}; it may have voted in terms it no longer remembers, so it never votes or stands again. Remove it with leave on the leader, and start it again under a new node id",
                self.id,
                self.identity.data_id()
            ),
        );
        if self.role != Role::Follower {
            self.become_follower(self.term, None, env, 0);
        }
    }

    /// Logs how this node came by its data id, and persists a new one.
    pub(crate) fn introduce_identity(&mut self, drawn: bool) {
        let id = self.identity.data_id();
        if drawn {
            self.unsaved = true;
            self.log(
                LogLevel::Info,
                format!("{} drew data id {id:#018x} for its new state", self.id),
            );
        }
        if self.identity.abstaining() && !self.identity.told {
            self.identity.told = true;
            self.log(
                LogLevel::Error,
                format!(
                    "{} lost its state earlier (data id {id:#018x}) and never votes or stands: remove it with leave on the leader, and start it again under a new node id",
                    self.id
                ),
            );
        }
    }

    /// After a swap: a state without a data id (`drawn`, from a build
    /// before them) persists its new one at once and asks for
    /// confirmations; a state with one says whether it abstains.
    pub(crate) fn resume_identity(&mut self, drawn: bool) {
        self.introduce_identity(drawn);
        self.ask_for_confirmation();
        self.flush();
    }

    /// Takes every current member's confirmation as given (for tests that
    /// drive one node by hand and are about something else).
    #[cfg(test)]
    pub(crate) fn assume_confirmed(&mut self) {
        let peers = self.member_list();
        self.identity.confirm_all(peers);
    }

    /// The nodes whose confirmations count: the members of this node's
    /// view — or, for a joiner not in its view yet, the voters it has
    /// heard from, since its view is only the list of whom to ask, which
    /// may name nodes that do not exist (chaos seed 1908: a joiner back
    /// from a crash, with phantoms in its list, could never be confirmed
    /// and the leader that admitted it never found its majority).
    /// (Borrowed for a member, so asking costs no copy of the view.)
    pub(crate) fn confirmation_view(&self) -> Cow<'_, BTreeSet<NodeId>> {
        if self.members.contains(&self.id) {
            return Cow::Borrowed(&self.members);
        }
        Cow::Owned(
            self.identity
                .recorded_peers()
                .filter(|p| !self.removed.contains(*p) && !self.observers.contains(*p))
                .cloned()
                .collect(),
        )
    }

    /// Asks each member that has not confirmed this node's data id yet to
    /// name it (a voter short of confirmations only).
    pub(crate) fn ask_for_confirmation(&mut self) {
        if !self.grants_votes() || self.confirmed() {
            return;
        }
        let peers = self
            .identity
            .unconfirmed(&self.confirmation_view(), &self.id);
        self.send_to_each(&peers, Body::Identify { ask: true });
    }

    /// This node would stand, but too few members confirmed its data id:
    /// it asks again, stands as soon as they answer, and tries again at
    /// its next timeout if they do not.
    pub(crate) fn wait_for_confirmation(&mut self, env: &mut impl Environment) {
        let (have, need) = self
            .identity
            .confirmations(&self.confirmation_view(), &self.id);
        self.log(
            LogLevel::Debug,
            format!(
                "{} does not stand yet: {have} of the {need} members it needs confirmed its data id",
                self.id
            ),
        );
        self.identity.stand_when_confirmed = true;
        self.ask_for_confirmation();
        self.arm_election_timer(env, 0);
    }

    /// Refuses `what` to `from` for want of confirmations, and asks `from`
    /// for its own if it lacks it.
    pub(crate) fn refuse_unconfirmed(&mut self, from: &str, what: &str, term: Term) {
        self.log(
            LogLevel::Debug,
            format!(
                "{} refused {from} {what} at term {term}: too few members confirmed its data id",
                self.id
            ),
        );
        // Everyone short, not only `from`: members admitted since this
        // node was confirmed never heard from it, and a follower's timer
        // (where it would ask) does not fire while its leader is heard.
        self.ask_for_confirmation();
        if self.identity.lacks(from) && !self.members.contains(from) {
            self.send(from, Body::Identify { ask: true });
        }
    }
}
