//! The protocol's vocabulary, mirroring `wit/types.wit` so the state machine
//! can be tested natively without any wasm tooling.

use alloc::string::String;
use alloc::vec::Vec;

/// A node's name, unique within its cluster.
pub type NodeId = String;

/// A Raft term. Only grows; at most one leader is elected per term.
pub type Term = u64;

/// Identifies one armed timer; never reused, so stale firings are ignored.
pub type TimerId = u64;

/// What a node currently is in the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Campaigning for the current term.
    Candidate,
    /// Won the current term.
    Leader,
}

impl Role {
    /// The lower-case name used in logs and status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// State that must survive restarts; handed to the host with
/// [`Action::Persist`] and back to [`crate::Election::start`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PersistedState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom this node voted for in `term`.
    pub voted_for: Option<NodeId>,
    /// The voting membership, self included (unless this node is still
    /// waiting to be admitted), sorted.
    pub members: Vec<NodeId>,
    /// The membership's epoch (see [`crate::membership`]): 0 for the
    /// bootstrap membership and in state of builds before epochs.
    pub epoch: u64,
    /// The term of the leader that last confirmed `members` (see
    /// [`crate::membership`]): 0 in state of builds before epochs.
    pub epoch_term: Term,
    /// Members removed with `leave`, sorted: never members again, whatever
    /// a message says.
    pub removed: Vec<NodeId>,
    /// This copy of the state's random id (see [`crate::identity`]); 0 in
    /// state written by builds before data ids, which then draw one.
    pub data_id: u64,
    /// The first data id heard from each peer, sorted by peer: never
    /// replaced.
    pub known_ids: Vec<(NodeId, u64)>,
    /// The peers that confirmed `data_id` (named this node by it), sorted.
    pub confirmed_by: Vec<NodeId>,
    /// This node learned that it lost its state: it never votes or stands
    /// again.
    pub abstain: bool,
}

/// What the protocol reports to the host (and, through it, to behaviours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node won the election for the term.
    BecameLeader(Term),
    /// This node became follower, or the leader it follows changed.
    BecameFollower { leader: Option<NodeId>, term: Term },
    /// The term moved from `old` to `new`, also for this node's candidacy.
    TermChanged { old: Term, new: Term },
    /// A peer was heard from for the first time, or again after leaving.
    PeerJoined(NodeId),
    /// A peer was silent for `peer_timeout_heartbeats` intervals.
    PeerLeft(NodeId),
}

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One effect of a protocol call, for the host to carry out in order.
///
/// The order is the contract: a [`Action::Persist`] always precedes any
/// [`Action::Send`] that depends on it, so the host must make it durable
/// before those messages leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to a peer (best effort).
    Send { to: NodeId, payload: Vec<u8> },
    /// Call `on_timer(id)` after `after_ns` nanoseconds.
    SetTimer { id: TimerId, after_ns: u64 },
    /// Forget timer `id`.
    CancelTimer { id: TimerId },
    /// Report an event.
    Emit(Event),
    /// Store this state durably before sending anything that follows.
    Persist(PersistedState),
    /// Write a log line.
    Log { level: LogLevel, message: String },
}

/// A snapshot of the node's view; see `status` in `wit/types.wit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub node_id: NodeId,
    pub cluster_id: String,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub voted_for: Option<NodeId>,
    pub members: Vec<NodeId>,
    /// The epoch of `members` (see [`crate::membership`]).
    pub epoch: u64,
    pub alive_peers: Vec<NodeId>,
    pub quorum: u32,
    pub ignored_messages: u64,
    /// Until when this node may act as sole leader (see
    /// [`crate::Election::lease_expires_ns`]).
    pub lease_expires_ns: Option<u64>,
    /// This copy of the node's state (see [`crate::identity`]).
    pub data_id: u64,
    /// The node learned it lost its state: it never votes or stands.
    pub abstaining: bool,
    /// Whether enough other members confirmed `data_id` for it to vote.
    pub confirmed: bool,
}

/// What the protocol needs from the outside world while handling a call:
/// the time and randomness. The component reads them from host imports; the
/// native tests supply them directly.
pub trait Environment {
    /// The monotonic clock, in nanoseconds.
    fn now_ns(&mut self) -> u64;
    /// 64 uniformly random bits.
    fn random_u64(&mut self) -> u64;
}
