//! What an application sees of a node's leadership: [`Leadership`], kept
//! current by the node task and handed out through a `tokio::sync::watch`
//! channel (embedders, `GET /leader`) and a numbered change stream
//! (`GET /watch`).
//!
//! The lease an application may rely on is the protocol's lease less a
//! *guard* (`[protocol] lease-guard-ms`): the node revokes [`Leadership::
//! fencing_token`] that long before the protocol's lease would lapse, so
//! work that stops when it is revoked has stopped while no other leader
//! can exist yet. The node arms a timer for that moment; a fresh majority
//! acknowledgement moves it on, and no acknowledgement lets it fire.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::bindings::types::{NodeStatus, Role};

/// How many changes `GET /watch` keeps for a slow subscriber before it is
/// told it missed some.
pub const CHANGES_KEPT: usize = 256;

/// The fencing token a node whose protocol reports `status` may hand out
/// at `now_ns` (the protocol's clock), revoking it `guard_ns` before the
/// lease lapses — with until when it is good — or `None`. The one rule
/// behind [`Leadership::fencing_token`], in the protocol's nanoseconds so
/// the simulator can check it in virtual time.
///
/// ```
/// # use tenure_host::node::leadership::fencing_token_at;
/// # fn demo(s: tenure_host::types::NodeStatus) {
/// // A leader whose lease lapses at 135 ms, with a 20 ms guard:
/// // good until 115 ms, then revoked.
/// if let Some((token, until_ns)) = fencing_token_at(&s, 20_000_000, 100_000_000) {
///     assert!(until_ns <= 115_000_000 && token == s.term);
/// }
/// # }
/// ```
pub fn fencing_token_at(status: &NodeStatus, guard_ns: u64, now_ns: u64) -> Option<(u64, u64)> {
    if status.role != Role::Leader {
        return None;
    }
    let until = status.lease_expires_ns?.checked_sub(guard_ns)?;
    (until > now_ns).then_some((status.term, until))
}

/// This node's leadership as an application sees it.
///
/// ```
/// # use tenure_host::node::leadership::Leadership;
/// fn act(now: &Leadership) {
///     match now.fencing_token {
///         // Attach the token to every write; the store refuses older ones.
///         Some(token) => println!("leading term {}, token {token}", now.term),
///         None => println!("following {:?}", now.leader),
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Leadership {
    /// This node's id.
    pub node: String,
    /// `"leader"`, `"candidate"` or `"follower"`.
    pub role: &'static str,
    /// The node's current term.
    pub term: u64,
    /// The leader it follows (itself when leading), if it knows one.
    pub leader: Option<String>,
    /// The term, while this node leads and holds its lease (less the
    /// guard): attach it to what leader-only work writes. `None` the
    /// moment that stops being true.
    pub fencing_token: Option<u64>,
    /// Until when the fencing token is good, if there is one: the guarded
    /// lease deadline, on this process's monotonic clock.
    #[serde(skip)]
    pub valid_until: Option<Instant>,
    /// sha256 of the behaviour plugin running, if any (a hot swap is a
    /// change).
    pub plugin: Option<String>,
}

impl Leadership {
    /// The leadership a node whose protocol reports `status` has at `now`:
    /// `origin` is the protocol clock's zero, `guard` how long before the
    /// lease lapses the token is revoked.
    pub fn of(status: &NodeStatus, origin: Instant, guard: Duration, now: Instant) -> Leadership {
        let role = crate::protocol::role_name(status.role);
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let token = fencing_token_at(status, ns(guard), ns(now.saturating_duration_since(origin)));
        Leadership {
            node: status.node_id.clone(),
            role,
            term: status.term,
            leader: status.leader.clone(),
            fencing_token: token.map(|(term, _)| term),
            valid_until: token.map(|(_, until_ns)| origin + Duration::from_nanos(until_ns)),
            plugin: None,
        }
    }

    /// The same leadership, with `plugin` (its sha256) running.
    pub fn with_plugin(mut self, plugin: Option<String>) -> Leadership {
        self.plugin = plugin;
        self
    }

    /// Whether `other` says the same but for how long the token is good
    /// (which moves with every acknowledged heartbeat): a change worth an
    /// event on `GET /watch`.
    pub fn same_state(&self, other: &Leadership) -> bool {
        (
            &self.node,
            self.role,
            self.term,
            &self.leader,
            self.fencing_token,
            &self.plugin,
        ) == (
            &other.node,
            other.role,
            other.term,
            &other.leader,
            other.fencing_token,
            &other.plugin,
        )
    }

    /// Milliseconds the fencing token is still good for, at `now`.
    pub fn valid_for_ms(&self, now: Instant) -> Option<f64> {
        self.valid_until
            .map(|until| until.saturating_duration_since(now).as_secs_f64() * 1e3)
    }
}

/// One change on the stream `GET /watch` serves: numbered from 1, so a
/// subscriber can tell it saw every one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadershipChange {
    /// 1 for the first state the node published, then one more per change.
    pub seq: u64,
    /// The state after the change.
    #[serde(flatten)]
    pub leadership: Leadership,
}

/// The node task's side: publishes each new leadership to the watch
/// channel, and each change of state to the change stream.
pub struct Publisher {
    current: watch::Sender<Leadership>,
    /// The latest change with its number (read with the stream's
    /// subscription, so the two agree).
    latest: watch::Sender<LeadershipChange>,
    changes: broadcast::Sender<LeadershipChange>,
}

