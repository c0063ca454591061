//! A pretend node for native unit tests (only in non-`wasm32` builds).
//!
//! In a native build every [`crate::node`] function reads or writes the
//! calling thread's [`FakeNode`] instead of a host, so a behaviour's logic
//! runs in plain `cargo test`: set the node up, call the behaviour's
//! callbacks yourself, and check what it logged, sent and scheduled. Each
//! test thread has its own fake; [`reset`] starts it afresh.
//!
//! This tests logic, not the contract: timing, traps, deadlines, message
//! loss and other nodes need the simulator
//! (`tenure_host::testing`, which runs the built `.wasm`).
//!
//! ```
//! use tenure_sdk::{Behaviour, Level, Term, fake, info};
//!
//! #[derive(Default)]
//! struct Greeter;
//!
//! impl Behaviour for Greeter {
//!     fn on_become_leader(&mut self, term: Term) -> Result<(), tenure_sdk::Error> {
//!         info!("leading term {term}");
//!         Ok(())
//!     }
//! }
//!
//! fake::reset();
//! fake::with(|n| n.lead(4));
//! Greeter.on_become_leader(4).unwrap();
//! assert_eq!(fake::with(|n| n.lines(Level::Info)), ["leading term 4"]);
//! ```

use std::cell::RefCell;
use std::time::Duration;

use crate::node::{Level, Role, Term, WakeupId};

/// A wake-up the behaviour asked for and has not cancelled.
///
/// ```
/// use std::time::Duration;
/// use tenure_sdk::{fake, node};
/// node::schedule(Duration::from_millis(20), "tick");
/// let wakeup = fake::with(|n| n.scheduled[0].clone());
/// assert_eq!(wakeup.after, Duration::from_millis(20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wakeup {
    /// Its id, as `schedule` returned it.
    pub id: WakeupId,
    /// The delay asked for, in whole milliseconds.
    pub after: Duration,
    /// Its tag.
    pub tag: String,
}

/// The pretend node: set its fields to shape what the behaviour sees,
/// read them to check what it did.
///
/// ```
/// use tenure_sdk::{fake, node};
/// fake::with(|n| {
///     n.node_id = "n7".into();
///     n.follow(Some("n1"), 2);
/// });
/// assert_eq!((node::this_node(), node::term()), ("n7".to_string(), 2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeNode {
    /// `this_node()`; default `"n1"`.
    pub node_id: String,
    /// `cluster_id()`; default `"test"`.
    pub cluster_id: String,
    /// `role()`; default follower.
    pub role: Role,
    /// `term()`; default 0.
    pub term: Term,
    /// `leader()`; default none.
    pub leader: Option<String>,
    /// `peers()`; default none.
    pub peers: Vec<String>,
    /// The lease `lease()` reports while leading; default none (as right
    /// after an election, before a majority acknowledged a heartbeat).
    pub lease: Option<Duration>,
    /// Wake-ups asked for and not cancelled, in the order asked.
    pub scheduled: Vec<Wakeup>,
    /// `(peer, payload)` of every `send`.
    pub sent: Vec<(String, Vec<u8>)>,
    /// The payload of every `broadcast`.
    pub broadcasts: Vec<Vec<u8>>,
    /// Every log line.
    pub logs: Vec<(Level, String)>,
    /// Every accepted `transfer_leadership` target.
    pub transfers: Vec<String>,
    /// The next wake-up id handed out.
    pub next_wakeup: u64,
    /// Every HTTP request started, in order (see [`crate::http`]).
    pub http_requests: Vec<crate::http::Request>,
    /// The answers the next requests get, in order; a request with none
    /// left is denied, as a node with no allowlist denies it.
    pub http_responses:
        std::collections::VecDeque<Result<crate::http::Response, crate::http::HttpError>>,
}

impl Default for FakeNode {
    fn default() -> Self {
        FakeNode {
            node_id: "n1".into(),
            cluster_id: "test".into(),
            role: Role::Follower,
            term: 0,
            leader: None,
            peers: Vec::new(),
            lease: None,
            scheduled: Vec::new(),
            sent: Vec::new(),
            broadcasts: Vec::new(),
            logs: Vec::new(),
            transfers: Vec::new(),
            next_wakeup: 1,
            http_requests: Vec::new(),
            http_responses: std::collections::VecDeque::new(),
        }
    }
}

impl FakeNode {
    /// Makes this node the leader of `term`.
    ///
    /// ```
    /// tenure_sdk::fake::with(|n| n.lead(3));
    /// assert_eq!(tenure_sdk::node::leader().as_deref(), Some("n1"));
    /// ```
    pub fn lead(&mut self, term: Term) {
        self.role = Role::Leader;
        self.term = term;
        self.leader = Some(self.node_id.clone());
    }

    /// Makes this node a follower of `leader` (none: an election is under
    /// way) in `term`; any lease is gone.
    ///
    /// ```
    /// tenure_sdk::fake::with(|n| n.follow(None, 3));
    /// assert!(!tenure_sdk::node::is_leader());
    /// ```
    pub fn follow(&mut self, leader: Option<&str>, term: Term) {
        self.role = Role::Follower;
        self.term = term;
        self.leader = leader.map(str::to_string);
        self.lease = None;
    }

