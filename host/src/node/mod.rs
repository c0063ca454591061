//! A running `tenure` node: the protocol component on real time, real
//! sockets and a real disk.
//!
//! One task owns the node's [`NodeCore`] (the protocol instance, the
//! plugin's view, the node's policy — shared with the simulator) in
//! [`Node::run`]'s loop. Everything else — the transport's reader tasks,
//! the admin endpoint, signal handling, the plugin's thread — talks to it
//! through channels. Each turn of the loop takes one input (a message, a
//! timer, a plugin's request, a command), hands it to the core, and
//! carries out the core's outputs in order: persist (synchronously, so
//! nothing that depends on a vote leaves before it is durable), then
//! sends, timers, events and plugin inputs.
//!
//! # Layout
//!
//! - [`state_file`]: the durable term, vote and membership.
//! - [`event_log`]: one JSON line per protocol event, for operators and tests.
//! - `hooks.rs`: `[hooks]`, shell commands run on protocol events.
//! - [`leadership`]: what applications see (`watch`, `/watch`, `/leader`),
//!   with the fencing token revoked a guard before the lease lapses.
//! - [`report`]: the status the admin endpoint serves.
//! - [`timers`]: the protocol's timers on tokio.
//! - [`forward`]: calls a follower forwards to its leader (and the node's
//!   side of it).
//! - [`swap`]: compiling new plugin versions off the task, and the plugin
//!   file watcher.

