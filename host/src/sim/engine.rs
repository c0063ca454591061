//! The engine: booting nodes, calling their components, carrying out
//! their effects, delivering what is due, and the trace.

use super::*;

impl Simulation {
    pub(super) fn boot(&mut self, node: NodeIndex) -> anyhow::Result<()> {
        let at = self.now_ns();
        let n = &mut self.nodes[node];
        let env = SimEnvironment {
            shared: self.shared.clone(),
            rng: SimRng::derive(self.seed, (node as u64) << 32 | n.incarnation),
            clock: n.clock.clone(),
        };
        let instance = self.component.instantiate(&n.spec.id, Box::new(env))?;
        let (plugin_clock, clock_handle) = match n.spec.plugin {
            Some(_) => {
                let (clock, handle) = crate::plugin::ViewClock::manual();
                (Some(clock), Some(handle))
            }
            None => (None, None),
        };
        let settings = CoreSettings {
            fast_failover: true,
            plugin_clock,
        };
        let (core, outputs) =
            NodeCore::start(instance, n.spec.options(), n.disk.as_ref(), settings)
                .with_context(|| format!("starting node {}", n.spec.id))?;
        let status = core.status().clone();
        n.core = Some(core);
        self.stats.calls += 1;
        let what = if n.incarnation == 0 {
            "started"
        } else {
            "restarted"
        };
        self.note(node, &format!("{what} at term {}", status.term));
        self.checker.started(at, node, &status);
        if let Some(handle) = clock_handle {
            self.start_plugin(node, &status, handle)?;
        }
        self.perform(node, outputs);
        Ok(())
    }

    /// Calls into a running node's protocol and carries out the outputs;
    /// a trap is a violation and crashes the node.
    pub(super) fn call(
        &mut self,
        node: NodeIndex,
        f: impl FnOnce(&mut NodeCore) -> anyhow::Result<Vec<Output>>,
    ) -> anyhow::Result<()> {
        self.stats.calls += 1;
        self.drive(node, f)
    }

    /// Like [`Simulation::call`], for inputs that are not (or not always)
    /// protocol calls: a plugin's outputs.
    pub(super) fn drive(
        &mut self,
        node: NodeIndex,
        f: impl FnOnce(&mut NodeCore) -> anyhow::Result<Vec<Output>>,
    ) -> anyhow::Result<()> {
        let Some(n) = self.nodes.get_mut(node) else {
            bail!("no node {node}");
        };
        let Some(core) = n.core.as_mut() else {
            bail!("node {} is not running", n.spec.id);
        };
        match f(core) {
            Ok(outputs) => self.perform(node, outputs),
            Err(error) => self.trapped(node, &error),
        }
        Ok(())
    }

    /// The node's protocol trapped: a violation, and the node crashes.
    pub(super) fn trapped(&mut self, node: NodeIndex, error: &anyhow::Error) {
        let what = format!("{} trapped: {error:#}", self.id(node));
        let at = self.now_ns();
        self.checker.violate(at, what);
        self.crash(node);
    }

    pub(super) fn dispatch(&mut self, what: Pending) {
        match what {
            Pending::Deliver {
                to,
                from,
                lane,
                payload,
            } => {
                if !self.is_up(to) || !self.partition.connected(from, to) {
                    self.stats.dropped += 1;
                    return;
                }
                self.stats.delivered += 1;
                self.hash(&payload);
                let sender = self.nodes[from].spec.id.clone();
                // Fails only for a crashed node, checked above.
                let _ = match lane {
                    Lane::Protocol => self.call(to, |c| c.on_message(&sender, lane, payload)),
                    Lane::Plugin => self.drive(to, |c| c.on_message(&sender, lane, payload)),
                };
            }
            Pending::PersistRetry { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation
                    && self.nodes[node].durability.quiet()
                {
                    self.retry_persist(node);
                }
            }
            Pending::PluginWake { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation {
                    self.plugin_wake(node);
                }
            }
            Pending::Unreachable {
                node,
                incarnation,
                peer,
                peer_incarnation,
            } => {
                // Only if the peer is still down (a restart reconnects).
                let dead = self.nodes[peer].incarnation == peer_incarnation && !self.is_up(peer);
                if self.nodes[node].incarnation == incarnation && dead {
                    let peer_id = self.nodes[peer].spec.id.clone();
                    let _ = self.call(node, |c| c.peer_unreachable(&peer_id));
                }
            }
            Pending::Timer {
                node,
                incarnation,
                id,
            } => {
                let n = &mut self.nodes[node];
                if n.incarnation != incarnation || !n.timers.remove(&id) {
                    return;
                }
                self.stats.timers_fired += 1;
                self.hash(&id.to_le_bytes());
                let _ = self.call(node, |c| c.on_timer(id));
            }
        }
    }

