//! The node a plugin runs on: typed wrappers over the WIT `leader-api`.
//!
//! Every function answers from the node's current view and returns at
//! once; none waits for the network. Requests (`send`, `broadcast`,
//! `schedule`, `transfer_leadership`) are carried out by the node after the
//! callback returns, in the order they were made.
//!
//! In a `wasm32` build these call the host. In a native build (`cargo
//! test`) they read and write a per-thread `tenure_sdk::fake` node, so a
//! behaviour's logic can be unit-tested without a cluster — which is also
//! why every example below runs as a doctest.

use std::fmt;
use std::time::Duration;

use crate::Error;

#[cfg(not(target_arch = "wasm32"))]
use crate::fake as imp;
#[cfg(target_arch = "wasm32")]
use crate::wasm as imp;

/// A Raft term: a logical epoch that only grows. At most one leader is
/// elected per term, so a leader's term doubles as a fencing token.
///
/// ```
/// let term: tenure_sdk::Term = tenure_sdk::node::term();
/// assert_eq!(term, 0); // a fresh fake node
/// ```
pub type Term = u64;

/// What a node currently is in the election.
///
/// ```
/// use tenure_sdk::{Role, node};
/// assert_eq!(node::role(), Role::Follower);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Campaigning for a new term.
    Candidate,
    /// Won the election for the current term.
    Leader,
}

/// Severity of a log line written with [`log`] (or the [`crate::info!`]
/// family of macros).
///
/// ```
/// tenure_sdk::node::log(tenure_sdk::Level::Warn, "disk nearly full");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing; not shown by default.
    Trace,
    /// Details for debugging; not shown by default.
    Debug,
    /// What the behaviour did (the simulator's trace shows these).
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// The id of a wake-up asked for with [`schedule`]; [`cancel`] takes it and
/// [`crate::Behaviour::on_scheduled`] receives it.
///
/// Ids are unique per node and carry over a hot swap, so a snapshot that
/// records them (as [`WakeupId::as_raw`]) lets the next version recognise
/// the wake-ups it inherits.
///
/// ```
/// use std::time::Duration;
/// use tenure_sdk::{WakeupId, node};
///
/// let id = node::schedule(Duration::from_secs(1), "tick");
/// assert_eq!(WakeupId::from_raw(id.as_raw()), id);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WakeupId(u64);

impl WakeupId {
    /// The id from its number (as read back from a snapshot).
    ///
    /// ```
    /// assert_eq!(tenure_sdk::WakeupId::from_raw(7).as_raw(), 7);
    /// ```
    pub const fn from_raw(raw: u64) -> WakeupId {
        WakeupId(raw)
    }

