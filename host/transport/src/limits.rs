//! What bounds the listener under attack: admission of new connections,
//! one connection per node, and a frame rate per connection.
//!
//! - [`Admission`] counts accepted connections, and among them those still
//!   in their handshake, in total and per source address; the accept loop
//!   asks it before starting a connection's task and closes the connection
//!   at once if a cap is reached. An attacker that opens connections and
//!   sits on them can hold at most `max_pending` of them for at most
//!   `handshake_timeout` each, and a single address at most
//!   `max_pending_per_ip`, so the node's file descriptors stay bounded and
//!   established peers are never touched.
//! - [`NodeConnections`] keeps at most `max_connections_per_node`
//!   authenticated connections per claimed node id, closing the *oldest*
//!   when a newer one is introduced. A real peer has one connection; after
//!   a network blip its old one may linger half-open here for a while, and
//!   keeping the newest means its reconnection always wins.
//! - [`FrameRate`] is a token bucket per connection: `max_frames_per_sec`
//!   refilled continuously, up to `frame_burst`.
//!
//! Source addresses are grouped for `max_pending_per_ip`: an IPv4 address
//! (or an IPv4-mapped IPv6 one) counts alone, an IPv6 address by its /64,
//! because one host usually has a whole /64 to draw from.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::shared::lock;

/// The caps an [`Admission`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmissionLimits {
    pub max_connections: usize,
    pub max_pending: usize,
    pub max_pending_per_ip: usize,
}

/// Why a new connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// `max_connections` connections are open.
    Connections,
    /// `max_pending` connections are in their handshake.
    Pending,
    /// `max_pending_per_ip` connections from this address are.
    PendingPerIp,
}

impl Full {
    pub fn describe(self) -> &'static str {
        match self {
            Full::Connections => "max_connections reached",
            Full::Pending => "max_pending handshakes reached",
            Full::PendingPerIp => "max_pending_per_ip handshakes from this address reached",
        }
    }
}

/// The accepted connections now open, and those still in their handshake.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: AdmissionLimits,
    open: usize,
    pending: usize,
    pending_by_source: HashMap<IpAddr, usize>,
}

