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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use tokio::sync::oneshot;

use super::{NodeIndex, Pending, Simulation};
use crate::bindings::types::NodeStatus;
use crate::plugin::driver::{PluginDriver, PluginInput, PluginOutput};
use crate::plugin::{PluginComponent, PluginLimits};

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
    /// The node's clock as the plugin's view reads it (for the lease).
    clock: Arc<AtomicU64>,
    /// The wake-up already scheduled in the event queue, if any.
    wake_at: Option<u64>,
}

impl Simulation {
    /// Starts the node's plugin on the view its core keeps, with `clock`
    /// the handle of that view's clock.
    pub(super) fn start_plugin(
        &mut self,
        node: NodeIndex,
        status: &NodeStatus,
        clock: Arc<AtomicU64>,
    ) -> anyhow::Result<()> {
        let Some(plugin) = self.nodes[node].spec.plugin.clone() else {
            return Ok(());
        };
        let Some(view) = self.nodes[node]
            .core
            .as_ref()
            .and_then(|c| c.view().cloned())
        else {
            anyhow::bail!("node {} runs a plugin but keeps no view", status.node_id);
        };
        clock.store(self.node_now_ns(node), Ordering::Relaxed);
        let (driver, outputs) = PluginDriver::start(
            plugin.component,
            plugin.config,
            // Counters and rates of its own, as a process of its own has.
            plugin
                .limits
                .clone()
                .with_quota(*plugin.limits.usage.quota()),
            view,
            self.now_ns(),
        )
        .with_context(|| format!("starting the plugin of {}", status.node_id))?;
        self.nodes[node].plugin = Some(NodePlugin {
            driver,
            clock,
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
        self.nodes.get(node)?.plugin.as_ref()?;
        self.plugin_input(node, input);
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
        let now = self.now_ns();
        let local = self.node_now_ns(node);
        let sha = component.sha256().to_string();
        let Some(plugin) = self.nodes.get_mut(node).and_then(|n| n.plugin.as_mut()) else {
            return Err("the node is down or runs no plugin".into());
        };
        plugin.clock.store(local, Ordering::Relaxed);
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
        self.nodes.get(node)?.plugin.as_ref()?;
        self.plugin_input(node, PluginInput::Inspect(reply));
        answer.try_recv().ok()
    }

    /// Hands one input to the node's plugin (if it runs one) on the
    /// node's clock, and carries out what the plugin asks.
    pub(super) fn plugin_input(&mut self, node: NodeIndex, input: PluginInput) {
        let now = self.now_ns();
        let local = self.node_now_ns(node);
        let Some(plugin) = self.nodes.get_mut(node).and_then(|n| n.plugin.as_mut()) else {
            return;
        };
        plugin.clock.store(local, Ordering::Relaxed);
        let outputs = plugin.driver.handle(input, now);
        self.plugin_outputs(node, outputs);
    }

    pub(super) fn plugin_wake(&mut self, node: NodeIndex) {
        let now = self.now_ns();
        let local = self.node_now_ns(node);
        let Some(plugin) = self.nodes[node].plugin.as_mut() else {
            return;
        };
        plugin.wake_at = None;
        plugin.clock.store(local, Ordering::Relaxed);
        let outputs = plugin.driver.fire_due(now);
        self.plugin_outputs(node, outputs);
    }

    /// What the plugin asked for, through the node's core (the same
    /// policy a real node applies), then its next wake-up.
    fn plugin_outputs(&mut self, node: NodeIndex, outputs: Vec<PluginOutput>) {
        let incarnation = self.nodes[node].incarnation;
        for output in outputs {
            if self.nodes[node].incarnation != incarnation {
                return;
            }
            if let PluginOutput::AcceptedLeadership { term } = output {
                self.check_plugin_led(node, term);
            }
            let _ = self.drive(node, |c| c.on_plugin_output(output));
        }
        self.schedule_plugin_wake(node);
    }

    /// Checks a plugin's taking up leadership of `term` against the
    /// node's view at this moment (see
    /// [`super::invariants::Checker::plugin_led`]).
    fn check_plugin_led(&mut self, node: NodeIndex, term: u64) {
        let at = self.now_ns();
        let Some(core) = self.nodes[node].core.as_ref() else {
            return;
        };
        let status = core.status().clone();
        self.checker.plugin_led(at, node, term, &status);
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
