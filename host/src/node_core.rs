//! The node's policy, without I/O: one type that a real node (on tokio,
//! sockets and a disk) and the simulator (in virtual time) both drive, so
//! the simulator proves what the node does.
//!
//! A [`NodeCore`] owns the node's protocol instance, the view its plugin
//! reads, and what the node decides about its plugin's requests. It takes
//! inputs — a message, a timer, a peer reported dead, a plugin's output,
//! an operator's command — and returns the [`Output`]s to carry out, in
//! order. It never sends, sleeps or writes: its shell does.
//!
//! ```text
//! let (mut core, outputs) = NodeCore::start(protocol, options, persisted, settings)?;
//! perform(outputs);                    // persist, send, arm timers, …
//! loop {
//!     let outputs = match next_input {
//!         message  => core.on_message(&from, lane, payload)?,
//!         timer    => core.on_timer(id)?,
//!         plugin   => core.on_plugin_output(output)?,
//!         …
//!     };
//!     perform(outputs);                // in order: a persist before the sends after it
//! }
//! ```
//!
//! An `Err` from any call is a trap of the protocol component: its store
//! is unusable, and the shell stops the node (the simulator records a
//! violation and crashes it).

use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use crate::bindings::types::{
    CampaignRefusal, ChangeRefusal, Event, LogLevel, NodeStatus, Options, PersistedState, Role,
};
use crate::plugin::backoff::RefusalBackoff;
use crate::plugin::driver::{PluginInput, PluginOutput};
use crate::plugin::{LeaderView, SharedView, ViewClock};
use crate::protocol::{Effect, ProtocolInstance};

/// Which layer a message is for: the protocol, or the behaviour plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Election messages, for the protocol component.
    Protocol,
    /// Bytes between the nodes' behaviour plugins.
    Plugin,
}

/// One thing the shell must do, in the order given.
#[derive(Debug)]
pub enum Output {
    /// Store this state durably before carrying out anything after it.
    Persist(PersistedState),
    /// Send `payload` to the peer `to` on `lane`. Best effort.
    Send {
        to: String,
        lane: Lane,
        payload: Vec<u8>,
    },
    /// Call [`NodeCore::on_timer`] with `id` after `after_ns`.
    SetTimer { id: u64, after_ns: u64 },
    /// Forget the timer `id`.
    CancelTimer { id: u64 },
    /// A protocol event, for operators (logs, the event log, a checker).
    /// The plugin gets its copy as a [`Output::ToPlugin`] right after.
    Event(Event),
    /// Hand this input to the node's plugin (only when it runs one).
    ToPlugin(PluginInput),
    /// A line the protocol logged (already written to `tracing`).
    ProtocolLog { level: LogLevel, message: String },
    /// A line the plugin logged (already written to `tracing`).
    PluginLog { level: LogLevel, message: String },
    /// Something the node decided, worth an operator's attention (not yet
    /// written anywhere).
    Notice { level: LogLevel, message: String },
    /// [`NodeCore::status`] changed (role, term, leader, lease, members or
    /// peers). Comes after everything else of the same call.
    StatusChanged,
    /// The plugin was hot-swapped: this version runs now.
    PluginSwapped { name: String, sha256: String },
}

/// How a node treats what its host observes; fixed at start.
#[derive(Clone, Debug)]
pub struct CoreSettings {
    /// Whether a peer reported dead is passed to the protocol (fast
    /// failover; see `peer-unreachable` in `wit/protocol.wit`).
    pub fast_failover: bool,
    /// The clock the plugin's view measures the lease on, when the node
    /// runs a plugin; `None` for a node without one.
    pub plugin_clock: Option<ViewClock>,
}

/// The node's policy around its protocol instance. See the module docs.
pub struct NodeCore {
    protocol: ProtocolInstance,
    options: Options,
    settings: CoreSettings,
    /// The view the plugin reads, when the node runs one.
    view: Option<SharedView>,
    refusals: RefusalBackoff,
    /// Transfers the plugin asked for that the protocol refused, for the
    /// rate limit on their warning (logged at the 1st, 2nd, 4th, 8th…).
    transfers_refused: u64,
}

impl NodeCore {
    /// Starts the protocol on `protocol` (a fresh instance) with the state
    /// the node last persisted. A refusal of `options` comes back as the
    /// error (an [`crate::protocol::InvalidOptions`]).
    pub fn start(
        mut protocol: ProtocolInstance,
        options: Options,
        persisted: Option<&PersistedState>,
        settings: CoreSettings,
    ) -> anyhow::Result<(NodeCore, Vec<Output>)> {
        let effects = protocol.start(&options, persisted)?;
        let view = settings.plugin_clock.clone().map(|clock| {
            Arc::new(Mutex::new(LeaderView::from_status(
                protocol.status(),
                clock,
            )))
        });
        let mut core = NodeCore {
            protocol,
            options,
            settings,
            view,
            refusals: RefusalBackoff::default(),
            transfers_refused: 0,
        };
        let outputs = core.outputs(effects);
        Ok((core, outputs))
    }