/// What `max_pending_per_ip` counts a source address as (see the module
/// documentation).
fn source_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Admission {
        Admission {
            limits,
            open: 0,
            pending: 0,
            pending_by_source: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip` as open and pending, unless a cap
    /// is reached.
    fn admit(&mut self, ip: IpAddr) -> Result<(), Full> {
        let group = source_group(ip);
        let from_source = self.pending_by_source.get(&group).copied().unwrap_or(0);
        if self.open >= self.limits.max_connections {
            return Err(Full::Connections);
        }
        if self.pending >= self.limits.max_pending {
            return Err(Full::Pending);
        }
        if from_source >= self.limits.max_pending_per_ip {
            return Err(Full::PendingPerIp);
        }
        self.open += 1;
        self.pending += 1;
        self.pending_by_source.insert(group, from_source + 1);
        Ok(())
    }

    fn end_pending(&mut self, ip: IpAddr) {
        let group = source_group(ip);
        self.pending = self.pending.saturating_sub(1);
        if let Some(n) = self.pending_by_source.get_mut(&group) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending_by_source.remove(&group);
            }
        }
    }

    /// Connections open now, and how many of them are in their handshake.
    pub fn counts(&self) -> (usize, usize) {
        (self.open, self.pending)
    }
}

/// One admitted connection's place in the [`Admission`], given back when
/// it drops.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<std::sync::Mutex<Admission>>,
    ip: IpAddr,
    pending: bool,
}

impl Ticket {
    /// Admits a connection from `ip`, or says which cap is reached.
    pub fn admit(admission: &Arc<std::sync::Mutex<Admission>>, ip: IpAddr) -> Result<Ticket, Full> {
        lock(admission).admit(ip)?;
        Ok(Ticket {
            admission: Arc::clone(admission),
            ip,
            pending: true,
        })
    }

    /// The connection finished its handshake: it no longer counts as
    /// pending (it still counts as open).
    pub fn authenticated(&mut self) {
        if std::mem::replace(&mut self.pending, false) {
            lock(&self.admission).end_pending(self.ip);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut admission = lock(&self.admission);
        if self.pending {
            admission.end_pending(self.ip);
        }
        admission.open = admission.open.saturating_sub(1);
    }
}

/// The authenticated connections of each node id, oldest first, each with
/// the token that closes it.
#[derive(Debug, Default)]
pub(crate) struct NodeConnections {
    next_id: u64,
    by_node: HashMap<String, VecDeque<(u64, CancellationToken)>>,
}

impl NodeConnections {
    /// Registers a new connection of `node` and returns its id and token;
    /// the tokens of the oldest connections beyond `max` are cancelled
    /// (those connections close themselves).
    pub fn open(&mut self, node: &str, max: usize) -> (u64, CancellationToken) {
        let id = self.next_id;
        self.next_id += 1;
        let token = CancellationToken::new();
        let list = self.by_node.entry(node.to_owned()).or_default();
        list.push_back((id, token.clone()));
        while list.len() > max.max(1) {
            if let Some((_, older)) = list.pop_front() {
                older.cancel();
            }
        }
        (id, token)
    }

    /// Connection `id` of `node` closed.
    pub fn close(&mut self, node: &str, id: u64) {
        if let Some(list) = self.by_node.get_mut(node) {
            list.retain(|(other, _)| *other != id);
            if list.is_empty() {
                self.by_node.remove(node);
            }
        }
    }
}

/// A token bucket: `rate` frames a second on average, at most `burst` at
/// once.
#[derive(Debug, Clone)]
pub(crate) struct FrameRate {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl FrameRate {
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> FrameRate {
        FrameRate {
            rate: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes a token for one frame arriving at `now`; false if the bucket
    /// is empty (the peer is over its rate).
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Lets a warning through at most once per `every`, so a flood of refused
/// connections does not become a flood of log lines (each is still
/// counted).
#[derive(Debug)]
pub(crate) struct LogLimit {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    pub fn new(every: Duration) -> LogLimit {
        LogLimit {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` if a warning may be logged now, `n` being how many were
    /// held back since the last one.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn admission_caps_pending_per_source_and_in_total() {
        let admission = Arc::new(Mutex::new(Admission::new(AdmissionLimits {
            max_connections: 5,
            max_pending: 3,
            max_pending_per_ip: 2,
        })));
        let mut a1 = Ticket::admit(&admission, ip("10.0.0.1")).unwrap();
        let _a2 = Ticket::admit(&admission, ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(
            Ticket::admit(&admission, ip("10.0.0.1")).unwrap_err(),
            Full::PendingPerIp
        );
        let _b1 = Ticket::admit(&admission, ip("10.0.0.2")).unwrap();
        assert_eq!(
            Ticket::admit(&admission, ip("10.0.0.3")).unwrap_err(),
            Full::Pending
        );
        // One finishes its handshake: a place frees, for its source too.
        a1.authenticated();
        a1.authenticated();
        assert_eq!(lock(&admission).counts(), (3, 2));
        let _a3 = Ticket::admit(&admission, ip("10.0.0.1")).unwrap();
        a1.authenticated();
        let mut c = Ticket::admit(&admission, ip("10.0.0.9"));
        assert_eq!(c.as_ref().unwrap_err(), &Full::Pending);
        drop(_a3);
        c = Ticket::admit(&admission, ip("10.0.0.9"));
        let mut c = c.unwrap();
        c.authenticated();
        let _d = Ticket::admit(&admission, ip("10.0.0.8")).unwrap();
        assert_eq!(lock(&admission).counts(), (5, 3));
        assert_eq!(
            Ticket::admit(&admission, ip("10.0.0.7")).unwrap_err(),
            Full::Connections
        );
        drop((a1, c, _d, _a2, _b1));
        assert_eq!(lock(&admission).counts(), (0, 0));
        assert!(lock(&admission).pending_by_source.is_empty());
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        assert_eq!(
            source_group(ip("2001:db8:1:2:aaaa::1")),
            source_group(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            source_group(ip("2001:db8:1:2::1")),
            source_group(ip("2001:db8:1:3::1"))
        );
        assert_eq!(source_group(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn the_newest_connections_of_a_node_are_kept() {
        let mut nodes = NodeConnections::default();
        let (first, first_token) = nodes.open("n1", 1);
        let (_, other_node) = nodes.open("n2", 1);
        let (second, second_token) = nodes.open("n1", 1);
        assert!(first_token.is_cancelled(), "the older one is closed");
        assert!(!second_token.is_cancelled() && !other_node.is_cancelled());
        nodes.close("n1", first);
        let (_, third_token) = nodes.open("n1", 2);
        assert!(!second_token.is_cancelled() && !third_token.is_cancelled());
        nodes.close("n1", second);
        assert_eq!(nodes.by_node["n1"].len(), 1);
    }

    #[test]
    fn the_frame_rate_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut rate = FrameRate::new(100, 10, start);
        assert_eq!((0..20).filter(|_| rate.allow(start)).count(), 10);
        // 100 ms later: 10 more tokens.
        let later = start + Duration::from_millis(100);
        assert_eq!((0..20).filter(|_| rate.allow(later)).count(), 10);
        // Never more than the burst, however long the pause.
        let much_later = later + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| rate.allow(much_later)).count(), 10);
    }

    #[test]
    fn warnings_are_limited() {
        let start = Instant::now();
        let mut limit = LogLimit::new(Duration::from_secs(1));
        assert_eq!(limit.allow(start), Some(0));
        assert_eq!(limit.allow(start), None);
        assert_eq!(limit.allow(start + Duration::from_millis(500)), None);
        assert_eq!(limit.allow(start + Duration::from_secs(1)), Some(2));
    }
}