/// What readers subscribe to: the current leadership and the changes.
#[derive(Clone)]
pub struct Subscriptions {
    current: watch::Receiver<Leadership>,
    latest: watch::Receiver<LeadershipChange>,
    changes: broadcast::Sender<LeadershipChange>,
}

impl Publisher {
    /// A publisher starting at `first` (change number 1), and what
    /// readers subscribe to.
    pub fn new(first: Leadership) -> (Publisher, Subscriptions) {
        let (current, current_rx) = watch::channel(first.clone());
        let (latest, latest_rx) = watch::channel(LeadershipChange {
            seq: 1,
            leadership: first,
        });
        let (changes, _) = broadcast::channel(CHANGES_KEPT);
        let subscriptions = Subscriptions {
            current: current_rx,
            latest: latest_rx,
            changes: changes.clone(),
        };
        let publisher = Publisher {
            current,
            latest,
            changes,
        };
        (publisher, subscriptions)
    }

    /// Publishes `next` if it differs from the current leadership; a change
    /// of state (not just of `valid_until`) also goes on the change stream
    /// with the next number.
    pub fn publish(&mut self, next: Leadership) {
        let mut changed_state = false;
        self.current.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            changed_state = !current.same_state(&next);
            *current = next.clone();
            true
        });
        if changed_state {
            let change = LeadershipChange {
                seq: self.latest.borrow().seq + 1,
                leadership: next,
            };
            self.latest.send_replace(change.clone());
            // No subscriber is no error: the stream is for whoever listens.
            let _ = self.changes.send(change);
        }
    }

    /// The leadership published last.
    pub fn current(&self) -> Leadership {
        self.current.borrow().clone()
    }
}

impl Subscriptions {
    /// A receiver of the node's leadership, starting with the current one
    /// (see `tokio::sync::watch`: a reader always ends on the latest).
    pub fn watch(&self) -> watch::Receiver<Leadership> {
        self.current.clone()
    }

    /// The latest change with its number, and a receiver of every change
    /// after it, for `GET /watch`. The receiver may repeat the latest
    /// change (skip what is not newer by number); one that falls more than
    /// [`CHANGES_KEPT`] changes behind is told how many it missed.
    pub fn changes(&self) -> (LeadershipChange, broadcast::Receiver<LeadershipChange>) {
        // Subscribe first, then read: a change between the two shows up
        // in both, never in neither.
        let receiver = self.changes.subscribe();
        let latest = self.latest.borrow().clone();
        (latest, receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(role: Role, term: u64, lease_ns: Option<u64>) -> NodeStatus {
        NodeStatus {
            node_id: "n1".into(),
            cluster_id: "c".into(),
            role,
            term,
            leader: (role == Role::Leader).then(|| "n1".to_string()),
            voted_for: None,
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            epoch: 0,
            alive_peers: Vec::new(),
            quorum: 2,
            ignored_messages: 0,
            lease_expires_ns: lease_ns,
            data_id: 0,
            abstaining: false,
            confirmed: true,
        }
    }

    #[test]
    fn the_token_is_good_until_the_lease_less_the_guard() {
        let origin = Instant::now();
        let guard = Duration::from_millis(20);
        let s = status(Role::Leader, 4, Some(135_000_000));
        let early = Leadership::of(&s, origin, guard, origin + Duration::from_millis(100));
        assert_eq!(early.fencing_token, Some(4));
        assert_eq!(early.valid_until, Some(origin + Duration::from_millis(115)));
        // Inside the guard: revoked, though the protocol's lease holds.
        let late = Leadership::of(&s, origin, guard, origin + Duration::from_millis(116));
        assert_eq!(late.fencing_token, None);
        assert!(!early.same_state(&late));
        // No lease (right after an election): no token.
        let fresh = Leadership::of(&status(Role::Leader, 5, None), origin, guard, origin);
        assert_eq!((fresh.role, fresh.fencing_token), ("leader", None));
        // A follower never has one.
        let follower = Leadership::of(
            &status(Role::Follower, 5, Some(u64::MAX / 2)),
            origin,
            guard,
            origin,
        );
        assert_eq!(follower.fencing_token, None);
    }

    #[test]
    fn changes_are_numbered_and_lease_extensions_are_no_change() {
        let origin = Instant::now();
        let guard = Duration::from_millis(20);
        let at = |ms| origin + Duration::from_millis(ms);
        let follower = Leadership::of(&status(Role::Follower, 1, None), origin, guard, at(0));
        let (mut publisher, subs) = Publisher::new(follower);
        let (first, mut changes) = subs.changes();
        assert_eq!(first.seq, 1);
        let leading = |lease_ms: u64, now: u64| {
            Leadership::of(
                &status(Role::Leader, 2, Some(lease_ms * 1_000_000)),
                origin,
                guard,
                at(now),
            )
        };
        publisher.publish(leading(135, 0));
        publisher.publish(leading(185, 50)); // the lease moved on
        let stepped_down = Leadership::of(&status(Role::Follower, 3, None), origin, guard, at(60));
        publisher.publish(stepped_down);
        let seqs: Vec<u64> = std::iter::from_fn(|| changes.try_recv().ok())
            .map(|c| c.seq)
            .collect();
        assert_eq!(seqs, [2, 3], "the extension is no event");
        assert_eq!(
            subs.watch().borrow().term,
            3,
            "the watch ends on the latest"
        );
    }
}