    /// Carries out a node's outputs in order, in virtual time. Stops
    /// early if the node crashes on the way (around a persist, or a trap
    /// while its plugin's requests are carried out).
    pub(super) fn perform(&mut self, node: NodeIndex, outputs: Vec<Output>) {
        let incarnation = self.nodes[node].incarnation;
        for output in outputs {
            if self.nodes[node].incarnation != incarnation {
                return;
            }
            match output {
                // Quiet since a save failed: nothing that may depend on
                // the unsaved state leaves (see `node::durability`).
                Output::Send {
                    lane: Lane::Protocol,
                    ..
                } if self.nodes[node].durability.quiet() => {
                    self.nodes[node].durability.withhold();
                }
                Output::Send { to, lane, payload } => self.send(node, &to, lane, payload),
                Output::SetTimer { id, after_ns } => {
                    let after_ns = read_clock(&self.nodes[node].clock).span(after_ns);
                    let at_ns = self.now_ns().saturating_add(after_ns);
                    let n = &mut self.nodes[node];
                    n.timers.insert(id);
                    self.schedule(
                        at_ns,
                        Pending::Timer {
                            node,
                            incarnation,
                            id,
                        },
                    );
                }
                Output::CancelTimer { id } => {
                    self.nodes[node].timers.remove(&id);
                }
                Output::Event(event) => self.on_event(node, event),
                Output::ToPlugin(input) => self.plugin_input(node, input),
                Output::Persist(state) if self.nodes[node].disk_full => {
                    self.save_failed(node, state);
                }
                Output::Persist(state) => {
                    // A crash exactly around the write: before it (nothing
                    // saved, nothing sent) or after it (saved, but none of
                    // the messages that depend on it sent).
                    if self.rng.chance(self.crash_mid_call) {
                        let after = self.rng.chance(0.5);
                        if after {
                            self.save(node, state);
                        }
                        self.stats.mid_call_crashes += 1;
                        let when = if after { "after" } else { "before" };
                        self.note(node, &format!("crash {when} persisting"));
                        self.crash(node);
                        return;
                    }
                    if self.nodes[node].durability.quiet() {
                        // Room again before the retry: this newest state
                        // is saved, and the node may speak.
                        let now = self.now_ns();
                        let n = &mut self.nodes[node];
                        n.durability.persist(state.clone(), now, |_| Ok(()));
                    }
                    self.save(node, state);
                }
                Output::ProtocolLog { level, message } => match level {
                    LogLevel::Warn => self.note(node, &format!("warn: {message}")),
                    LogLevel::Error => self.note(node, &format!("error: {message}")),
                    _ => {}
                },
                Output::PluginLog { level, message } => {
                    if !matches!(level, LogLevel::Trace | LogLevel::Debug) {
                        self.note(node, &format!("plugin: {message}"));
                    }
                }
                Output::Notice { message, .. } => self.note(node, &message),
                // Noted by `swap_plugin`, which made it.
                Output::StatusChanged | Output::PluginSwapped { .. } => {}
            }
        }
        // A call may have extended the node's lease (an acknowledged round).
        self.check_lease(node);
    }

    /// The lease invariant for `node`, if it leads: it must not believe it
    /// holds a lease while a leader of a later term exists.
    pub(super) fn check_lease(&mut self, node: NodeIndex) {
        if self.nodes[node].leading.is_none() {
            return;
        }
        let at = self.now_ns();
        let local = self.node_now_ns(node);
        let Some(core) = self.nodes[node].core.as_ref() else {
            return;
        };
        self.checker.lease(at, local, core.status());
    }

    /// A save on a full disk: the node goes quiet (its policy keeps the
    /// state), and retries in virtual time.
    fn save_failed(&mut self, node: NodeIndex, state: PersistedState) {
        let now = self.now_ns();
        let n = &mut self.nodes[node];
        let was_quiet = n.durability.quiet();
        n.durability.persist(state, now, |_| {
            Err(anyhow::anyhow!("No space left on device"))
        });
        if !was_quiet {
            self.note(node, "cannot persist (disk full): quiet");
            self.schedule_persist_retry(node);
        }
    }

    fn schedule_persist_retry(&mut self, node: NodeIndex) {
        let Some(at_ns) = self.nodes[node].durability.next_retry_ns() else {
            return;
        };
        let incarnation = self.nodes[node].incarnation;
        self.schedule(at_ns, Pending::PersistRetry { node, incarnation });
    }

    /// A quiet node's retry: still full, it tries again later; with room,
    /// its newest state is saved and it speaks again.
    fn retry_persist(&mut self, node: NodeIndex) {
        let now = self.now_ns();
        if self.nodes[node].disk_full {
            let n = &mut self.nodes[node];
            n.durability
                .retry(now, |_| Err(anyhow::anyhow!("No space left on device")));
            self.schedule_persist_retry(node);
            return;
        }
        let mut durability = std::mem::take(&mut self.nodes[node].durability);
        let mut saved = None;
        durability.retry(now, |state| {
            saved = Some(state.clone());
            Ok(())
        });
        let withheld = durability.withheld();
        self.nodes[node].durability = durability;
        if let Some(state) = saved {
            self.save(node, state);
            self.note(
                node,
                &format!("saved again after withholding {withheld} messages"),
            );
        }
    }

