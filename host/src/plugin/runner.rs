//! The plugin's own thread: it owns the plugin's store, calls the callbacks
//! in the order events happened, keeps the plugin's wake-ups, and replaces
//! a trapped instance.
//!
//! Fault policy:
//! - `on-become-leader` returning an error, trapping or overrunning its
//!   deadline refuses leadership: the runner reports
//!   [`PluginOutput::RefuseLeadership`] and the node steps down.
//! - A trap anywhere is logged and the instance replaced by a fresh one
//!   (`init` again; its wake-ups are dropped). If the node leads, the fresh
//!   instance is told so with `on-become-leader(term)`, which is how it
//!   resumes leader duties.
//! - A trapped instance is replaced on the next input. If a fresh instance
//!   cannot even be created (its `init` fails or traps), the runner retries
//!   at most once per [`RESPAWN_BACKOFF`]; a node whose plugin cannot start
//!   refuses leadership meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use crate::bindings::types::{Event, Role};

use super::{
    CallResult, PluginComponent, PluginEffect, PluginInstance, PluginLimits, SharedView,
    config_pairs,
};

/// Least time between two failed attempts to create a fresh instance.
pub const RESPAWN_BACKOFF: Duration = Duration::from_millis(500);

/// Inputs queued for the plugin beyond this are dropped (and logged): a
/// plugin that falls behind must not hold up its node.
pub const INPUT_QUEUE: usize = 1024;

/// What the node hands the plugin thread.
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
}

/// What the plugin thread asks of the node.
#[derive(Debug, PartialEq, Eq)]
pub enum PluginOutput {
    /// Send bytes to `peer`'s plugin.
    Send { peer: String, payload: Vec<u8> },
    /// Send bytes to every peer's plugin.
    Broadcast { payload: Vec<u8> },
    /// The plugin refused to lead in `term`: step down and back off.
    RefuseLeadership { term: u64, reason: String },
}

/// A running plugin thread.
pub struct PluginHandle {
    inputs: SyncSender<PluginInput>,
    thread: Option<JoinHandle<()>>,
    name: String,
    sha256: String,
}

impl PluginHandle {
    /// Instantiates and `init`s the plugin (an error here refuses the
    /// plugin and is returned), then starts its thread.
    pub fn start(
        component: Arc<PluginComponent>,
        config: BTreeMap<String, String>,
        limits: PluginLimits,
        view: SharedView,
        outputs: tokio_mpsc::UnboundedSender<PluginOutput>,
    ) -> anyhow::Result<PluginHandle> {
        let ids = Arc::new(AtomicU64::new(1));
        let mut runner = Runner {
            component: component.clone(),
            config,
            limits,
            view,
            outputs,
            ids,
            instance: None,
            wakeups: BTreeMap::new(),
            failed_spawn_at: None,
        };
        runner.spawn_instance()?;
        let (inputs, rx) = mpsc::sync_channel(INPUT_QUEUE);
        let thread = std::thread::Builder::new()
            .name(format!("plugin-{}", component.name()))
            .spawn(move || runner.run(rx))
            .context("starting the plugin thread")?;
        Ok(PluginHandle {
            inputs,
            thread: Some(thread),
            name: component.name().to_string(),
            sha256: component.sha256().to_string(),
        })
    }

    /// Queues an input; never blocks. Returns false if it was dropped.
    pub fn deliver(&self, input: PluginInput) -> bool {
        match self.inputs.try_send(input) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!(plugin = %self.name, "plugin input queue full; input dropped");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// The plugin's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sha256 of the plugin, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current callback
        // (bounded by the deadline).
        let (closed, _) = mpsc::sync_channel(0);
        self.inputs = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Runner {
    component: Arc<PluginComponent>,
    config: BTreeMap<String, String>,
    limits: PluginLimits,
    view: SharedView,
    outputs: tokio_mpsc::UnboundedSender<PluginOutput>,
    ids: Arc<AtomicU64>,
    instance: Option<PluginInstance>,
    /// Pending wake-ups: (due, id) -> tag.
    wakeups: BTreeMap<(Instant, u64), String>,
    /// When creating a fresh instance last failed, for the back-off.
    failed_spawn_at: Option<Instant>,
}

impl Runner {
    fn run(mut self, inputs: Receiver<PluginInput>) {
        loop {
            let wait = match self.wakeups.keys().next() {
                Some((due, _)) => due.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            match inputs.recv_timeout(wait) {
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => self.fire_due_wakeups(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
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
                .instantiate(self.view.clone(), self.limits, self.ids.clone())?;
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
            if self
                .failed_spawn_at
                .is_some_and(|at| at.elapsed() < RESPAWN_BACKOFF)
            {
                return None;
            }
            if let Err(e) = self.spawn_instance() {
                self.failed_spawn_at = Some(Instant::now());
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
        let instance = self.instance(replay)?;
        match f(instance) {
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
            Some(Ok(())) => None,
            Some(Err(reason)) => Some(reason),
            None => Some("the plugin trapped in on-become-leader, or cannot start".to_string()),
        };
        if let Some(reason) = refusal {
            let _ = self
                .outputs
                .send(PluginOutput::RefuseLeadership { term, reason });
        }
    }

    fn handle(&mut self, input: PluginInput) {
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
                let answer = self
                    .call("on-call", |i| i.on_call(&request))
                    .unwrap_or_else(|| Err("the plugin failed; see the node's log".into()));
                let _ = reply.send(answer);
            }
            PluginInput::Inspect(reply) => {
                let pairs = self.call("inspect", |i| i.inspect()).unwrap_or_default();
                let _ = reply.send(pairs);
            }
        }
    }

    fn fire_due_wakeups(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.wakeups.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, id), tag) = entry.remove_entry();
            self.call("on-scheduled", |i| i.on_scheduled(id, &tag));
        }
    }

    fn apply(&mut self, effects: Vec<PluginEffect>) {
        for effect in effects {
            match effect {
                PluginEffect::Send { peer, payload } => {
                    let _ = self.outputs.send(PluginOutput::Send { peer, payload });
                }
                PluginEffect::Broadcast { payload } => {
                    let _ = self.outputs.send(PluginOutput::Broadcast { payload });
                }
                PluginEffect::Schedule { id, after_ms, tag } => {
                    let due = Instant::now() + Duration::from_millis(after_ms);
                    self.wakeups.insert((due, id), tag);
                }
                PluginEffect::CancelSchedule { id } => {
                    self.wakeups.retain(|(_, i), _| *i != id);
                }
            }
        }
    }
}
