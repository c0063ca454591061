//! Heartbeats and their acks: a leader asserting itself, followers
//! following, and what each message says about its sender's liveness.

use super::*;
use crate::lists::Lists;

/// A peer's standing as this node last heard it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerStanding {
    pub(crate) standing: Standing,
    /// Start of the current unbroken run of messages from it.
    pub(crate) since_ns: u64,
    /// Its latest message.
    pub(crate) last_ns: u64,
}

impl Election {
    /// A leader's heartbeat, its lists resolved: `held` is their
    /// generation, or `None` if this node could not resolve them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_heartbeat(
        &mut self,
        from: &str,
        term: Term,
        round: u64,
        epoch: u64,
        lists: &Lists,
        held: Option<u64>,
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
                    holds: None,
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
        self.adopt_view(from, term, epoch, &lists.members);
        // The lists' content is named by the keeper's version when they
        // are the leader's (`held`); the relayed peers also depend on the
        // membership, just adopted.
        let relay_key = held.map(|_| (self.lists_kept.version(), self.members.version()));
        self.news_of_members(&lists.alive, relay_key, now);
        self.expire_peers(now);
        let (kept, view) = (&mut self.lists_kept, &self.members);
        let (members, removed) = crate::lists::ack_lists_with(
            held.map(|_| lists),
            |heard| kept.lists_members_match(heard, view),
            self.members.iter(),
            self.removed.iter(),
        );
        self.send(
            from,
            Body::HeartbeatAck {
                term: self.term,
                ok: true,
                round,
                members,
                removed,
                holds: held,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_heartbeat_ack(
        &mut self,
        from: &str,
        term: Term,
        ok: bool,
        round: u64,
        members: &[NodeId],
        holds: Option<u64>,
        env: &mut impl Environment,
    ) {
        if term > self.term {
            return self.become_follower(term, None, env, 0);
        }
        if ok && term == self.term && self.role == Role::Leader {
            let (lease, view) = (self.lease.edit(), &self.members);
            lease.acked_by(from, round, view, &self.id);
            self.lists_sent.acked(term, from, round, holds);
            self.contact_mentioned(members);
            self.tell_transfer_target();
        }
    }

    /// News of the members among `peers` (a leader's sorted list of whom
    /// it hears from), other than this node, in one pass; `key`, if any,
    /// names `peers` and the membership (see [`Liveness::heard_relayed`]).
    fn news_of_members(&mut self, peers: &[NodeId], key: Option<(u64, u64)>, now: u64) {
        let (liveness, members, me) = (&mut self.liveness, &self.members, &self.id);
        let changes = liveness.heard_relayed(key, now, || relayed(peers, members, me).into_iter());
        for change in changes {
            if let Change::Joined(peer) = change {
                self.log(LogLevel::Debug, format!("{} sees {peer} joined", self.id));
                self.emit(Event::PeerJoined(peer));
            }
        }
    }

    pub(crate) fn news_of(&mut self, peer: &str, now: u64) {
        if let Some(Change::Joined(peer)) = self.liveness.heard(peer, now) {
            self.log(LogLevel::Debug, format!("{} sees {peer} joined", self.id));
            self.emit(Event::PeerJoined(peer));
        }
    }

    pub(crate) fn expire_peers(&mut self, now: u64) {
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

    /// A heartbeat of the latest round, with its lists (a newcomer's
    /// extra heartbeat reuses the round: its ack then dates from that
    /// round's earlier send time, which only shortens the lease). Lists
    /// that changed since the last heartbeat get a new generation.
    pub(crate) fn heartbeat(&mut self) -> Body {
        let lists = Lists {
            members: self.member_list(),
            alive: self.liveness.alive(),
            removed: self.removed_list(),
        };
        let generation = self.lists_sent.round(self.term, &lists);
        Body::Heartbeat {
            term: self.term,
            round: self.lease.round,
            epoch: self.epoch,
            members: lists.members,
            alive: lists.alive,
            removed: lists.removed,
            transfer_to: self.handing.as_ref().map(|h| h.to.clone()),
            generation,
            full: true,
        }
    }

    /// Starts a new heartbeat round, now, to every member and observer:
    /// with the lists to those whose last ack did not hold them (see
    /// [`crate::lists`]).
    pub(crate) fn send_heartbeats(&mut self) {
        self.lease.edit().new_round(self.now_ns);
        let full = self.heartbeat();
        let mut compact = full.clone();
        if let Body::Heartbeat {
            members,
            alive,
            removed,
            full,
            ..
        } = &mut compact
        {
            members.clear();
            alive.clear();
            removed.clear();
            *full = false;
        }
        let recipients: Vec<NodeId> = self
            .members
            .iter()
            .filter(|m| **m != self.id)
            .chain(self.observers.iter())
            .cloned()
            .collect();
        self.flush();
        // Each body encoded once; only the header is per recipient.
        let (full, compact) = (full.encoded(), compact.encoded());
        for peer in recipients {
            let body = if self.lists_sent.needs_lists(self.term, &peer) {
                &full
            } else {
                &compact
            };
            let payload = self.encode_for(body, &peer);
            self.actions.push(Action::Send { to: peer, payload });
        }
    }

    /// `peer` says it is an observer: it gets heartbeats, and it is no
    /// member (if a bootstrap list named it, it leaves the membership: it
    /// never votes, so counting it only made the quorum harder to reach).
    pub(crate) fn observe(&mut self, peer: &str) {
        if self.observers.insert(peer.into()) {
            self.log(LogLevel::Info, format!("{} sees observer {peer}", self.id));
        }
        if self.members.contains(peer) {
            self.members.edit().remove(peer);
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

    pub(crate) fn note_standing(&mut self, peer: &str, standing: Standing, now: u64) {
        let unbroken = 3 * u64::from(self.timings.heartbeat_interval_ms) * NS_PER_MS;
        // Looked up first: this runs on every message, and the entry API
        // would copy `peer` each time.
        let Some(entry) = self.peers.get_mut(peer) else {
            self.standings_version += 1;
            self.peers.insert(
                peer.into(),
                PeerStanding {
                    standing,
                    since_ns: now,
                    last_ns: now,
                },
            );
            return;
        };
        if now.saturating_sub(entry.last_ns) > unbroken {
            entry.since_ns = now;
        }
        entry.last_ns = now;
        if entry.standing != standing {
            self.standings_version += 1;
            entry.standing = standing;
        }
    }

    /// An observer without a leader (re)introduces itself to every member,
    /// so whoever leads learns to send it heartbeats.
    pub(crate) fn announce_observer(&mut self, env: &mut impl Environment) {
        if self.leader.is_some() {
            self.become_follower(self.term, None, env, 0);
        } else {
            self.arm_election_timer(env, 0);
        }
        let members = self.member_list();
        self.send_to_all(Body::Join { members });
    }
}

/// The members among `peers` (a leader's list of whom it hears from),
/// other than `me`: in one merged pass if the list is sorted, as a leader
/// of this build sends it.
fn relayed<'a>(peers: &'a [NodeId], members: &BTreeSet<NodeId>, me: &NodeId) -> Vec<&'a NodeId> {
    if peers.is_sorted() {
        let mut members = members.iter().peekable();
        peers
            .iter()
            .filter(|peer| {
                while members.next_if(|m| m < peer).is_some() {}
                *peer != me && members.peek() == Some(peer)
            })
            .collect()
    } else {
        peers
            .iter()
            .filter(|peer| *peer != me && members.contains(*peer))
            .collect()
    }
}