    /// The messages of the log lines at `level`, in order.
    ///
    /// ```
    /// tenure_sdk::info!("one");
    /// tenure_sdk::warn!("two");
    /// let lines = tenure_sdk::fake::with(|n| n.lines(tenure_sdk::Level::Warn));
    /// assert_eq!(lines, ["two"]);
    /// ```
    pub fn lines(&self, level: Level) -> Vec<String> {
        self.logs
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Removes and returns the earliest-asked pending wake-up, to hand to
    /// the behaviour's `on_scheduled` as the node would.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tenure_sdk::{fake, node};
    /// node::schedule(Duration::from_secs(1), "a");
    /// node::schedule(Duration::from_secs(1), "b");
    /// let first = fake::with(|n| n.pop_wakeup()).unwrap();
    /// assert_eq!(first.tag, "a");
    /// ```
    pub fn pop_wakeup(&mut self) -> Option<Wakeup> {
        (!self.scheduled.is_empty()).then(|| self.scheduled.remove(0))
    }
}

thread_local! {
    static NODE: RefCell<FakeNode> = RefCell::new(FakeNode::default());
}

/// Runs `f` on this thread's fake node, to set it up or read it.
///
/// ```
/// let term = tenure_sdk::fake::with(|n| {
///     n.lead(8);
///     n.term
/// });
/// assert_eq!(term, 8);
/// ```
pub fn with<T>(f: impl FnOnce(&mut FakeNode) -> T) -> T {
    NODE.with_borrow_mut(f)
}

/// Puts this thread's fake node back to its defaults (follower `n1` of
/// cluster `test`, term 0, nothing sent, scheduled or logged).
///
/// ```
/// tenure_sdk::fake::with(|n| n.lead(2));
/// tenure_sdk::fake::reset();
/// assert_eq!(tenure_sdk::node::term(), 0);
/// ```
pub fn reset() {
    with(|n| *n = FakeNode::default());
}

// ---- the leader-api, answered by the fake (used by `crate::node`) ----

pub(crate) fn is_leader() -> bool {
    with(|n| n.role == Role::Leader)
}

pub(crate) fn leader() -> Option<String> {
    with(|n| n.leader.clone())
}

pub(crate) fn role() -> Role {
    with(|n| n.role)
}

pub(crate) fn term() -> Term {
    with(|n| n.term)
}

pub(crate) fn lease_remaining_ns() -> Option<u64> {
    with(|n| {
        let lease = n.lease.filter(|_| n.role == Role::Leader)?;
        u64::try_from(lease.as_nanos()).ok()
    })
}

pub(crate) fn fencing_token() -> Option<Term> {
    lease_remaining_ns().map(|_| term())
}

pub(crate) fn transfer_leadership(to: &str) -> Result<(), String> {
    with(|n| {
        if n.role != Role::Leader {
            return Err(format!("{} is not the leader", n.node_id));
        }
        if to == n.node_id {
            return Err(format!("{to} already leads"));
        }
        if !n.peers.iter().any(|p| p == to) {
            return Err(format!("{to} has not been heard from lately"));
        }
        n.transfers.push(to.to_string());
        Ok(())
    })
}

pub(crate) fn this_node() -> String {
    with(|n| n.node_id.clone())
}

pub(crate) fn cluster_id() -> String {
    with(|n| n.cluster_id.clone())
}

pub(crate) fn peers() -> Vec<String> {
    with(|n| n.peers.clone())
}

pub(crate) fn send(peer: &str, payload: &[u8]) {
    with(|n| n.sent.push((peer.to_string(), payload.to_vec())));
}

pub(crate) fn broadcast(payload: &[u8]) {
    with(|n| n.broadcasts.push(payload.to_vec()));
}

pub(crate) fn schedule(after_ms: u64, tag: &str) -> u64 {
    with(|n| {
        let id = n.next_wakeup;
        n.next_wakeup += 1;
        n.scheduled.push(Wakeup {
            id: WakeupId::from_raw(id),
            after: Duration::from_millis(after_ms),
            tag: tag.to_string(),
        });
        id
    })
}

pub(crate) fn cancel_schedule(id: u64) {
    with(|n| n.scheduled.retain(|w| w.id.as_raw() != id));
}

pub(crate) fn log(level: Level, message: &str) {
    with(|n| n.logs.push((level, message.to_string())));
}

/// A fake request's outcome, until taken.
pub(crate) type PendingResponse = Option<Result<crate::http::Response, crate::http::HttpError>>;

pub(crate) fn http_start(
    request: crate::http::Request,
) -> Result<PendingResponse, crate::http::HttpError> {
    crate::http::split_url(&request.url)?;
    with(|n| {
        n.http_requests.push(request);
        Ok(Some(
            n.http_responses
                .pop_front()
                .unwrap_or(Err(crate::http::HttpError::Denied)),
        ))
    })
}

pub(crate) fn http_wait(
    pending: &mut PendingResponse,
    _most: Duration,
) -> Option<Result<crate::http::Response, crate::http::HttpError>> {
    Some(pending.take().unwrap_or_else(|| {
        Err(crate::http::HttpError::Failed(
            "the response was taken already".into(),
        ))
    }))
}
