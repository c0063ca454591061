//! Fast failover: replacing a leader whose process the host saw die.
//!
//! A follower that waits out a full election timeout after its leader
//! died costs the cluster 150-300 ms without a leader. The host often
//! knows sooner: the leader's connection closed and a reconnect was
//! refused. Told so ([`Election::peer_unreachable`]), a follower of that
//! leader forgets it, drops its loyalty (a dead leader holds no lease) and
//! campaigns on its *turn*: the survivors rank themselves the same way
//! (priority, then id) and each waits its rank in slots of a fifth of a
//! heartbeat interval (at least 5 ms), plus a jitter (a tenth of a slot
//! for the first in line, half a slot for the others). So survivors do
//! not split the vote, and if the first in line is down too, the next one
//! goes a slot later.
//!
//! The same line orders the timeout path, when nobody sees the leader die
//! (it froze, or the network cut it off): every heartbeat re-arms a
//! follower's timer for the minimum election timeout plus its turn
//! ([`Election::arm_timeout_turn`]), so the first in line stands as soon
//! as the others' loyalty has run out. A voter still loyal for a moment
//! says when its loyalty ends (`Body::PreVoteLater`), and the
//! pre-candidate asks again right then.
//!
//! The survivors learn of the death a few ms apart, so the first in line
//! may ask before the others have seen it and be refused for loyalty. A
//! voter remembers the pre-votes it refused for loyalty alone and answers
//! them again the moment the host reports its leader dead; the first in
//! line keeps its pre-vote open for those answers until its next turn.
//!
//! Data ids (see [`crate::identity`]) cost nothing here: a survivor's
//! confirmations were saved long before the leader died.

use alloc::format;

use crate::election::{Election, NS_PER_MS};
use crate::types::{Environment, LogLevel, NodeId, Role};

/// A place in line, and everything it was computed from: the dead leader,
/// and the versions of the membership, of the live peers and of the
/// peers' standings, and this node's own priority. A follower ranks
/// itself on every heartbeat, and in a steady cluster none of these
/// change between two heartbeats (see [`crate::versioned`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RankMemo {
    dead: NodeId,
    versions: (u64, u64, u64, u8),
    rank: (u64, u64),
}

impl Election {
    /// The host saw `peer`'s process die (its connection closed and a
    /// reconnect was refused). If `peer` is the leader this node follows,
    /// it forgets the leader and re-arms its election timer for its turn:
    /// the survivors rank themselves the same way (priority, then id) and
    /// each waits `rank` slots of a fifth of a heartbeat interval (at least
    /// 5 ms), plus a jitter (see `arm_failover_turn`). The first
    /// in line campaigns at once; the others, which also saw the death, grant it,
    /// and their own turn is pushed back by the vote they cast — so
    /// survivors do not split the vote, and if the first in line is down
    /// too, the next one goes a slot later.
    pub fn peer_unreachable(&mut self, peer: &str, env: &mut impl Environment) {
        self.now_ns = env.now_ns();
        if self.role != Role::Follower || self.leader.as_deref() != Some(peer) {
            return;
        }
        self.log(
            LogLevel::Info,
            format!(
                "{} lost its leader {peer} at term {}; campaigning soon",
                self.id, self.term
            ),
        );
        self.become_follower(self.term, None, env, 0);
        // The leader is dead, so it holds no lease: this node's loyalty to
        // it ends now, and it may vote for whoever campaigns first.
        self.leader_heard_ns = None;
        // Re-arm for this node's turn instead of a full timeout.
        let (rank, line) = self.failover_rank(peer);
        self.failover_line = line;
        let max = u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS;
        self.failover_until_ns = Some(self.now_ns.saturating_add(max));
        self.arm_failover_turn(rank, env);
        // The survivors learn of the death a few ms apart: a pre-vote this
        // node refused for loyalty a moment ago (the first in line stood
        // before this node saw the death) is answered again now, as if it
        // were asked again, instead of its candidate waiting out the whole
        // line of turns (a 20 ms tail of the kill path at 3 nodes).
        for (candidate, term, epoch, epoch_term) in core::mem::take(&mut self.refused_for_loyalty) {
            if Some(term) == crate::terms::next(self.term) {
                self.on_request_pre_vote(&candidate, term, epoch, epoch_term, env);
            }
        }
        self.flush();
    }

    /// Whether this node is replacing a leader the host saw die (for at
    /// most a maximum election timeout after the news).
    pub(crate) fn replacing_a_dead_leader(&self) -> bool {
        self.failover_until_ns
            .is_some_and(|until| self.now_ns < until)
    }

    /// Re-arms this node's fast-failover turn after everyone in line.
    pub(crate) fn defer_failover_turn(&mut self, env: &mut impl Environment) {
        self.arm_failover_turn(self.failover_line, env);
    }

