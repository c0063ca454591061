//! The node's side of its behaviour plugin: handing it inputs, carrying out
//! what it asks (messages, refusals of leadership), and keeping its view
//! of the node current.

use crate::bindings::types::{NodeStatus, Role};
use crate::plugin::LeaderView;
use crate::plugin::runner::{PluginInput, PluginOutput};
use crate::protocol::Effect;
use tenure_transport::Channel;

use super::Node;

impl Node {
    pub(super) fn to_plugin(&self, input: PluginInput) {
        if let Some(plugin) = &self.plugin {
            plugin.deliver(input);
        }
    }

    /// Carries out a plugin's request; returns the protocol's effects when
    /// it had to be called (a refusal of leadership).
    pub(super) fn on_plugin_output(
        &mut self,
        output: PluginOutput,
    ) -> Option<anyhow::Result<Vec<Effect>>> {
        match output {
            PluginOutput::Send { peer, payload } => {
                if let Err(e) = self.transport.send(&peer, Channel::Plugin, payload) {
                    tracing::debug!(node = %self.config.node_id, %peer, error = %e, "plugin message not sent");
                }
                None
            }
            PluginOutput::Broadcast { payload } => {
                let peers: Vec<String> = self.view_snapshot().peers;
                for peer in peers {
                    let _ = self.transport.send(&peer, Channel::Plugin, payload.clone());
                }
                None
            }
            PluginOutput::AcceptedLeadership { .. } => {
                self.refusal_backoff.accepted();
                None
            }
            PluginOutput::Log { .. } => None,
            PluginOutput::TransferLeadership { to } => {
                match self.protocol.transfer_leadership(&to) {
                    Ok(effects) => Some(Ok(effects)),
                    Err(e) => {
                        tracing::warn!(node = %self.config.node_id, peer = %to, error = %format!("{e:#}"), "plugin's leadership transfer refused");
                        None
                    }
                }
            }
            PluginOutput::RefuseLeadership { term, reason } => {
                let status = self.protocol.status().ok()?;
                if status.role != Role::Leader || status.term != term {
                    return None;
                }
                let backoff = self.refusal_backoff.refused();
                self.hold_timers_until = Some(tokio::time::Instant::now() + backoff);
                tracing::warn!(
                    node = %self.config.node_id, term, %reason, backoff_ms = backoff.as_millis() as u64,
                    "plugin refused leadership; stepping down and staying out of elections"
                );
                Some(self.protocol.step_down())
            }
        }
    }

    pub(super) fn view_snapshot(&self) -> LeaderView {
        match self.view.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Refreshes the plugins' view of the node from the protocol.
    pub(super) fn refresh_view(&mut self, status: &NodeStatus) {
        self.view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(status);
    }
}
