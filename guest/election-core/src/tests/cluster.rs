//! A small simulated cluster for the safety tests: a shared clock, instant
//! FIFO delivery, cut links, crashes, a per-message drop rule, and a
//! watch for two leaders whose leases overlap.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::TestEnv;
use crate::election::Election;
use crate::options::Options;
use crate::types::{Action, PersistedState, Role, Term, TimerId};
use crate::wire::{Body, Message};

/// Decides whether a message from `.0` to `.1` is lost.
pub(super) type DropRule = fn(&str, &str, &Body) -> bool;

pub(super) struct Cluster {
    pub nodes: BTreeMap<String, (Election, TestEnv)>,
    timers: BTreeMap<String, BTreeMap<TimerId, u64>>,
    queue: VecDeque<(String, String, Vec<u8>)>,
    pub now: u64,
    cut: BTreeSet<(String, String)>,
    down: BTreeSet<String>,
    pub drop: DropRule,
    /// Every moment two leaders of different terms coexisted while the
    /// older one still held an unexpired lease.
    pub overlaps: Vec<String>,
    /// Each node's options, for restarts.
    options: BTreeMap<String, Options>,
    /// Each node's latest persisted state, as a restart with an intact
    /// disk would read it.
    pub saved: BTreeMap<String, PersistedState>,
    /// The vote each node id persisted for each term, across restarts.
    votes: BTreeMap<(String, Term), String>,
    /// Every leader seen for each term, across restarts.
    elected: BTreeMap<Term, BTreeSet<String>>,
    /// Every time one node id persisted a second, different vote in a term
    /// (which a node that lost its disk could do).
    pub double_votes: Vec<String>,
    /// Restarts so far: each gets fresh randomness.
    restarts: u64,
}

fn keep_all(_: &str, _: &str, _: &Body) -> bool {
    false
}

