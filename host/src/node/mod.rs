//! A running `tenure` node: the protocol component on real time, real
//! sockets and a real disk.
//!
//! One task owns the protocol's store ([`run`]'s loop). Everything else —
//! the transport's reader tasks, the admin endpoint, signal handling —
//! talks to it through channels. Each turn of the loop takes one input (a
//! message, a timer, a command), makes one call into the component, and
//! carries out the effects in order: persist (synchronously, so nothing that
//! depends on a vote leaves before it is durable), then sends, timers and
//! events.
//!
//! # Layout
//!
//! - [`state_file`]: the durable term, vote and membership.
//! - [`event_log`]: one JSON line per protocol event, for operators and tests.
//! - [`report`]: the status the admin endpoint serves.
//! - [`timers`]: the protocol's timers on tokio.
//! - [`forward`]: calls a follower forwards to its leader (and the node's
//!   side of it).
//! - `plugin_bridge.rs`: the node's side of its plugin: inputs, outputs,
//!   refusals of leadership, the plugin's view of the node.
//! - [`swap`]: compiling new plugin versions off the task, and the plugin
//!   file watcher.

mod addresses;
mod commands;
pub mod event_log;
pub mod forward;
mod plugin_bridge;
pub mod report;
pub mod state_file;
pub mod swap;
pub mod timers;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tenure_transport::{Channel, PeerEvent, Transport, TransportConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::bindings::types::{Event, Options, Role};
use crate::config::NodeConfig;
use crate::plugin::backoff::RefusalBackoff;
use crate::plugin::runner::{PluginHandle, PluginInput, PluginOutput};
use crate::plugin::{LeaderView, PluginComponent, PluginLimits, SharedView, ViewClock};
use crate::protocol::{Effect, ElectionComponent, Environment, ProtocolInstance};
use event_log::EventLog;
use forward::Forwarded;
pub use report::NodeReport;
use state_file::StateFile;
use timers::Timers;

/// What the admin endpoint (or anything else) can ask of a node.
#[derive(Debug)]
pub enum Command {
    /// Reply with the node's status.
    Status(oneshot::Sender<NodeReport>),
    /// Give up leadership or a candidacy.
    StepDown(oneshot::Sender<()>),
    /// Start an election now; the reply says why not, if not.
    Campaign(oneshot::Sender<Result<(), String>>),
    /// Hand leadership to a peer; the reply says why not, if not.
    Transfer {
        to: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Remove `node` from the membership for good; the protocol's refusal
    /// comes back as the error.
    Leave {
        node: String,
        reply: oneshot::Sender<Result<(), String>>,
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

/// The node's task: owns the protocol instance and drives it.
pub struct Node {
    config: NodeConfig,
    protocol: ProtocolInstance,
    transport: Transport,
    timers: Timers,
    state_file: StateFile,
    events: EventLog,
    identity: NodeIdentity,
    started: Instant,
    /// The protocol's clock origin (see [`SystemEnvironment`]).
    origin: Instant,
    /// The options the protocol was started with, for a protocol swap.
    options: Options,
    plugin: Option<PluginHandle>,
    view: SharedView,
    /// After a plugin refuses leadership, timers are held (so the node does
    /// not campaign) until this instant, then delivered.
    hold_timers_until: Option<tokio::time::Instant>,
    held_timers: Vec<u64>,
    refusal_backoff: RefusalBackoff,
    /// The leader followed and when its last message arrived.
    last_from_leader: Option<(String, Instant)>,
    /// The longest silence between two messages of the followed leader.
    max_leader_gap: Duration,
    /// Calls forwarded to the leader, waiting for its answer.
    forwarded: Forwarded,
    /// Peers whose address this node has passed on (see `addresses`).
    addresses_passed_on: std::collections::BTreeSet<String>,
    /// Answers of this node's plugin to calls forwarded to it: (caller, id,
    /// answer), sent back by the loop.
    host_replies: mpsc::UnboundedSender<(String, u64, Result<Vec<u8>, String>)>,
}

/// What [`Node::start`] hands back besides the node: the channels its
/// [`Node::run`] loop reads.
pub struct NodeInputs {
    inbound: mpsc::Receiver<tenure_transport::Inbound>,
    peer_events: mpsc::Receiver<PeerEvent>,
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
        let mut protocol = component.instantiate(&config.node_id, Box::new(env))?;
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
        let effects = protocol
            .start(&options, persisted.as_ref())
            .context("starting the election protocol")?;
        let view: SharedView = Arc::new(Mutex::new(LeaderView {
            node_id: config.node_id.clone(),
            cluster_id: config.cluster_id.clone(),
            role: Role::Follower,
            term: persisted.as_ref().map_or(0, |p| p.term),
            leader: None,
            peers: Vec::new(),
            members: options.bootstrap.clone(),
            lease_expires_ns: None,
            clock: ViewClock::Since(origin),
        }));
        let (plugin_tx, plugin_outputs) = mpsc::unbounded_channel();
        let (host_replies_tx, host_replies) = mpsc::unbounded_channel();
        let plugin = match plugin {
            None => None,
            Some(setup) => {
                let limits = PluginLimits {
                    deadline: Duration::from_millis(setup.config.deadline_ms),
                    memory_bytes: usize::try_from(setup.config.memory_mib << 20)
                        .unwrap_or(usize::MAX),
                };
                let handle = PluginHandle::start(
                    setup.component,
                    setup.config.config.clone(),
                    limits,
                    view.clone(),
                    plugin_tx,
                )
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
        // Redial a lost peer at least once per heartbeat interval: a
        // restarted node must hear the leader before its election timer
        // (at least two heartbeat intervals) runs out.
        transport_config.reconnect_max =
            Duration::from_millis(u64::from(config.timings.heartbeat_interval_ms))
                .max(transport_config.reconnect_min);
        let (transport, inbound, peer_events) = Transport::start(transport_config)
            .await
            .with_context(|| format!("listening for peers on {}", config.listen))?;
        let events = EventLog::open(&config.data_dir, &config.node_id)?;
        let identity = NodeIdentity {
            protocol_version: protocol
                .version()
                .context("asking the protocol its version")?,
            protocol_sha256,
            admin,
            listen: transport.local_addr(),
        };
        let mut node = Node {
            config,
            protocol,
            transport,
            timers: Timers::default(),
            state_file,
            events,
            identity,
            started: Instant::now(),
            origin,
            options: options.clone(),
            plugin,
            view,
            hold_timers_until: None,
            held_timers: Vec::new(),
            refusal_backoff: RefusalBackoff::default(),
            last_from_leader: None,
            max_leader_gap: Duration::ZERO,
            forwarded: Forwarded::default(),
            addresses_passed_on: std::collections::BTreeSet::new(),
            host_replies: host_replies_tx,
        };
        node.apply(effects)?;
        let inputs = NodeInputs {
            inbound,
            peer_events,
            plugin_outputs,
            host_replies,
        };
        Ok((node, inputs))
    }

    /// Runs until `shutdown` is cancelled or a fatal error (a trapped
    /// protocol, a failed persist) stops the node.
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
            let hold = self.hold_timers_until;
            let effects = tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                Some(message) = inbound.recv() => {
                    self.pass_on_address(&message.from);
                    match message.channel {
                    Channel::Protocol => {
                        self.note_leader_message(&message.from);
                        self.protocol.on_message(&message.from, &message.payload)
                    }
                    Channel::Plugin => {
                        self.to_plugin(PluginInput::Message { from: message.from, payload: message.payload });
                        continue;
                    }
                    Channel::Host => {
                        self.on_host_message(message.from, &message.payload);
                        continue;
                    }
                }},
                Some((caller, id, answer)) = host_replies.recv() => {
                    let reply = forward::HostMessage::Reply { id, answer }.encode();
                    let _ = self.transport.send(&caller, Channel::Host, reply);
                    continue;
                }
                Some(id) = self.timers.next_expired() => {
                    if hold.is_some() {
                        self.held_timers.push(id);
                        continue;
                    }
                    self.protocol.on_timer(id)
                }
                _ = sleep_until(hold) => {
                    self.hold_timers_until = None;
                    tracing::info!(node = %self.config.node_id, "leadership back-off over");
                    let held = std::mem::take(&mut self.held_timers);
                    let mut all = Ok(Vec::new());
                    for id in held {
                        all = all.and_then(|mut acc: Vec<Effect>| {
                            acc.extend(self.protocol.on_timer(id)?);
                            Ok(acc)
                        });
                    }
                    all
                }
                Some(output) = plugin_outputs.recv() => match self.on_plugin_output(output) {
                    Some(effects) => effects,
                    None => continue,
                },
                Some(event) = peer_events.recv() => match self.on_peer_event(event) {
                    Ok(Some(effects)) => effects,
                    Ok(None) => continue,
                    Err(fatal) => break Err(fatal),
                },
                Some(command) = commands.recv() => match self.on_command(command) {
                    Some(effects) => effects,
                    None => continue,
                },
            };
            let applied = effects
                .context("the election protocol trapped")
                .and_then(|effects| self.apply(effects));
            if let Err(e) = applied {
                break Err(e);
            }
        };
        tracing::info!(node = %self.config.node_id, "node stopping");
        drop(self.plugin.take());
        self.transport.shutdown().await;
        result
    }

    /// Moves the protocol's whole state into an instance of another build
    /// and makes it current; on any failure the old instance keeps running.
    /// The timers the old build armed stay armed here and fire into the new
    /// one. Runs on the node's task, so nothing interleaves with it.
    fn swap_protocol(
        &mut self,
        component: &ElectionComponent,
    ) -> anyhow::Result<(String, Vec<Effect>)> {
        let state = self
            .protocol
            .export_state()
            .context("the running protocol trapped exporting its state")?;
        let env = SystemEnvironment {
            origin: self.origin,
        };
        let mut next = component.instantiate(&self.config.node_id, Box::new(env))?;
        let effects = next.import_state(&self.options, &state)?;
        let version = next.version().context("asking the new build its version")?;
        self.protocol = next;
        tracing::info!(node = %self.config.node_id, %version, "protocol swapped");
        Ok((version, effects))
    }

    /// Tracks the longest silence of the leader this node follows: the
    /// figure that says whether heartbeats kept flowing (reported as
    /// `max_leader_gap_ms`).
    fn note_leader_message(&mut self, from: &str) {
        let following = self.view_snapshot().leader;
        if following.as_deref() != Some(from) {
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

    /// Connection news from the transport. A refused reconnect to the
    /// leader is how a crashed leader shows (its kernel closed our
    /// connection and no process listens any more): the protocol is told,
    /// so it can campaign without waiting out the election timeout.
    ///
    /// A peer that refused this process as a duplicate (another live
    /// process holds this node id there) is fatal: this process stops, so
    /// two processes can never both count as one node.
    fn on_peer_event(
        &mut self,
        event: PeerEvent,
    ) -> anyhow::Result<Option<anyhow::Result<Vec<Effect>>>> {
        Ok(match event {
            PeerEvent::Connected { peer } => {
                tracing::debug!(node = %self.config.node_id, %peer, "connected");
                self.share_addresses(&peer);
                None
            }
            PeerEvent::Disconnected { peer } => {
                tracing::info!(node = %self.config.node_id, %peer, "connection lost");
                None
            }
            PeerEvent::RefusedAsDuplicate { peer, reason } => {
                anyhow::bail!(
                    "another live process already runs as node {}: {peer} says \"{reason}\"; \
                     this one stops (stop the other, or give this one its own node id and \
                     data directory)",
                    self.config.node_id
                );
            }
            PeerEvent::DuplicateId { peer } => {
                tracing::error!(
                    node = %self.config.node_id,
                    %peer,
                    "a second live process claims this peer's node id and was refused; stop one \
                     of them (a copied config, or a node started twice?)"
                );
                None
            }
            PeerEvent::Unreachable { peer } => {
                tracing::debug!(node = %self.config.node_id, %peer, "unreachable");
                if !self.config.fast_failover {
                    return Ok(None);
                }
                Some(self.protocol.peer_unreachable(&peer))
            }
        })
    }

    /// Carries out a call's effects in order. A failed persist is fatal:
    /// sending what depends on it would break the one-vote-per-term rule.
    fn apply(&mut self, effects: Vec<Effect>) -> anyhow::Result<()> {
        for effect in effects {
            match effect {
                Effect::Persist(state) => {
                    self.state_file
                        .save(&state)
                        .context("persisting term and vote")?;
                }
                Effect::Send { to, payload } => {
                    if let Err(e) = self.transport.send(&to, Channel::Protocol, payload) {
                        tracing::trace!(node = %self.config.node_id, peer = %to, error = %e, "not sent");
                    }
                }
                Effect::SetTimer { id, after_ns } => self.timers.set(id, after_ns),
                Effect::CancelTimer { id } => self.timers.cancel(id),
                Effect::Emit(event) => self.on_event(&event),
                Effect::Log { .. } => {}
            }
        }
        // The lease moves with every acknowledged heartbeat, not only with
        // events: keep the plugin's view of it current.
        if self.plugin.is_some()
            && let Ok(status) = self.protocol.status()
        {
            self.refresh_view(&status);
        }
        Ok(())
    }

    fn on_event(&mut self, event: &Event) {
        let node = self.config.node_id.as_str();
        match event {
            Event::BecameLeader(term) => tracing::info!(node, term, "became leader"),
            Event::BecameFollower(f) => {
                tracing::info!(node, term = f.term, leader = ?f.leader, "became follower");
            }
            Event::TermChanged(t) => {
                tracing::debug!(node, old = t.old, new = t.new, "term changed")
            }
            Event::PeerJoined(peer) => tracing::info!(node, %peer, "peer joined"),
            Event::PeerLeft(peer) => tracing::info!(node, %peer, "peer left"),
        }
        if let Err(e) = self.events.append(event) {
            tracing::warn!(node, error = %format!("{e:#}"), "event log write failed");
        }
        if let Ok(status) = self.protocol.status() {
            self.refresh_view(&status);
        }
        self.to_plugin(PluginInput::Event(event.clone()));
    }

    fn report(&mut self) -> NodeReport {
        let status = self.protocol.status().ok();
        if let Some(status) = &status {
            self.refresh_view(status);
        }
        let plugin = self.plugin.as_ref().map(|p| report::PluginReport {
            name: p.name(),
            sha256: p.sha256(),
        });
        let now_ns = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let lease_status = status.clone();
        NodeReport::new(
            plugin,
            self.max_leader_gap,
            &self.config,
            &self.identity,
            status,
            self.transport.stats(),
            self.started.elapsed(),
        )
        .with_lease(lease_status.as_ref(), now_ns)
    }
}

/// Sleeps until `deadline`, or forever if there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
