//! Behaviour plugins in the simulator, beside the election component.
//!
//! Each simulated node may run a plugin through the same
//! [`PluginDriver`] a real node's plugin thread uses, so callback order,
//! wake-ups, traps, deadlines and refusals of leadership behave as they do
//! in production — on virtual time. (Callback deadlines are still measured
//! in wall-clock time by wasmtime's epochs: a looping plugin costs its
//! deadline of real time per call.)
//!
//! Plugin log lines appear in the trace as `plugin: …`, so tests can assert
//! on what a behaviour did.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::oneshot;

use super::{Channel, NodeIndex, Pending, Simulation};
use crate::bindings::types::{Event, LogLevel, NodeStatus};
use crate::plugin::backoff::RefusalBackoff;
use crate::plugin::driver::{PluginDriver, PluginInput, PluginOutput};
use crate::plugin::{LeaderView, PluginComponent, PluginLimits, SharedView, ViewClock};

/// A plugin for a simulated node: the compiled component (compile it once
/// and share it), its `init` config and its limits.
#[derive(Clone, Debug)]
pub struct SimPlugin {
    /// The compiled plugin.
    pub component: Arc<PluginComponent>,
    /// Key/value config handed to `init`.
    pub config: BTreeMap<String, String>,
    /// Deadline and memory cap.
    pub limits: PluginLimits,
}

/// A running node's plugin state.
pub(super) struct NodePlugin {
    driver: PluginDriver,
    view: SharedView,
    /// The node's clock as the plugin's view reads it (for the lease).
    clock: Arc<AtomicU64>,
    backoff: RefusalBackoff,
    /// Timers are held (not delivered) until this virtual time after a
    /// refusal of leadership, so the node does not campaign.
    hold_until: Option<u64>,
    held_timers: Vec<u64>,
    /// The wake-up already scheduled in the event queue, if any.
    wake_at: Option<u64>,
}

impl Simulation {
    /// Starts the node's plugin, if its spec names one.
    pub(super) fn start_plugin(
        &mut self,
        node: NodeIndex,
        status: &NodeStatus,
    ) -> anyhow::Result<()> {
        let Some(plugin) = self.nodes[node].spec.plugin.clone() else {
            return Ok(());
        };
        let (clock, clock_handle) = ViewClock::manual();
        clock_handle.store(self.node_now_ns(node), Ordering::Relaxed);
        let view: SharedView = Arc::new(Mutex::new(LeaderView::from_status(status, clock)));
        let (driver, outputs) = PluginDriver::start(
            plugin.component,
            plugin.config,
            plugin.limits,
            view.clone(),
            self.now_ns(),
        )
        .with_context(|| format!("starting the plugin of {}", status.node_id))?;
        self.nodes[node].plugin = Some(NodePlugin {
            driver,
            view,
            clock: clock_handle,
            backoff: RefusalBackoff::default(),
            hold_until: None,
            held_timers: Vec::new(),
            wake_at: None,
        });
        self.plugin_outputs(node, outputs);
        Ok(())
    }

    /// Calls the plugin's `on-call` on a running node, as the admin
    /// endpoint would. `None` if the node is down or runs no plugin.
    pub fn call_plugin(
        &mut self,
        node: NodeIndex,
        request: &[u8],
    ) -> Option<Result<Vec<u8>, String>> {
        let (reply, mut answer) = oneshot::channel();
        let input = PluginInput::Call {
            request: request.to_vec(),
            reply,
        };
        self.plugin_input(node, input)?;
        answer.try_recv().ok()
    }

    /// Hot-swaps a running node's plugin for `component`, as `POST
    /// /plugin` does on a real node (see
    /// [`crate::plugin::driver::PluginDriver::swap`]): on success the new
    /// version runs with the old one's state; on failure the old version
    /// keeps running and the reason comes back.
    pub fn swap_plugin(
        &mut self,
        node: NodeIndex,
        component: Arc<PluginComponent>,
    ) -> Result<(), String> {
        self.refresh_plugin_view(node);
        let now = self.now_ns();
        let sha = component.sha256().to_string();
        let Some(plugin) = self.nodes.get_mut(node).and_then(|n| n.plugin.as_mut()) else {
            return Err("the node is down or runs no plugin".into());
        };
        let (result, outputs) = plugin.driver.swap(component, now);
        self.plugin_outputs(node, outputs);
        let line = match &result {
            Ok(()) => format!("plugin swapped to {}", &sha[..12.min(sha.len())]),
            Err(reason) => format!("plugin swap refused: {reason}"),
        };
        self.note(node, &line);
        result
    }

    /// The plugin's `inspect()` on a running node.
    pub fn inspect_plugin(&mut self, node: NodeIndex) -> Option<Vec<(String, String)>> {
        let (reply, mut answer) = oneshot::channel();
        self.plugin_input(node, PluginInput::Inspect(reply))?;
        answer.try_recv().ok()
    }

    pub(super) fn plugin_event(&mut self, node: NodeIndex, event: Event) {
        self.plugin_input(node, PluginInput::Event(event));
    }

