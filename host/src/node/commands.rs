//! Operator commands from the admin endpoint, handled on the node's task
//! in order with everything else.

use super::*;

impl Node {
    /// Carries out one command and answers it; returns the protocol's
    /// effects to apply, or `None` when there are none.
    pub(super) fn on_command(&mut self, command: Command) -> Option<anyhow::Result<Vec<Effect>>> {
        Some(match command {
            Command::Status(reply) => {
                let _ = reply.send(self.report());
                return None;
            }
            Command::StepDown(reply) => {
                let effects = self.protocol.step_down();
                let _ = reply.send(());
                effects
            }
            Command::Campaign(reply) => match self.protocol.campaign() {
                Ok((effects, answer)) => {
                    let answer = answer.map_err(|r| crate::protocol::explain_campaign_refusal(&r));
                    if let Err(refusal) = &answer {
                        tracing::info!(node = %self.config.node_id, %refusal, "campaign refused");
                    }
                    let _ = reply.send(answer);
                    Ok(effects)
                }
                Err(e) => Err(e),
            },
            Command::Leave { node, reply } => match self.protocol.leave(&node) {
                Ok(effects) => {
                    tracing::info!(node = %self.config.node_id, peer = %node, "member removed");
                    let _ = reply.send(Ok(()));
                    Ok(effects)
                }
                Err(e) => {
                    let _ = reply.send(Err(format!("{e:#}")));
                    return None;
                }
            },
            Command::Transfer { to, reply } => match self.protocol.transfer_leadership(&to) {
                Ok(effects) => {
                    let _ = reply.send(Ok(()));
                    Ok(effects)
                }
                Err(e) => {
                    let _ = reply.send(Err(format!("{e:#}")));
                    return None;
                }
            },
            Command::Call {
                request,
                local,
                reply,
            } => {
                self.call(request, local, reply);
                return None;
            }
            Command::Inspect(reply) => {
                // In order with the plugin's other callbacks, on
                // its thread; this task goes on.
                if self.plugin.is_some() {
                    let (answer, receiver) = oneshot::channel();
                    self.to_plugin(PluginInput::Inspect(answer));
                    let _ = reply.send(Ok(receiver));
                } else {
                    let _ = reply.send(Err("this node runs no plugin".into()));
                }
                return None;
            }
            Command::SwapProtocol {
                component,
                sha256,
                reply,
            } => match self.swap_protocol(&component) {
                Ok((version, effects)) => {
                    self.identity.protocol_sha256 = sha256;
                    self.identity.protocol_version = version.clone();
                    let _ = reply.send(Ok(version));
                    Ok(effects)
                }
                Err(e) => {
                    let _ = reply.send(Err(format!("{e:#}")));
                    return None;
                }
            },
            Command::SwapPlugin { component, reply } => {
                // The swap runs on the plugin's thread, in order
                // with the events before it; this task goes on.
                if self.plugin.is_some() {
                    self.to_plugin(PluginInput::Swap { component, reply });
                } else {
                    let _ = reply.send(Err("this node runs no plugin to swap".into()));
                }
                return None;
            }
        })
    }
}