    /// Records a granted vote `from` sends `to` with the checker. The
    /// checker reads the built-in protocol's wire format
    /// (`tenure_election_core::wire`); another build's messages that do not
    /// decode are not checked this way (their persisted votes still are).
    fn check_vote(&mut self, from: NodeIndex, to: &str, payload: &[u8]) {
        use tenure_election_core::wire::{Body, Message};
        let Ok(message) = Message::decode(payload) else {
            return;
        };
        if let Body::Vote {
            term,
            granted: true,
        } = message.body
        {
            let at = self.now_ns();
            let id = self.nodes[from].spec.id.clone();
            self.checker
                .vote_sent(at, &message.cluster_id, &id, term, to);
        }
    }

    pub(super) fn save(&mut self, node: NodeIndex, state: PersistedState) {
        self.hash(&state.term.to_le_bytes());
        let at = self.now_ns();
        let id = self.nodes[node].spec.id.clone();
        self.checker.persisted(at, node, &id, &state);
        let cluster = self.nodes[node].spec.cluster_id.clone();
        self.checker.ballot(at, &cluster, &id, &state);
        let n = &mut self.nodes[node];
        n.previous_disk = n.disk.replace(state);
    }

    pub(super) fn send(&mut self, from: NodeIndex, to: &str, lane: Lane, payload: Vec<u8>) {
        if lane == Lane::Protocol {
            self.check_vote(from, to, &payload);
        }
        let targets = self.routes.get(to).cloned().unwrap_or_default();
        if targets.is_empty() {
            self.stats.sent += 1;
            self.stats.dropped += 1;
        }
        for target in targets {
            if target == from {
                continue;
            }
            self.stats.sent += 1;
            if !self.partition.connected(from, target) {
                self.stats.dropped += 1;
                continue;
            }
            // Drawn only on a lossy link, so runs without one replay as
            // they did before lossy links existed.
            let loss = self.partition.loss(from, target);
            if loss > 0.0 && self.rng.chance(loss) {
                self.stats.dropped += 1;
                continue;
            }
            let delays = self.network.delays(&mut self.rng);
            if delays.is_empty() {
                self.stats.dropped += 1;
            }
            let extra = self.partition.extra_delay(from, target);
            for delay in delays {
                let at_ns = self.now_ns().saturating_add(delay).saturating_add(extra);
                self.schedule(
                    at_ns,
                    Pending::Deliver {
                        to: target,
                        from,
                        lane,
                        payload: payload.clone(),
                    },
                );
            }
        }
    }

    pub(super) fn on_event(&mut self, node: NodeIndex, event: Event) {
        let at = self.now_ns();
        let id = self.nodes[node].spec.id.clone();
        let line = match &event {
            Event::BecameLeader(term) => format!("became leader term={term}"),
            Event::BecameFollower(f) => format!(
                "became follower of {} term={}",
                f.leader.as_deref().unwrap_or("none"),
                f.term
            ),
            Event::TermChanged(t) => format!("term {} -> {}", t.old, t.new),
            Event::PeerJoined(p) => format!("peer joined {p}"),
            Event::PeerLeft(p) => format!("peer left {p}"),
        };
        self.note(node, &line);
        match &event {
            Event::TermChanged(t) => self.checker.term_changed(at, node, &id, t.old, t.new),
            Event::BecameLeader(term) => {
                self.nodes[node].leading = Some(*term);
                if let Some(status) = self.status(node) {
                    self.checker.became_leader(at, node, *term, &status);
                }
                // Every older leader's lease must have run out by now.
                let others: Vec<NodeIndex> = (0..self.nodes.len())
                    .filter(|&o| o != node && self.nodes[o].leading.is_some())
                    .collect();
                for other in others {
                    self.check_lease(other);
                }
            }
            Event::BecameFollower(_) => self.nodes[node].leading = None,
            _ => {}
        }
    }

    pub(super) fn schedule(&mut self, at_ns: u64, what: Pending) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled { at_ns, seq, what }));
    }

    pub(super) fn note(&mut self, node: NodeIndex, what: &str) {
        let spec = &self.nodes[node].spec;
        let line = format!("{}/{} {what}", spec.cluster_id, spec.id);
        self.trace_line(line);
    }

    pub(super) fn trace_line(&mut self, line: String) {
        let now = self.now_ns();
        let mut stamped = String::with_capacity(line.len() + 16);
        let _ = write!(
            stamped,
            "{:>6}.{:03}ms {line}",
            now / NS_PER_MS,
            (now % NS_PER_MS) / 1000
        );
        self.hash(stamped.as_bytes());
        self.trace.push(stamped);
    }

    pub(super) fn hash(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.fingerprint ^= u64::from(b);
            self.fingerprint = self.fingerprint.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