impl Cluster {
    pub fn new(options: Vec<Options>, seed: u64) -> Cluster {
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            timers: BTreeMap::new(),
            queue: VecDeque::new(),
            now: 0,
            cut: BTreeSet::new(),
            down: BTreeSet::new(),
            drop: keep_all,
            overlaps: Vec::new(),
            options: BTreeMap::new(),
            saved: BTreeMap::new(),
            votes: BTreeMap::new(),
            elected: BTreeMap::new(),
            double_votes: Vec::new(),
            restarts: 0,
        };
        for (i, o) in options.into_iter().enumerate() {
            let id = o.node_id.clone();
            c.options.insert(id.clone(), o.clone());
            let mut env = TestEnv::new(seed * 100 + i as u64);
            let mut e = Election::start(o, None, &mut env).expect("valid options");
            let actions = e.take_actions();
            c.nodes.insert(id.clone(), (e, env));
            c.apply(&id, actions);
        }
        c
    }

    fn apply(&mut self, id: &str, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, payload } => self.queue.push_back((id.into(), to, payload)),
                Action::SetTimer { id: t, after_ns } => {
                    self.timers
                        .entry(id.into())
                        .or_default()
                        .insert(t, self.now + after_ns);
                }
                Action::CancelTimer { id: t } => {
                    self.timers.entry(id.into()).or_default().remove(&t);
                }
                Action::Persist(state) => {
                    if let Some(vote) = &state.voted_for {
                        let key = (id.to_string(), state.term);
                        match self.votes.get(&key) {
                            Some(earlier) if earlier != vote => self.double_votes.push(format!(
                                "{id} voted for {earlier} and then for {vote} in term {}",
                                state.term
                            )),
                            Some(_) => {}
                            None => {
                                self.votes.insert(key, vote.clone());
                            }
                        }
                    }
                    self.saved.insert(id.into(), state);
                }
                _ => {}
            }
        }
    }

    /// Calls into one node at the current time and carries out its actions.
    pub fn with<R>(&mut self, id: &str, f: impl FnOnce(&mut Election, &mut TestEnv) -> R) -> R {
        let (e, env) = self.nodes.get_mut(id).expect("node exists");
        env.now = self.now;
        let r = f(e, env);
        let actions = e.take_actions();
        self.apply(id, actions);
        self.watch();
        r
    }

    /// Delivers every queued message (and whatever they cause) without
    /// letting time pass.
    pub fn deliver_all(&mut self) {
        while let Some((from, to, payload)) = self.queue.pop_front() {
            if self.down.contains(&from)
                || self.down.contains(&to)
                || self.cut.contains(&(from.clone(), to.clone()))
            {
                continue;
            }
            if let Ok(m) = Message::decode(&payload)
                && (self.drop)(&from, &to, &m.body)
            {
                continue;
            }
            if let Some((e, env)) = self.nodes.get_mut(&to) {
                env.now = self.now;
                e.on_message(&from, &payload, env);
                let actions = e.take_actions();
                self.apply(&to, actions);
                self.watch();
            }
        }
    }

    /// Runs, message by message and timer by timer, until `until`.
    pub fn run_until(&mut self, until: u64) {
        loop {
            self.deliver_all();
            let due = self
                .timers
                .iter()
                .filter(|(n, _)| !self.down.contains(*n))
                .flat_map(|(n, ts)| ts.iter().map(move |(t, at)| (*at, n.clone(), *t)))
                .min();
            match due {
                Some((at, node, t)) if at <= until => {
                    self.now = self.now.max(at);
                    self.timers.entry(node.clone()).or_default().remove(&t);
                    self.with(&node, |e, env| e.on_timer(t, env));
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, ns: u64) {
        self.run_until(self.now + ns);
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: &str) {
        for other in self.nodes.keys() {
            if other != id {
                self.cut.insert((id.to_string(), other.clone()));
                self.cut.insert((other.clone(), id.to_string()));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Stops `id` for good: its timers and messages go nowhere.
    pub fn crash(&mut self, id: &str) {
        self.down.insert(id.to_string());
    }

    /// Restarts `id` now (up again if it had crashed), from `state`:
    /// `self.saved[id]` for an intact disk, `None` for a lost one. Its old
    /// timers are gone; messages queued for it arrive at the new process.
    pub fn restart(&mut self, id: &str, state: Option<PersistedState>) {
        self.restarts += 1;
        self.down.remove(id);
        self.timers.remove(id);
        let options = self.options.get(id).expect("node exists").clone();
        let mut env = TestEnv::new(0x5eed_0000 + self.restarts);
        env.now = self.now;
        let mut e = Election::start(options, state, &mut env).expect("valid options");
        let actions = e.take_actions();
        self.nodes.insert(id.into(), (e, env));
        self.apply(id, actions);
        self.watch();
    }

    /// Cuts the links between `a` and `b`, both ways.
    pub fn cut_between(&mut self, a: &str, b: &str) {
        self.cut.insert((a.to_string(), b.to_string()));
        self.cut.insert((b.to_string(), a.to_string()));
    }

    /// Every term that had more than one leader, with those leaders.
    pub fn split_terms(&self) -> Vec<(Term, BTreeSet<String>)> {
        self.elected
            .iter()
            .filter(|(_, leaders)| leaders.len() > 1)
            .map(|(term, leaders)| (*term, leaders.clone()))
            .collect()
    }

    /// The running leaders, with their terms.
    pub fn leaders(&self) -> Vec<(String, Term)> {
        self.nodes
            .iter()
            .filter(|(id, _)| !self.down.contains(*id))
            .map(|(_, (e, _))| e.status())
            .filter(|s| s.role == Role::Leader)
            .map(|s| (s.node_id, s.term))
            .collect()
    }

    /// The one running leader, if there is exactly one.
    pub fn leader(&self) -> Option<(String, Term)> {
        match &self.leaders()[..] {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    pub fn status(&self, id: &str) -> crate::types::Status {
        self.nodes.get(id).expect("node exists").0.status()
    }

    /// Records any leader that holds an unexpired lease while another
    /// leader, of a later term, exists.
    fn watch(&mut self) {
        let now = self.now;
        let leaders: Vec<_> = self
            .nodes
            .iter()
            .filter(|(id, _)| !self.down.contains(*id))
            .map(|(_, (e, _))| (e.status(), e.lease_expires_ns()))
            .filter(|(s, _)| s.role == Role::Leader)
            .collect();
        for (s, _) in &leaders {
            self.elected
                .entry(s.term)
                .or_default()
                .insert(s.node_id.clone());
        }
        for (old, lease) in &leaders {
            for (new, _) in &leaders {
                if let Some(until) = lease
                    && new.term > old.term
                    && *until > now
                {
                    self.overlaps.push(format!(
                        "at {now} ns {} leads term {} with a lease until {until} ns, and {} leads term {}",
                        old.node_id, old.term, new.node_id, new.term
                    ));
                }
            }
        }
    }
}
