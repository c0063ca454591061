//! Operator commands from the admin endpoint, handled on the node's task
//! in order with everything else.

use super::*;

impl Node {
    /// Carries out one command and answers it; returns the core's outputs
    /// to carry out, or `None` when there are none.
    pub(super) fn on_command(&mut self, command: Command) -> Option<anyhow::Result<Vec<Output>>> {
        Some(match command {
            Command::Status(reply) => {
                let _ = reply.send(self.report());
                return None;
            }
            Command::Metrics(reply) => {
                let _ = reply.send(self.metrics_text());
                return None;
            }
            Command::ProtocolState(reply) => {
                let options = self.core.options().clone();
                let exported = self.core.export_state().map_err(|e| format!("{e:#}"));
                let _ = reply.send(exported.map(|state| (options, state)));
                return None;
            }
            Command::ReloadTls(reply) => {
                let _ = reply.send(self.reload_tls().map_err(|e| format!("{e:#}")));
                return None;
            }
            Command::StepDown(reply) => {
                let outputs = self.core.step_down();
                let _ = reply.send(());
                outputs
            }
            Command::Campaign(reply) => match self.core.campaign() {
                Ok((outputs, answer)) => {
                    if let Err(refusal) = &answer {
                        let refusal = crate::protocol::explain_campaign_refusal(refusal);
                        tracing::info!(node = %self.config.node_id, %refusal, "campaign refused");
                    }
                    let _ = reply.send(answer);
                    Ok(outputs)
                }
                Err(e) => Err(e),
            },
            Command::Leave { node, reply } => {
                let answer = self.core.leave(&node);
                if matches!(answer, Ok(Ok(_))) {
                    tracing::info!(node = %self.config.node_id, peer = %node, "member removed");
                }
                answered(answer, reply)
            }
            Command::Transfer { to, reply } => {
                let answer = self.core.transfer_leadership(&to);
                answered(answer, reply)
            }
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
                Ok((version, outputs)) => {
                    self.identity.protocol_sha256 = sha256;
                    self.identity.protocol_version = version.clone();
                    let _ = reply.send(Ok(version));
                    Ok(outputs)
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

/// Answers a request the protocol may refuse: its refusal goes back to the
/// caller (and nothing is carried out); a trap drops the reply and stops
/// the node.
fn answered(
    answer: anyhow::Result<Result<Vec<Output>, ChangeRefusal>>,
    reply: oneshot::Sender<Result<(), ChangeRefusal>>,
) -> anyhow::Result<Vec<Output>> {
    let outputs = answer?;
    match outputs {
        Ok(outputs) => {
            let _ = reply.send(Ok(()));
            Ok(outputs)
        }
        Err(refusal) => {
            let _ = reply.send(Err(refusal));
            Ok(Vec::new())
        }
    }
}

impl Node {
    /// Hands `input` to the node's plugin, if it runs one.
    pub(super) fn to_plugin(&self, input: PluginInput) {
        if let Some(plugin) = &self.plugin {
            plugin.deliver(input);
        }
    }
}

impl Node {
    /// Reads the `[tls]` files again and hands them to the transport: new
    /// connections use them, open ones keep theirs. The current identity
    /// stays if anything is wrong with the new files.
    fn reload_tls(&mut self) -> anyhow::Result<()> {
        let Some(tls) = &self.config.tls else {
            anyhow::bail!("this node does not use `[tls]`");
        };
        let identity = tls.load(&self.config.cluster_id, &self.config.node_id)?;
        self.transport
            .reload_tls(identity)
            .context("the transport refused the new certificate")?;
        tracing::info!(node = %self.config.node_id, cert = %tls.cert.display(), "TLS certificate reloaded");
        Ok(())
    }
}