    /// The id's number, to store in a snapshot.
    ///
    /// ```
    /// assert_eq!(tenure_sdk::WakeupId::from_raw(7).as_raw(), 7);
    /// ```
    pub const fn as_raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for WakeupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether this node is the leader right now.
///
/// Check it again in every deferred piece of leader work (a wake-up, a
/// message): leadership may have moved since the work was planned.
///
/// ```
/// use tenure_sdk::{fake, node};
/// assert!(!node::is_leader());
/// fake::with(|n| n.lead(3));
/// assert!(node::is_leader());
/// ```
pub fn is_leader() -> bool {
    imp::is_leader()
}

/// The leader this node follows (itself when leader), if one is known.
///
/// ```
/// use tenure_sdk::{fake, node};
/// fake::with(|n| n.follow(Some("n2"), 4));
/// assert_eq!(node::leader().as_deref(), Some("n2"));
/// ```
pub fn leader() -> Option<String> {
    imp::leader()
}

/// This node's role.
///
/// ```
/// use tenure_sdk::{Role, fake, node};
/// fake::with(|n| n.lead(1));
/// assert_eq!(node::role(), Role::Leader);
/// ```
pub fn role() -> Role {
    imp::role()
}

/// This node's current term.
///
/// ```
/// use tenure_sdk::{fake, node};
/// fake::with(|n| n.follow(None, 9));
/// assert_eq!(node::term(), 9);
/// ```
pub fn term() -> Term {
    imp::term()
}

/// How much longer this node may act as the sole leader without hearing
/// from a majority again (its lease), or `None` when it holds no lease (it
/// does not lead, or has not heard from a majority lately).
///
/// A behaviour that must never overlap with another leader checks this
/// right before acting, and finishes within it. A healthy leader's lease
/// is renewed by every acknowledged heartbeat round (about 80–135 ms left
/// at default timings); it is `None` for a round trip after an election.
///
/// ```
/// use std::time::Duration;
/// use tenure_sdk::{fake, node};
/// fake::with(|n| {
///     n.lead(2);
///     n.lease = Some(Duration::from_millis(120));
/// });
/// assert_eq!(node::lease(), Some(Duration::from_millis(120)));
/// ```
pub fn lease() -> Option<Duration> {
    imp::lease_remaining_ns().map(Duration::from_nanos)
}

/// The fencing token to attach to anything this node writes as leader:
/// its term, while it leads and its lease holds; `None` otherwise.
///
/// A store that remembers the highest token it accepted and refuses lower
/// ones never takes a deposed leader's write after a newer leader's.
///
/// ```
/// use std::time::Duration;
/// use tenure_sdk::{fake, node};
/// fake::with(|n| n.lead(5));
/// assert_eq!(node::fencing_token(), None); // no lease yet
/// fake::with(|n| n.lease = Some(Duration::from_millis(100)));
/// assert_eq!(node::fencing_token(), Some(5));
/// ```
pub fn fencing_token() -> Option<Term> {
    imp::fencing_token()
}

/// Asks this node, when it leads, to hand leadership to `to`: `to`
/// campaigns at once and normally leads the next term within about a
/// heartbeat. The error says why not (this node does not lead; `to` is
/// this node, unknown, not a voter, or not heard from lately). `Ok` means
/// the hand-over began; [`crate::Behaviour::on_become_follower`] tells the
/// outcome.
///
/// ```
/// use tenure_sdk::{fake, node};
/// assert!(node::transfer_leadership("n2").is_err()); // not leading
/// fake::with(|n| {
///     n.lead(3);
///     n.peers = vec!["n2".into(), "n3".into()];
/// });
/// assert_eq!(node::transfer_leadership("n2"), Ok(()));
/// ```
pub fn transfer_leadership(to: &str) -> Result<(), Error> {
    imp::transfer_leadership(to).map_err(Error::from)
}

/// This node's id, e.g. `"n1"`.
///
/// ```
/// assert_eq!(tenure_sdk::node::this_node(), "n1"); // the fake's default
/// ```
pub fn this_node() -> String {
    imp::this_node()
}

/// The id of the cluster this node belongs to.
///
/// ```
/// assert_eq!(tenure_sdk::node::cluster_id(), "test"); // the fake's default
/// ```
pub fn cluster_id() -> String {
    imp::cluster_id()
}

/// The peers heard from lately, this node excluded, sorted.
///
/// ```
/// use tenure_sdk::{fake, node};
/// fake::with(|n| n.peers = vec!["n2".into()]);
/// assert_eq!(node::peers(), ["n2"]);
/// ```
pub fn peers() -> Vec<String> {
    imp::peers()
}

/// Sends `payload` to the behaviour plugin on `peer`, which receives it in
/// [`crate::Behaviour::on_message`]. Best effort: it may be lost.
///
/// ```
/// use tenure_sdk::{fake, node};
/// node::send("n2", b"ping");
/// assert_eq!(fake::with(|n| n.sent.clone()), [("n2".to_string(), b"ping".to_vec())]);
/// ```
pub fn send(peer: &str, payload: &[u8]) {
    imp::send(peer, payload);
}

/// Sends `payload` to the behaviour plugin on every peer. Best effort.
///
/// ```
/// use tenure_sdk::{fake, node};
/// node::broadcast(b"hello");
/// assert_eq!(fake::with(|n| n.broadcasts.len()), 1);
/// ```
pub fn broadcast(payload: &[u8]) {
    imp::broadcast(payload);
}

/// Asks for [`crate::Behaviour::on_scheduled`] with `tag` after `after`
/// (rounded up to whole milliseconds) and returns the wake-up's id.
///
/// Wake-ups belong to the plugin instance: a hot swap hands them to the
/// next version; a crash, or an instance replaced after a trap, loses them.
///
/// ```
/// use std::time::Duration;
/// use tenure_sdk::{fake, node};
/// let id = node::schedule(Duration::from_millis(500), "tick");
/// let pending = fake::with(|n| n.scheduled.clone());
/// assert_eq!((pending[0].id, pending[0].tag.as_str()), (id, "tick"));
/// ```
pub fn schedule(after: Duration, tag: &str) -> WakeupId {
    let ms = after.as_nanos().div_ceil(1_000_000);
    WakeupId(imp::schedule(u64::try_from(ms).unwrap_or(u64::MAX), tag))
}

/// Cancels a wake-up. Unknown or already fired ids are ignored.
///
/// ```
/// use std::time::Duration;
/// use tenure_sdk::{fake, node};
/// let id = node::schedule(Duration::from_secs(1), "tick");
/// node::cancel(id);
/// assert!(fake::with(|n| n.scheduled.is_empty()));
/// ```
pub fn cancel(id: WakeupId) {
    imp::cancel_schedule(id.0);
}

/// Writes a log line through the node's logger, tagged with the plugin
/// and node. Info and above also appear in the simulator's trace as
/// `plugin: MESSAGE`, which is what tests assert on. The
/// [`crate::info!`] family of macros formats for you.
///
/// ```
/// use tenure_sdk::{Level, fake, node};
/// node::log(Level::Info, "started");
/// assert_eq!(fake::with(|n| n.lines(Level::Info)), ["started"]);
/// ```
pub fn log(level: Level, message: &str) {
    imp::log(level, message);
}