mod addresses;
mod commands;
pub mod data_lock;
pub mod durability;
pub mod event_log;
pub mod forward;
mod hooks;
pub mod leadership;
mod peer_events;
mod publish;
pub mod report;
pub mod state_file;
mod state_slots;
pub mod swap;
pub mod timers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tenure_transport::{Channel, Transport, TransportConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::bindings::types::{CampaignRefusal, ChangeRefusal, LogLevel, Options};
use crate::config::NodeConfig;
use crate::node_core::{CoreSettings, Lane, NodeCore, Output};
use crate::plugin::runner::{PluginHandle, PluginInput, PluginOutput};
use crate::plugin::{PluginComponent, ViewClock};
use crate::protocol::{ElectionComponent, Environment};
use durability::Durability;
use event_log::{EventLog, log_event};
use forward::Forwarded;
use leadership::{Leadership, Publisher, Subscriptions};
pub use report::NodeReport;
use state_file::StateFile;
use timers::Timers;

/// What the admin endpoint (or anything else) can ask of a node.
#[derive(Debug)]
pub enum Command {
    /// Reply with the node's status.
    Status(oneshot::Sender<NodeReport>),
    /// Reply with the `/metrics` scrape (see [`crate::metrics`]).
    Metrics(oneshot::Sender<String>),
    /// Give up leadership or a candidacy.
    StepDown(oneshot::Sender<()>),
    /// Start an election now; the reply says why not, if not.
    Campaign(oneshot::Sender<Result<(), CampaignRefusal>>),
    /// Hand leadership to a peer; the reply says why not, if not (a trap
    /// drops the reply: the node stops).
    Transfer {
        to: String,
        reply: oneshot::Sender<Result<(), ChangeRefusal>>,
    },
    /// Remove `node` from the membership for good; the protocol's refusal
    /// comes back as the error.
    Leave {
        node: String,
        reply: oneshot::Sender<Result<(), ChangeRefusal>>,
    },
    /// Ask this node's plugin for `inspect()`: the reply is where its
    /// answer will come, or why there is none (no plugin).
    Inspect(oneshot::Sender<Result<InspectAnswer, String>>),
    /// Pass a request to the plugin's `on-call` — the leader's, when this
    /// node follows one, unless `local`.
    Call {
        request: Vec<u8>,
        local: bool,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// Swap the protocol for this (already compiled) build; replies with
    /// the new build's version, or why the old one keeps running.
    SwapProtocol {
        component: Arc<ElectionComponent>,
        sha256: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Hot-swap the plugin for this (already compiled) version.
    SwapPlugin {
        component: Arc<PluginComponent>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Reply with the protocol's options and exported state, for a trial
    /// run of an uploaded build off this task.
    ProtocolState(oneshot::Sender<Result<(Options, Vec<u8>), String>>),
    /// Read the `[tls]` files again and use them for new connections (on
    /// SIGHUP, after a certificate rotation); the reply says why not.
    ReloadTls(oneshot::Sender<Result<(), String>>),
}

/// Where a plugin's `inspect()` pairs will arrive.
pub type InspectAnswer = oneshot::Receiver<Vec<(String, String)>>;

/// Real time and OS entropy for the protocol. Every build of the protocol
/// a node runs shares one origin, so times carry over a protocol swap.
struct SystemEnvironment {
    origin: Instant,
}

impl Environment for SystemEnvironment {
    fn now_ns(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn random_u64(&mut self) -> u64 {
        rand::random()
    }
}

/// Facts about the node fixed at start, for reports.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    /// sha256 of the protocol component, hex.
    pub protocol_sha256: String,
    /// The protocol build's version.
    pub protocol_version: String,
    /// Where the admin endpoint listens (its real port).
    pub admin: std::net::SocketAddr,
    /// Where peers connect.
    pub listen: std::net::SocketAddr,
}

/// The node's task: the shell around its [`NodeCore`], carrying out the
/// core's outputs on real sockets, disk and time.
pub struct Node {
    config: NodeConfig,
    core: NodeCore,
    transport: Transport,
    timers: Timers,
    state_file: StateFile,
    events: EventLog,
    identity: NodeIdentity,
    started: Instant,
    /// The protocol's clock origin (see [`SystemEnvironment`]).
    origin: Instant,
    plugin: Option<PluginHandle>,
    /// The leader followed and when its last message arrived.
    last_from_leader: Option<(String, Instant)>,
    /// The longest silence between two messages of the followed leader.
    max_leader_gap: Duration,
    /// When each peer's last frame arrived (`last_heard_ms` in `/status`).
    heard: report::LastHeard,
    /// Calls forwarded to the leader, waiting for its answer.
    forwarded: Forwarded,
    /// The state not yet on disk, if a save failed: see [`durability`].
    durability: Durability,
    /// Peers whose address this node has passed on (see `addresses`).
    addresses_passed_on: std::collections::BTreeSet<String>,
    /// Answers of this node's plugin to calls forwarded to it: (caller, id,
    /// answer), sent back by the loop.
    host_replies: mpsc::UnboundedSender<(String, u64, Result<Vec<u8>, String>)>,
    /// `[hooks]`, if any are configured.
    hooks: Option<hooks::Hooks>,
    /// Publishes the leadership applications see.
    publisher: Publisher,
    subscriptions: Subscriptions,
    metrics: crate::metrics::NodeMetrics,
}

/// The timer id of the lease guard (see [`leadership`]): the protocol
/// numbers its timers up from 1 and never reaches it.
const LEASE_GUARD_TIMER: u64 = u64::MAX;

/// What [`Node::start`] hands back besides the node: the channels its
/// [`Node::run`] loop reads.
pub struct NodeInputs {
    inbound: mpsc::Receiver<tenure_transport::Inbound>,
    peer_events: mpsc::Receiver<tenure_transport::PeerEvent>,
    plugin_outputs: mpsc::UnboundedReceiver<PluginOutput>,
    host_replies: mpsc::UnboundedReceiver<(String, u64, Result<Vec<u8>, String>)>,
}

/// The plugin a node runs: compiled, with its `[plugin]` settings.
pub struct PluginSetup {
    pub component: Arc<PluginComponent>,
    pub config: crate::config::PluginConfig,
}

impl Node {
    /// Loads the state, starts the transport and the protocol. The admin
    /// endpoint is started by the caller with [`Node::identity`] known.
    pub async fn start(
        config: NodeConfig,
        component: Arc<ElectionComponent>,
        protocol_sha256: String,
        admin: std::net::SocketAddr,
        plugin: Option<PluginSetup>,
    ) -> anyhow::Result<(Node, NodeInputs)> {
        let state_file = StateFile::open(&config.data_dir, &config.node_id, &config.cluster_id)?;
        let persisted = state_file.load()?;
        // The protocol starts first: it validates the timings, and a bad
        // config must fail before any socket is opened.
        let origin = Instant::now();
        let env = SystemEnvironment { origin };
        let protocol = component.instantiate(&config.node_id, Box::new(env))?;
        let options = Options {
            node_id: config.node_id.clone(),
            cluster_id: config.cluster_id.clone(),
            bootstrap: config
                .peers
                .keys()
                .cloned()
                .chain(std::iter::once(config.node_id.clone()))
                .collect(),
            timings: config.timings,
            pre_vote: config.pre_vote,
            priority: config.priority,
            voter: config.voter,
            joining: config.join,
        };
        let settings = CoreSettings {
            fast_failover: config.fast_failover,
            plugin_clock: plugin.as_ref().map(|_| ViewClock::Since(origin)),
        };
        let (mut core, outputs) = NodeCore::start(protocol, options, persisted.as_ref(), settings)
            .context("starting the election protocol")?;
        let (plugin_tx, plugin_outputs) = mpsc::unbounded_channel();
        // A failing became-leader hook refuses leadership as the plugin
        // would: through the same channel, to the same policy.
        let hooks = hooks::Hooks::start(&config.hooks, &config.node_id, plugin_tx.clone());
        let (host_replies_tx, host_replies) = mpsc::unbounded_channel();
        let plugin = match (plugin, core.view().cloned()) {
            (None, _) | (_, None) => None,
            (Some(setup), Some(view)) => {
                let limits = setup.config.limits();
                let handle = PluginHandle::start(
                    setup.component,
                    setup.config.config.clone(),
                    limits,
                    view,
                    plugin_tx,
                )
                .await
                .with_context(|| format!("starting plugin {}", setup.config.path.display()))?;
                Some(handle)
            }
        };
        let mut transport_config = TransportConfig::new(
            config.node_id.clone(),
            config.cluster_id.clone(),
            config.secret.clone(),
            config.listen,
        );
        transport_config.peers = config.peers.clone();
        config.peer_limits.apply(&mut transport_config);
        if let Some(tls) = &config.tls {
            let identity = tls.load(&config.cluster_id, &config.node_id)?;
            transport_config.security = tenure_transport::Security::MutualTls(identity);
        }
        // Redial a lost peer at least once per heartbeat interval: a
        // restarted node must hear the leader before its election timer
        // (at least two heartbeat intervals) runs out.
        transport_config.reconnect_max =
            Duration::from_millis(u64::from(config.timings.heartbeat_interval_ms))
                .max(transport_config.reconnect_min);
        let (transport, inbound, peer_events) = Transport::start(transport_config)
            .await
            .with_context(|| format!("listening for peers on {}", config.listen))?;
        // Test-only delay and loss (tests/netns.rs); off unless named.
        let inbound = match std::env::var_os(tenure_transport::faults::ENV_VAR) {
            Some(control) => tenure_transport::faults::wrap(inbound, control.into()),
            None => inbound,
        };
        let events = EventLog::open(&config.data_dir, &config.node_id)?;
        let identity = NodeIdentity {
            protocol_version: core
                .protocol()
                .version()
                .context("asking the protocol its version")?,
            protocol_sha256,
            admin,
            listen: transport.local_addr(),
        };
        let first = Leadership::of(core.status(), origin, config.lease_guard, Instant::now())
            .with_plugin(plugin.as_ref().map(|p| p.sha256()));
        let (publisher, subscriptions) = Publisher::new(first);
        let mut node = Node {
            config,
            core,
            transport,
            timers: Timers::new().context("creating the node's timer")?,
            state_file,
            events,
            identity,
            started: Instant::now(),
            origin,
            plugin,
            last_from_leader: None,
            max_leader_gap: Duration::ZERO,
            heard: report::LastHeard::default(),
            forwarded: Forwarded::default(),
            durability: Durability::default(),
            addresses_passed_on: std::collections::BTreeSet::new(),
            host_replies: host_replies_tx,
            hooks,
            publisher,
            subscriptions,
            metrics: Default::default(),
        };
        node.perform(outputs)?;
        let inputs = NodeInputs {
            inbound,
            peer_events,
            plugin_outputs,
            host_replies,
        };
        Ok((node, inputs))
    }

    /// Runs until `shutdown` is cancelled or a fatal error (a trapped
    /// protocol) stops the node. A failed persist is not fatal: the node
    /// goes quiet until a save succeeds (see [`durability`]).
    pub async fn run(
        mut self,
        inputs: NodeInputs,
        mut commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let NodeInputs {
            mut inbound,
            mut peer_events,
            mut plugin_outputs,
            mut host_replies,
        } = inputs;
        tracing::info!(
            node = %self.config.node_id,
            cluster = %self.config.cluster_id,
            listen = %self.identity.listen,
            admin = %self.identity.admin,
            plugin = self.plugin.as_ref().map(|p| p.name()),
            "node started"
        );
        let result = loop {
            let retry_at = self
                .durability
                .next_retry_ns()
                .map(|ns| self.origin + Duration::from_nanos(ns));
            let outputs = tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                _ = sleep_until_some(retry_at) => {
                    let (file, now) = (&self.state_file, self.now_ns());
                    self.durability
                        .retry(now, |s| file.save(s).context("persisting term and vote"));
                    continue;
                }
                Some(message) = inbound.recv() => {
                    self.pass_on_address(&message.from);
                    self.heard.note(&message.from);
                    let lane = match message.channel {
                        Channel::Protocol => {
                            self.note_leader_message(&message.from);
                            Lane::Protocol
                        }
                        Channel::Plugin => Lane::Plugin,
                        Channel::Host => {
                            self.on_host_message(message.from, &message.payload);
                            continue;
                        }
                    };
                    self.core.on_message(&message.from, lane, message.payload)
                },
                Some((caller, id, answer)) = host_replies.recv() => {
                    let reply = forward::HostMessage::Reply { id, answer }.encode();
                    let _ = self.transport.send(&caller, Channel::Host, reply);
                    continue;
                }
                id = self.timers.next_expired() => {
                    if id == LEASE_GUARD_TIMER {
                        // The lease was not renewed in time: revoke the token.
                        self.publish_leadership();
                        continue;
                    }
                    self.core.on_timer(id)
                }
                Some(output) = plugin_outputs.recv() => self.core.on_plugin_output(output),
                Some(event) = peer_events.recv() => match self.on_peer_event(event) {
                    Ok(Some(outputs)) => outputs,
                    Ok(None) => continue,
                    Err(fatal) => break Err(fatal),
                },
                Some(command) = commands.recv() => match self.on_command(command) {
                    Some(outputs) => outputs,
                    None => continue,
                },
            };
            let performed = outputs
                .context("the election protocol trapped")
                .and_then(|outputs| self.perform(outputs));
            if let Err(e) = performed {
                break Err(e);
            }
        };
        tracing::info!(node = %self.config.node_id, "node stopping");
        drop(self.plugin.take());
        self.transport.shutdown().await;
        result
    }

    /// Moves the protocol's whole state into an instance of another build
    /// and makes it current (see [`NodeCore::swap_protocol`]); on any
    /// failure the old instance keeps running. Runs on the node's task, so
    /// nothing interleaves with it.
    fn swap_protocol(
        &mut self,
        component: &ElectionComponent,
    ) -> anyhow::Result<(String, Vec<Output>)> {
        let env = SystemEnvironment {
            origin: self.origin,
        };
        let next = component.instantiate(&self.config.node_id, Box::new(env))?;
        let (version, outputs) = self.core.swap_protocol(next)?;
        tracing::info!(node = %self.config.node_id, %version, "protocol swapped");
        Ok((version, outputs))
    }

    /// Tracks the longest silence of the leader this node follows: the
    /// figure that says whether heartbeats kept flowing (reported as
    /// `max_leader_gap_ms`).
    fn note_leader_message(&mut self, from: &str) {
        if self.core.status().leader.as_deref() != Some(from) {
            return;
        }
        let now = Instant::now();
        match &self.last_from_leader {
            Some((leader, at)) if leader == from => {
                self.max_leader_gap = self.max_leader_gap.max(now - *at);
            }
            _ => {}
        }
        self.last_from_leader = Some((from.to_string(), now));
    }

    /// Facts fixed at start.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// Carries out the core's outputs in order. A failed persist is
    /// fatal: sending what depends on it would break the one-vote-per-term
    /// rule.
    fn perform(&mut self, outputs: Vec<Output>) -> anyhow::Result<()> {
        let changed = outputs.iter().any(|o| matches!(o, Output::StatusChanged));
        self.perform_in_order(outputs)?;
        if changed {
            self.publish_leadership();
        }
        Ok(())
    }

    fn perform_in_order(&mut self, outputs: Vec<Output>) -> anyhow::Result<()> {
        let node = self.config.node_id.as_str();
        for output in outputs {
            match output {
                Output::Persist(state) => {
                    let (file, now, started) = (&self.state_file, self.now_ns(), Instant::now());
                    self.durability.persist(state, now, |s| {
                        file.save(s).context("persisting term and vote")
                    });
                    let took = started.elapsed();
                    self.metrics.persisted(took);
                    durability::warn_if_slow(node, took);
                }
                Output::Send {
                    lane: Lane::Protocol,
                    ..
                } if self.durability.quiet() => self.durability.withhold(),
                Output::Send { to, lane, payload } => {
                    if lane == Lane::Protocol {
                        self.metrics.on_sent(&payload);
                    }
                    let channel = match lane {
                        Lane::Protocol => Channel::Protocol,
                        Lane::Plugin => Channel::Plugin,
                    };
                    if let Err(e) = self.transport.send(&to, channel, payload) {
                        tracing::trace!(node, peer = %to, ?lane, error = %e, "not sent");
                    }
                }
                Output::SetTimer { id, after_ns } => self.timers.set(id, after_ns),
                Output::CancelTimer { id } => self.timers.cancel(id),
                Output::Event(event) => {
                    log_event(node, &event);
                    self.metrics.on_event(&event, self.core.status());
                    if let Some(hooks) = &self.hooks {
                        hooks.on_event(&event, self.core.status());
                    }
                    if let Err(e) = self.events.append(&event) {
                        tracing::warn!(node, error = %format!("{e:#}"), "event log write failed");
                    }
                }
                Output::ToPlugin(input) => {
                    if let Some(plugin) = &self.plugin {
                        plugin.deliver(input);
                    }
                }
                // Both were written to `tracing` where they were made.
                Output::ProtocolLog { .. } | Output::PluginLog { .. } => {}
                Output::Notice { level, message } => match level {
                    LogLevel::Error => tracing::error!(node, "{message}"),
                    LogLevel::Warn => tracing::warn!(node, "{message}"),
                    _ => tracing::info!(node, "{message}"),
                },
                Output::StatusChanged => {}
                Output::PluginSwapped { name, sha256 } => {
                    tracing::info!(node, plugin = %name, %sha256, "plugin swapped in");
                    let now = self.publisher.current().with_plugin(Some(sha256));
                    self.publisher.publish(now);
                }
            }
        }
        Ok(())
    }
}

/// Sleeps until `at`; forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Node {
    /// Now on the protocol's clock (nanoseconds since `origin`).
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