    /// Brings the plugin's view (role, term, lease, clock) up to date
    /// before it is called.
    fn refresh_plugin_view(&mut self, node: NodeIndex) {
        if self.nodes[node].plugin.is_none() {
            return;
        }
        let now = self.node_now_ns(node);
        let status = self.status(node);
        if let Some(p) = &self.nodes[node].plugin {
            p.clock.store(now, Ordering::Relaxed);
            if let Some(status) = status {
                p.view
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .update(&status);
            }
        }
    }

    pub(super) fn plugin_message(&mut self, node: NodeIndex, from: String, payload: Vec<u8>) {
        self.plugin_input(node, PluginInput::Message { from, payload });
    }

    /// Hands one input to the node's plugin and carries out its outputs.
    fn plugin_input(&mut self, node: NodeIndex, input: PluginInput) -> Option<()> {
        self.refresh_plugin_view(node);
        let now = self.now_ns();
        let plugin = self.nodes.get_mut(node)?.plugin.as_mut()?;
        let outputs = plugin.driver.handle(input, now);
        self.plugin_outputs(node, outputs);
        Some(())
    }

    pub(super) fn plugin_wake(&mut self, node: NodeIndex) {
        self.refresh_plugin_view(node);
        let now = self.now_ns();
        let Some(plugin) = self.nodes[node].plugin.as_mut() else {
            return;
        };
        plugin.wake_at = None;
        let outputs = plugin.driver.fire_due(now);
        self.plugin_outputs(node, outputs);
    }

    /// Whether timer `id` of `node` must wait for a refusal back-off to end
    /// (then it is kept, and delivered by [`Simulation::hold_end`]).
    pub(super) fn hold_timer(&mut self, node: NodeIndex, id: u64) -> bool {
        let now = self.now_ns();
        match self.nodes[node].plugin.as_mut() {
            Some(p) if p.hold_until.is_some_and(|until| now < until) => {
                p.held_timers.push(id);
                true
            }
            _ => false,
        }
    }

    pub(super) fn hold_end(&mut self, node: NodeIndex) {
        let Some(p) = self.nodes[node].plugin.as_mut() else {
            return;
        };
        p.hold_until = None;
        let held = std::mem::take(&mut p.held_timers);
        self.note(node, "leadership back-off over");
        for id in held {
            let _ = self.call(node, |i| i.on_timer(id));
        }
    }

    fn plugin_outputs(&mut self, node: NodeIndex, outputs: Vec<PluginOutput>) {
        for output in outputs {
            match output {
                PluginOutput::Send { peer, payload } => {
                    self.send(node, &peer, Channel::Plugin, payload);
                }
                PluginOutput::Broadcast { payload } => {
                    let peers = self.nodes[node]
                        .plugin
                        .as_ref()
                        .map(|p| {
                            p.view
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .peers
                                .clone()
                        })
                        .unwrap_or_default();
                    for peer in peers {
                        self.send(node, &peer, Channel::Plugin, payload.clone());
                    }
                }
                PluginOutput::Log { level, message } => {
                    if !matches!(level, LogLevel::Trace | LogLevel::Debug) {
                        self.note(node, &format!("plugin: {message}"));
                    }
                }
                PluginOutput::AcceptedLeadership { .. } => {
                    if let Some(p) = self.nodes[node].plugin.as_mut() {
                        p.backoff.accepted();
                    }
                }
                PluginOutput::RefuseLeadership { term, reason } => self.refuse(node, term, &reason),
                PluginOutput::TransferLeadership { to } => {
                    if let Err(e) = self.transfer_leadership(node, &to) {
                        self.note(node, &format!("plugin's transfer to {to} refused: {e:#}"));
                    }
                }
            }
        }
        self.schedule_plugin_wake(node);
    }

    /// The plugin refused leadership of `term`: if the node still leads
    /// that term, it steps down and stays out of elections for a back-off.
    fn refuse(&mut self, node: NodeIndex, term: u64, reason: &str) {
        let leads = self
            .status(node)
            .is_some_and(|s| s.role == crate::bindings::types::Role::Leader && s.term == term);
        if !leads {
            return;
        }
        let now = self.now_ns();
        let incarnation = self.nodes[node].incarnation;
        let Some(p) = self.nodes[node].plugin.as_mut() else {
            return;
        };
        let backoff = p.backoff.refused();
        let until = now.saturating_add(backoff.as_nanos() as u64);
        p.hold_until = Some(until);
        self.note(
            node,
            &format!(
                "plugin refused leadership at term {term} ({reason}); out of elections for {} ms",
                backoff.as_millis()
            ),
        );
        self.schedule(until, Pending::HoldEnd { node, incarnation });
        let _ = self.call(node, |i| i.step_down());
    }

    /// Puts the plugin's next wake-up in the event queue (once).
    fn schedule_plugin_wake(&mut self, node: NodeIndex) {
        let incarnation = self.nodes[node].incarnation;
        let Some(p) = self.nodes[node].plugin.as_mut() else {
            return;
        };
        let Some(due) = p.driver.next_wakeup_ns() else {
            return;
        };
        if p.wake_at.is_some_and(|at| at <= due) {
            return;
        }
        p.wake_at = Some(due);
        self.schedule(due, Pending::PluginWake { node, incarnation });
    }
}