    /// The node's status, as of the latest call: kept from the protocol's
    /// reports, so reading it costs nothing.
    pub fn status(&self) -> &NodeStatus {
        self.protocol.status()
    }

    /// The view the node's plugin reads (hand it to the plugin's driver),
    /// if the node runs one.
    pub fn view(&self) -> Option<&SharedView> {
        self.view.as_ref()
    }

    /// The options the protocol was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The running protocol's whole state, as [`NodeCore::swap_protocol`]
    /// would hand it over: for a trial of another build first
    /// ([`crate::ElectionComponent::trial`]).
    pub fn export_state(&mut self) -> anyhow::Result<Vec<u8>> {
        self.protocol
            .export_state()
            .context("the running protocol trapped exporting its state")
    }

    /// The protocol instance, for what the core does not wrap (its
    /// version, a status query in tests).
    pub fn protocol(&mut self) -> &mut ProtocolInstance {
        &mut self.protocol
    }

    /// A message from `from` on `lane`.
    pub fn on_message(
        &mut self,
        from: &str,
        lane: Lane,
        payload: Vec<u8>,
    ) -> anyhow::Result<Vec<Output>> {
        match lane {
            Lane::Protocol => {
                let effects = self.protocol.on_message(from, &payload)?;
                Ok(self.outputs(effects))
            }
            Lane::Plugin => Ok(self.to_plugin(PluginInput::Message {
                from: from.to_string(),
                payload,
            })),
        }
    }

    /// Timer `id` expired.
    pub fn on_timer(&mut self, id: u64) -> anyhow::Result<Vec<Output>> {
        let effects = self.protocol.on_timer(id)?;
        Ok(self.outputs(effects))
    }

    /// The host saw `peer`'s process die (its connection closed and a
    /// redial was refused). Passed on only with fast failover.
    pub fn peer_unreachable(&mut self, peer: &str) -> anyhow::Result<Vec<Output>> {
        if !self.settings.fast_failover {
            return Ok(Vec::new());
        }
        let effects = self.protocol.peer_unreachable(peer)?;
        Ok(self.outputs(effects))
    }

    /// Carries out what the plugin asked for: messages to its peers, a
    /// transfer of leadership, or a refusal to lead — after which the node
    /// stands aside for a back-off that doubles with each refusal in a row
    /// (see [`crate::plugin::backoff`]).
    pub fn on_plugin_output(&mut self, output: PluginOutput) -> anyhow::Result<Vec<Output>> {
        Ok(match output {
            PluginOutput::Send { peer, payload } => vec![Output::Send {
                to: peer,
                lane: Lane::Plugin,
                payload,
            }],
            PluginOutput::Broadcast { payload } => self
                .status()
                .alive_peers
                .iter()
                .map(|peer| Output::Send {
                    to: peer.clone(),
                    lane: Lane::Plugin,
                    payload: payload.clone(),
                })
                .collect(),
            PluginOutput::Log { level, message } => vec![Output::PluginLog { level, message }],
            PluginOutput::AcceptedLeadership { .. } => {
                self.refusals.accepted();
                Vec::new()
            }
            PluginOutput::Swapped { name, sha256 } => vec![Output::PluginSwapped { name, sha256 }],
            PluginOutput::TransferLeadership { to } => match self.protocol.transfer_leadership(&to)
            {
                Ok(effects) => self.outputs(effects),
                Err(refused) => {
                    self.transfers_refused = self.transfers_refused.saturating_add(1);
                    if !self.transfers_refused.is_power_of_two() {
                        return Ok(Vec::new());
                    }
                    vec![Output::Notice {
                        level: LogLevel::Warn,
                        message: format!(
                            "plugin's transfer to {to} refused ({} refused so far; logged at \
                             powers of two): {refused:#}",
                            self.transfers_refused
                        ),
                    }]
                }
            },
            PluginOutput::RefuseLeadership { term, reason } => {
                let status = self.status();
                if status.role != Role::Leader || status.term != term {
                    return Ok(Vec::new());
                }
                let hold = self.refusals.refused();
                let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
                let effects = self.protocol.stand_aside(hold_ms)?;
                let mut outputs = vec![Output::Notice {
                    level: LogLevel::Warn,
                    message: format!(
                        "plugin refused leadership at term {term} ({reason}); standing aside \
                         for {hold_ms} ms"
                    ),
                }];
                outputs.extend(self.outputs(effects));
                outputs
            }
        })
    }

