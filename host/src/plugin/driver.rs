//! The plugin's callbacks and fault policy, independent of threads and
//! clocks, so a real node and the simulator run plugins through the same
//! code.
//!
//! Fault policy:
//! - `on-become-leader` returning an error, trapping or overrunning its
//!   deadline refuses leadership: the driver reports
//!   [`PluginOutput::RefuseLeadership`] and the node steps down.
//! - A trap anywhere is logged and the instance replaced by a fresh one
//!   (`init` again; its wake-ups are dropped). If the node leads, the fresh
//!   instance is told so with `on-become-leader(term)`, which is how it
//!   resumes leader duties.
//! - A trapped instance is replaced on the next input. If a fresh instance
//!   cannot even be created (its `init` fails or traps), the driver retries
//!   at most once per [`RESPAWN_BACKOFF`]; a node whose plugin cannot start
//!   refuses leadership meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;

use crate::bindings::types::{Event, LogLevel, Role};

use super::quota::PluginUsage;
use super::{
    CallResult, PluginComponent, PluginEffect, PluginInstance, PluginLimits, SharedView,
    config_pairs,
};

/// Least time between two failed attempts to create a fresh instance.
pub const RESPAWN_BACKOFF: Duration = Duration::from_millis(500);

/// What the node hands the plugin.
#[derive(Debug)]
pub enum PluginInput {
    /// A protocol event.
    Event(Event),
    /// Bytes from a peer's plugin.
    Message { from: String, payload: Vec<u8> },
    /// A call from the admin endpoint.
    Call {
        request: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// `inspect()`, for the status report.
    Inspect(oneshot::Sender<Vec<(String, String)>>),
    /// Replace the running version with `component` (see
    /// [`PluginDriver::swap`]); the reply says why not, if not.
    Swap {
        component: Arc<PluginComponent>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What the plugin asks of the node.
#[derive(Debug, PartialEq, Eq)]
pub enum PluginOutput {
    /// Send bytes to `peer`'s plugin.
    Send { peer: String, payload: Vec<u8> },
    /// Send bytes to every peer's plugin.
    Broadcast { payload: Vec<u8> },
    /// The plugin refused to lead in `term`: step down and back off.
    RefuseLeadership { term: u64, reason: String },
    /// The plugin took up leadership of `term` (`on-become-leader` returned
    /// Ok): the refusal back-off starts afresh.
    AcceptedLeadership { term: u64 },
    /// A log line (already written to `tracing`).
    Log { level: LogLevel, message: String },
    /// The plugin asked this node (its leader) to hand leadership to `to`.
    TransferLeadership { to: String },
    /// A hot swap succeeded: this version runs now.
    Swapped { name: String, sha256: String },
}

/// One plugin's callbacks, fault policy and wake-ups, driven by its owner:
/// the plugin thread of a real node ([`super::runner`]) or the simulator.
/// Time is whatever clock the owner passes in, in nanoseconds.
pub struct PluginDriver {
    component: Arc<PluginComponent>,
    config: BTreeMap<String, String>,
    limits: PluginLimits,
    view: SharedView,
    outputs: Vec<PluginOutput>,
    ids: Arc<AtomicU64>,
    instance: Option<PluginInstance>,
    /// Pending wake-ups: (due, id) -> tag.
    wakeups: BTreeMap<(u64, u64), String>,
    /// When creating a fresh instance last failed, for the back-off.
    failed_spawn_at: Option<u64>,
    /// The time of the input being handled.
    now_ns: u64,
}

impl PluginDriver {
    /// Instantiates and `init`s the plugin at `now_ns`; an error refuses
    /// the plugin. Returns the driver and what `init` asked for.
    pub fn start(
        component: Arc<PluginComponent>,
        config: BTreeMap<String, String>,
        limits: PluginLimits,
        view: SharedView,
        now_ns: u64,
    ) -> anyhow::Result<(PluginDriver, Vec<PluginOutput>)> {
        let mut driver = PluginDriver {
            component,
            config,
            limits,
            view,
            outputs: Vec::new(),
            ids: Arc::new(AtomicU64::new(1)),
            instance: None,
            wakeups: BTreeMap::new(),
            failed_spawn_at: None,
            now_ns,
        };
        driver.limits.usage.set_now(now_ns);
        driver.spawn_instance()?;
        let outputs = std::mem::take(&mut driver.outputs);
        Ok((driver, outputs))
    }

    /// The plugin's quota and what was refused under it.
    pub fn usage(&self) -> &Arc<PluginUsage> {
        &self.limits.usage
    }

    /// The plugin's file name.
    pub fn name(&self) -> &str {
        self.component.name()
    }

    /// sha256 of the running version, hex.
    pub fn sha256(&self) -> &str {
        self.component.sha256()
    }

    /// Hot swap: makes `component` the running version, carrying the old
    /// version's state over. In order: instantiate the new version, `init`
    /// it, `restore(old.snapshot())`. On a leader, `is-leader()` already
    /// answers true during `init` and `restore`: that is where a new
    /// version resumes leader duties (the node did not win a new election,
    /// so `on-become-leader` is not called again). Only if every step succeeds does the new version
    /// become current and the old one get dropped; any failure (compile
    /// and link errors come earlier, from the caller; here: instantiation,
    /// init, restore, an error or trap or overrun deadline anywhere) keeps
    /// the old version running, untouched, and returns the reason.
    ///
    /// Pending wake-ups carry over: ids stay the same, and the new version
    /// receives those still due.
    pub fn swap(
        &mut self,
        component: Arc<PluginComponent>,
        now_ns: u64,
    ) -> (Result<(), String>, Vec<PluginOutput>) {
        self.set_now(now_ns);
        let result = self.counted_swap(component);
        (result, std::mem::take(&mut self.outputs))
    }

    fn counted_swap(&mut self, component: Arc<PluginComponent>) -> Result<(), String> {
        let result = self.try_swap(component);
        let usage = &self.limits.usage;
        PluginUsage::bump(if result.is_ok() {
            &usage.swaps_ok
        } else {
            &usage.swaps_refused
        });
        result
    }

    fn try_swap(&mut self, component: Arc<PluginComponent>) -> Result<(), String> {
        let snapshot = match self.instance.as_mut() {
            Some(old) => match old.snapshot() {
                Ok((bytes, _)) => {
                    let max = self.limits.usage.quota().max_snapshot_bytes;
                    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
                        PluginUsage::bump(&self.limits.usage.snapshot_oversized);
                        return Err(format!(
                            "the running version's snapshot is {} bytes, over plugin-limits.max-snapshot-bytes ({max})",
                            bytes.len()
                        ));
                    }
                    bytes
                }
                Err(e) => {
                    // The old version is poisoned now; it is replaced with
                    // a fresh one of itself on the next input.
                    self.instance = None;
                    return Err(format!("the running version trapped in snapshot: {e:#}"));
                }
            },
            // A trapped version left nothing to carry over.
            None => Vec::new(),
        };
        let mut new = component
            .instantiate(self.view.clone(), &self.limits, self.ids.clone())
            .map_err(|e| format!("instantiating the new version: {e:#}"))?;
        let mut effects = Vec::new();
        let (init, more) = new
            .init(&config_pairs(&self.config))
            .map_err(|e| format!("the new version trapped in init: {e:#}"))?;
        init.map_err(|reason| format!("the new version refused its config: {reason}"))?;
        effects.extend(more);
        let (restored, more) = new
            .restore(&snapshot)
            .map_err(|e| format!("the new version trapped in restore: {e:#}"))?;
        restored.map_err(|reason| format!("the new version refused the snapshot: {reason}"))?;
        effects.extend(more);
        let (_, _, term) = self.node();
        tracing::info!(
            node = %self.node().0, term, plugin = %component.name(), sha256 = %component.sha256(),
            "plugin swapped"
        );
        self.outputs.push(PluginOutput::Swapped {
            name: component.name().to_string(),
            sha256: component.sha256().to_string(),
        });
        self.component = component;
        self.instance = Some(new);
        self.failed_spawn_at = None;
        self.apply(effects);
        Ok(())
    }

    /// When the earliest wake-up is due, if any.
    pub fn next_wakeup_ns(&self) -> Option<u64> {
        self.wakeups.keys().next().map(|(due, _)| *due)
    }

    /// Handles one input at `now_ns`; returns what the plugin asked of the
    /// node, in order.
    pub fn handle(&mut self, input: PluginInput, now_ns: u64) -> Vec<PluginOutput> {
        self.set_now(now_ns);
        self.dispatch(input);
        std::mem::take(&mut self.outputs)
    }

    /// Runs every wake-up due at `now_ns`.
    pub fn fire_due(&mut self, now_ns: u64) -> Vec<PluginOutput> {
        self.set_now(now_ns);
        while let Some(entry) = self.wakeups.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            let ((_, id), tag) = entry.remove_entry();
            self.call("on-scheduled", |i| i.on_scheduled(id, &tag));
        }
        std::mem::take(&mut self.outputs)
    }

    fn set_now(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        self.limits.usage.set_now(now_ns);
    }

    fn node(&self) -> (String, Role, u64) {
        let view = match self.view.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        (view.node_id, view.role, view.term)
    }

    /// Creates and `init`s a fresh instance, dropping the old wake-ups.
    fn spawn_instance(&mut self) -> anyhow::Result<()> {
        self.wakeups.clear();
        let mut instance =
            self.component
                .instantiate(self.view.clone(), &self.limits, self.ids.clone())?;
        let (result, effects) = instance
            .init(&config_pairs(&self.config))
            .context("the plugin trapped in init")?;
        result.map_err(|reason| anyhow::anyhow!("the plugin refused its config: {reason}"))?;
        self.instance = Some(instance);
        self.apply(effects);
        Ok(())
    }

    /// A usable instance, re-creating one after a trap. With
    /// `replay_leadership`, a fresh instance on a leading node is told it
    /// leads (`on-become-leader`), which is how it resumes leader duties.
    fn instance(&mut self, replay_leadership: bool) -> Option<&mut PluginInstance> {
        if self.instance.is_none() {
            let backoff = RESPAWN_BACKOFF.as_nanos() as u64;
            if self
                .failed_spawn_at
                .is_some_and(|at| self.now_ns.saturating_sub(at) < backoff)
            {
                return None;
            }
            if let Err(e) = self.spawn_instance() {
                self.failed_spawn_at = Some(self.now_ns);
                tracing::warn!(plugin = %self.component.name(), error = %format!("{e:#}"), "cannot replace the plugin instance");
                return None;
            }
            self.failed_spawn_at = None;
            let (_, role, term) = self.node();
            if replay_leadership && role == Role::Leader {
                self.become_leader(term);
            }
        }
        self.instance.as_mut()
    }

    /// Runs one callback; on a trap, logs it and drops the instance.
    fn call<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut PluginInstance) -> CallResult<T>,
    ) -> Option<T> {
        let replay = what != "on-become-leader";
        let pending = self.wakeups.len();
        let usage = self.limits.usage.clone();
        let instance = self.instance(replay)?;
        instance.set_wakeups_pending(pending);
        let started = std::time::Instant::now();
        let outcome = f(instance);
        usage.observe_callback(what, started.elapsed());
        match outcome {
            Ok((out, effects)) => {
                self.apply(effects);
                Some(out)
            }
            Err(e) => {
                let (node, _, term) = self.node();
                tracing::warn!(
                    node = %node, term, plugin = %self.component.name(), callback = what,
                    error = %format!("{e:#}"),
                    "plugin trapped; replacing the instance"
                );
                self.instance = None;
                None
            }
        }
    }

    fn become_leader(&mut self, term: u64) {
        let refusal = match self.call("on-become-leader", |i| i.on_become_leader(term)) {
            Some(Ok(())) => {
                self.outputs.push(PluginOutput::AcceptedLeadership { term });
                None
            }
            Some(Err(reason)) => {
                PluginUsage::bump(&self.limits.usage.errors);
                Some(reason)
            }
            None => Some("the plugin trapped in on-become-leader, or cannot start".to_string()),
        };
        if let Some(reason) = refusal {
            self.outputs
                .push(PluginOutput::RefuseLeadership { term, reason });
        }
    }

    fn dispatch(&mut self, input: PluginInput) {
        match input {
            PluginInput::Event(event) => match event {
                Event::BecameLeader(term) => self.become_leader(term),
                Event::BecameFollower(f) => {
                    let leader = f.leader.clone();
                    self.call("on-become-follower", |i| {
                        i.on_become_follower(leader.as_ref(), f.term)
                    });
                }
                Event::TermChanged(t) => {
                    self.call("on-term-changed", |i| i.on_term_changed(t.old, t.new));
                }
                Event::PeerJoined(peer) => {
                    self.call("on-peer-joined", |i| i.on_peer_joined(&peer));
                }
                Event::PeerLeft(peer) => {
                    self.call("on-peer-left", |i| i.on_peer_left(&peer));
                }
            },
            PluginInput::Message { from, payload } => {
                self.call("on-message", |i| i.on_message(&from, &payload));
            }
            PluginInput::Call { request, reply } => {
                let answer = match self.call("on-call", |i| i.on_call(&request)) {
                    Some(Err(reason)) => {
                        PluginUsage::bump(&self.limits.usage.errors);
                        Err(reason)
                    }
                    Some(reply) => reply,
                    None => Err("the plugin failed; see the node's log".into()),
                };
                let _ = reply.send(answer);
            }
            PluginInput::Inspect(reply) => {
                let pairs = self.call("inspect", |i| i.inspect()).unwrap_or_default();
                let _ = reply.send(self.bounded_inspect(pairs));
            }
            PluginInput::Swap { component, reply } => {
                let result = self.counted_swap(component);
                let _ = reply.send(result);
            }
        }
    }

    /// `inspect()`'s answer, or a note in its place if it is over
    /// `plugin-limits.max-inspect-bytes`.
    fn bounded_inspect(&self, pairs: Vec<(String, String)>) -> Vec<(String, String)> {
        let size: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        let max = self.limits.usage.quota().max_inspect_bytes;
        if u64::try_from(size).unwrap_or(u64::MAX) <= max {
            return pairs;
        }
        PluginUsage::bump(&self.limits.usage.inspect_oversized);
        vec![(
            "inspect-refused".to_string(),
            format!(
                "the plugin answered {size} bytes, over plugin-limits.max-inspect-bytes ({max})"
            ),
        )]
    }

    fn apply(&mut self, effects: Vec<PluginEffect>) {
        for effect in effects {
            match effect {
                PluginEffect::Send { peer, payload } => {
                    self.outputs.push(PluginOutput::Send { peer, payload });
                }
                PluginEffect::Broadcast { payload } => {
                    self.outputs.push(PluginOutput::Broadcast { payload });
                }
                PluginEffect::Log { level, message } => {
                    self.outputs.push(PluginOutput::Log { level, message });
                }
                PluginEffect::Schedule { id, after_ms, tag } => {
                    let due = self
                        .now_ns
                        .saturating_add(after_ms.saturating_mul(1_000_000));
                    self.wakeups.insert((due, id), tag);
                }
                PluginEffect::CancelSchedule { id } => {
                    self.wakeups.retain(|(_, i), _| *i != id);
                }
                PluginEffect::TransferLeadership { to } => {
                    self.outputs.push(PluginOutput::TransferLeadership { to });
                }
            }
        }
    }
}