    /// One turn of a fast failover: a fifth of a heartbeat, but at least
    /// 5 ms, since a turn must outlast a candidacy's round trips and its
    /// two durable writes (at 3 ms turns, 15 ms heartbeats, one trial in 30
    /// still split the vote on this machine's disk).
    fn failover_slot_ns(&self) -> u64 {
        (u64::from(self.timings.heartbeat_interval_ms) * NS_PER_MS / 5).max(5 * NS_PER_MS)
    }

    /// Arms the election timer of a follower that just heard from its
    /// leader `leader`: a minimum election timeout, then its turn in line
    /// (as after a death, but counted from the end of its loyalty), plus
    /// a jitter of up to half a slot, and never past the maximum timeout.
    /// If the leader freezes, the first in line stands as soon as any
    /// follower may vote, and the next goes a slot later only if it could
    /// not; timers drawn at random over the whole window instead make the
    /// first stand a third of the window later on average (with two
    /// survivors) and split the vote when two land close together.
    pub(crate) fn arm_timeout_turn(&mut self, leader: &str, env: &mut impl Environment) {
        let min = u64::from(self.timings.election_timeout_min_ms) * NS_PER_MS;
        let span = u64::from(self.timings.election_timeout_max_ms) * NS_PER_MS - min;
        let slot = self.failover_slot_ns();
        let (rank, _) = self.failover_rank(leader);
        let jitter = env.random_u64() % (slot / 2 + 1);
        let after_ns = min + (rank * slot + jitter).min(span);
        self.rearm_election_timer(after_ns);
    }

    /// This node's place in line to replace the dead leader `dead`, and
    /// the length of the line: itself and the members it hears from,
    /// highest priority first, then by id. Remembered until one of the
    /// things it depends on changes ([`RankMemo`]).
    pub(crate) fn failover_rank(&mut self, dead: &str) -> (u64, u64) {
        let versions = (
            self.members.version(),
            self.liveness.version(),
            self.standings_version,
            self.standing.priority,
        );
        if let Some(memo) = &self.rank_memo
            && memo.versions == versions
            && memo.dead == dead
        {
            debug_assert_eq!(memo.rank, self.rank_in_line(dead), "stale rank memo");
            return memo.rank;
        }
        let rank = self.rank_in_line(dead);
        self.rank_memo = Some(RankMemo {
            dead: dead.into(),
            versions,
            rank,
        });
        rank
    }

    /// [`Election::failover_rank`], computed.
    fn rank_in_line(&self, dead: &str) -> (u64, u64) {
        // Called on every heartbeat a follower handles: one pass over the
        // members, no allocation (at 51 members the sorted line this
        // used to build was a sixth of the simulator's time).
        // Members, live peers and standings are all sorted by id: walk
        // them in step.
        let mut live = self.liveness.alive_ids().peekable();
        let mut standings = self.peers.iter().peekable();
        let mine = (core::cmp::Reverse(self.standing.priority), self.id.as_str());
        let (mut ahead, mut line) = (0u64, 0u64);
        for m in self.members.iter() {
            while live.next_if(|id| *id < m).is_some() {}
            while standings.next_if(|(id, _)| *id < m).is_some() {}
            if *m == self.id {
                line += u64::from(m.as_str() != dead);
                continue;
            }
            if m.as_str() == dead || live.peek() != Some(&m) {
                continue;
            }
            line += 1;
            let priority = match standings.peek() {
                Some((id, p)) if *id == m => p.standing.priority,
                _ => 0,
            };
            // Higher priority first, then the lower id.
            if (core::cmp::Reverse(priority), m.as_str()) < mine {
                ahead += 1;
            }
        }
        // Not a member itself (a joiner): behind everyone in line.
        let rank = if self.members.contains(&self.id) && self.id != dead {
            ahead
        } else {
            line
        };
        (rank, line.max(1))
    }

    /// Arms the election timer for a fast-failover turn `turns` slots from
    /// now, plus a jitter: up to a tenth of a slot for the first in line,
    /// half a slot for the others.
    ///
    /// The jitter only separates survivors that ranked themselves alike
    /// (their views of who is alive differed when the leader died); the
    /// first in line is alone in its place in every other case, so its
    /// jitter is the kill path's cost for nothing (half a 10 ms slot was
    /// 2.5 ms of a ~9 ms median; BENCHMARKS.md, *Kill path*). A tenth still
    /// spreads two such survivors over 1 ms, several candidacy round trips
    /// on one network; the others keep half a slot, which absorbs the
    /// spread of the moments the survivors learn of the death.
    pub(crate) fn arm_failover_turn(&mut self, turns: u64, env: &mut impl Environment) {
        let slot = self.failover_slot_ns();
        let jitter = if turns == 0 { slot / 10 } else { slot / 2 };
        let after_ns = turns * slot + env.random_u64() % (jitter + 1);
        self.rearm_election_timer(after_ns);
    }
}