    /// Gives up leadership or a candidacy.
    pub fn step_down(&mut self) -> anyhow::Result<Vec<Output>> {
        let effects = self.protocol.step_down()?;
        Ok(self.outputs(effects))
    }

    /// Starts an election now, or says why not (the refusal changes
    /// nothing but for a log line).
    pub fn campaign(&mut self) -> anyhow::Result<(Vec<Output>, Result<(), CampaignRefusal>)> {
        let (effects, answer) = self.protocol.campaign()?;
        Ok((self.outputs(effects), answer))
    }

    /// Hands leadership to `to`. `Ok(Err(refusal))` is the protocol's
    /// refusal, which changes nothing.
    pub fn transfer_leadership(
        &mut self,
        to: &str,
    ) -> anyhow::Result<Result<Vec<Output>, ChangeRefusal>> {
        self.refusable(|p| p.transfer_leadership(to))
    }

    /// Removes `member` for good. `Ok(Err(refusal))` is the protocol's
    /// refusal, which changes nothing.
    pub fn leave(&mut self, member: &str) -> anyhow::Result<Result<Vec<Output>, ChangeRefusal>> {
        self.refusable(|p| p.leave(member))
    }

    /// Asks `peer`'s cluster to admit this node.
    pub fn join(&mut self, peer: &str) -> anyhow::Result<Vec<Output>> {
        let effects = self.protocol.join(peer)?;
        Ok(self.outputs(effects))
    }

    /// Moves the protocol's whole state into `next` (a fresh instance of
    /// another build) and makes it current; returns the new build's
    /// version. On any failure the old instance keeps running, untouched.
    /// Timers the old build armed stay armed and fire into the new one.
    pub fn swap_protocol(
        &mut self,
        mut next: ProtocolInstance,
    ) -> anyhow::Result<(String, Vec<Output>)> {
        let state = self
            .protocol
            .export_state()
            .context("the running protocol trapped exporting its state")?;
        let effects = next.import_state(&self.options, &state)?;
        let version = next.version().context("asking the new build its version")?;
        self.protocol = next;
        Ok((version, self.outputs(effects)))
    }

    /// A call the protocol may refuse ([`crate::protocol::Refused`]),
    /// told apart from a trap, which poisons the instance.
    fn refusable(
        &mut self,
        call: impl FnOnce(&mut ProtocolInstance) -> anyhow::Result<Vec<Effect>>,
    ) -> anyhow::Result<Result<Vec<Output>, ChangeRefusal>> {
        match call(&mut self.protocol) {
            Ok(effects) => Ok(Ok(self.outputs(effects))),
            Err(error) => match error.downcast_ref::<crate::protocol::Refused>() {
                Some(refused) => Ok(Err(refused.0.clone())),
                None => Err(error),
            },
        }
    }

    fn to_plugin(&self, input: PluginInput) -> Vec<Output> {
        if self.view.is_some() {
            vec![Output::ToPlugin(input)]
        } else {
            Vec::new()
        }
    }

    /// The shell's outputs for the protocol's `effects`, in their order;
    /// the plugin's view is brought up to date first, so the events it is
    /// handed find it current.
    fn outputs(&mut self, effects: Vec<Effect>) -> Vec<Output> {
        let changed = effects.iter().any(|e| matches!(e, Effect::StatusChanged));
        if changed && let Some(view) = &self.view {
            view.lock()
                .unwrap_or_else(|e| e.into_inner())
                .update(self.protocol.status());
        }
        let mut outputs = Vec::with_capacity(effects.len() + 1);
        for effect in effects {
            match effect {
                Effect::Persist(state) => outputs.push(Output::Persist(state)),
                Effect::Send { to, payload } => outputs.push(Output::Send {
                    to,
                    lane: Lane::Protocol,
                    payload,
                }),
                Effect::SetTimer { id, after_ns } => {
                    outputs.push(Output::SetTimer { id, after_ns })
                }
                Effect::CancelTimer { id } => outputs.push(Output::CancelTimer { id }),
                Effect::Emit(event) => {
                    outputs.push(Output::Event(event.clone()));
                    outputs.extend(self.to_plugin(PluginInput::Event(event)));
                }
                Effect::Log { level, message } => {
                    outputs.push(Output::ProtocolLog { level, message })
                }
                Effect::StatusChanged => {}
            }
        }
        if changed {
            outputs.push(Output::StatusChanged);
        }
        outputs
    }
}
