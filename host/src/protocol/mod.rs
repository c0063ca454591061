//! Running the election protocol component.
//!
//! [`ElectionComponent`] is the compiled `.wasm`, ready to instantiate many
//! times (compile once per process: instantiation costs ~0.1 ms, Cranelift
//! far more). [`ProtocolInstance`] is one node's running protocol, in a
//! [`Store`] of its own. Each call returns the [`Effect`]s the protocol
//! asked for, in order; the caller (the simulator, or a real node) carries
//! them out.

mod guard;
mod imports;
mod refusal;

pub use refusal::{
    HttpRefusal, campaign_refusal_http, change_refusal_http, explain_campaign_refusal,
    explain_change_refusal,
};

use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::protocol::{Protocol, ProtocolPre};
use crate::bindings::types::{
    CampaignRefusal, ChangeRefusal, Event, LogLevel, NodeStatus, Options, OptionsError,
    PersistedState, Timings,
};

/// Where the protocol gets the time and randomness it asks the host for.
///
/// A real node reads its monotonic clock and the OS's entropy; the
/// simulator answers with virtual time and a seeded generator, which is what
/// makes a run reproducible from its seed.
pub trait Environment: Send {
    /// Nanoseconds on a monotonic clock.
    fn now_ns(&mut self) -> u64;
    /// 64 random bits.
    fn random_u64(&mut self) -> u64;
}

/// One thing the protocol asked the host to do during a call.
///
/// Effects come back in the order the protocol made them and must be
/// carried out in that order: a [`Effect::Persist`] has to be durable before
/// any later [`Effect::Send`] leaves the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send `payload` to the peer `to`.
    Send { to: String, payload: Vec<u8> },
    /// Call [`ProtocolInstance::on_timer`] with `id` after `after_ns`.
    SetTimer { id: u64, after_ns: u64 },
    /// Forget the timer `id`.
    CancelTimer { id: u64 },
    /// The protocol reports an event.
    Emit(Event),
    /// Store this state durably, then hand it to `start` after a restart.
    Persist(PersistedState),
    /// A log line (already written to `tracing` as well).
    Log { level: LogLevel, message: String },
    /// The node's status changed during the call (`status-changed` in
    /// `wit/protocol.wit`); [`ProtocolInstance::status`] has the new one.
    /// Always the call's last effect.
    StatusChanged,
}

/// The protocol refused its options at start; names the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidOptions(pub OptionsError);

impl fmt::Display for InvalidOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid option `{}`: {}", self.0.field, self.0.reason)
    }
}

impl std::error::Error for InvalidOptions {}

/// The protocol refused a request (a transfer, a removal), saying why;
/// the request changed nothing. Told apart from a trap by its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", explain_change_refusal(.0))]
pub struct Refused(pub ChangeRefusal);

impl Default for Timings {
    /// The protocol's documented defaults, from the protocol crate itself
    /// (`tenure_election_core::Timings`), so they are written once: 150–300
    /// ms election timeout, 50 ms heartbeat, a peer gone after ten silent
    /// heartbeat intervals, a 15 ms lease drift margin, a 2 s stability
    /// window.
    fn default() -> Self {
        let d = tenure_election_core::Timings::default();
        Timings {
            election_timeout_min_ms: d.election_timeout_min_ms,
            election_timeout_max_ms: d.election_timeout_max_ms,
            heartbeat_interval_ms: d.heartbeat_interval_ms,
            peer_timeout_heartbeats: d.peer_timeout_heartbeats,
            lease_drift_margin_ms: d.lease_drift_margin_ms,
            stability_window_ms: d.stability_window_ms,
        }
    }
}

/// What a protocol instance's [`Store`] holds: WASI state (the component's
/// standard library links against WASI, though the protocol uses none of
/// it), the [`Environment`], and the effects of the call in progress.
pub struct ProtocolState {
    wasi: WasiCtx,
    table: ResourceTable,
    env: Box<dyn Environment>,
    effects: Vec<Effect>,
    /// The status the protocol last reported (`status-changed`).
    status: NodeStatus,
    /// The node's id, for log fields.
    node: String,
    /// The store's memory cap ([`MEMORY_CAP`]).
    limits: wasmtime::StoreLimits,
}

impl WasiView for ProtocolState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl fmt::Debug for ElectionComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElectionComponent").finish_non_exhaustive()
    }
}

/// The compiled election component, ready to instantiate for any number of
/// nodes. Cheap to share: clone the `Arc` it usually lives in.
pub struct ElectionComponent {
    engine: Engine,
    component: Component,
    pre: ProtocolPre<ProtocolState>,
    call_fuel: u64,
}

impl ElectionComponent {
    /// Compiles the component at `path`.
    pub fn from_file(engine: &Engine, path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading election component {}", path.display()))?;
        Self::from_bytes(engine, &bytes)
            .with_context(|| format!("loading election component {}", path.display()))
    }

    /// Compiles a component from its bytes and links it against the host.
    pub fn from_bytes(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Self> {
        let component = wasm(Component::new(engine, bytes)).context("compiling the component")?;
        Self::from_component(engine, component)
    }

    /// Links an already compiled component (from the artifact cache, say).
    pub fn from_component(engine: &Engine, component: Component) -> anyhow::Result<Self> {
        let mut linker = Linker::new(engine);
        wasm(wasmtime_wasi::p2::add_to_linker_sync(&mut linker)).context("linking WASI")?;
        wasm(Protocol::add_to_linker::<
            ProtocolState,
            HasSelf<ProtocolState>,
        >(&mut linker, |s| s))
        .context("linking the host interface")?;
        let pre = wasm(linker.instantiate_pre(&component))
            .context("the component does not fit the `protocol` world")?;
        let pre =
            wasm(ProtocolPre::new(pre)).context("the component does not export `election`")?;
        Ok(ElectionComponent {
            engine: engine.clone(),
            component,
            pre,
            call_fuel: CALL_FUEL,
        })
    }

    /// The same component with another budget per call (default
    /// [`CALL_FUEL`]); it only matters on a metering engine
    /// ([`protocol_engine`]). Tests use a small one to show how far the
    /// built-in protocol stays below the default.
    pub fn with_call_fuel(mut self, fuel: u64) -> Self {
        self.call_fuel = fuel;
        self
    }

    /// The names of the interfaces the component imports, e.g.
    /// `tenure:election/host@0.1.0` and the WASI interfaces Rust's standard
    /// library links against. Useful to audit what a build can reach.
    pub fn imports(&self) -> Vec<String> {
        self.component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A fresh, unstarted instance for node `node`, in a store of its own.
    pub fn instantiate(
        &self,
        node: &str,
        env: Box<dyn Environment>,
    ) -> anyhow::Result<ProtocolInstance> {
        let state = ProtocolState {
            // No preopens, no environment, no inherited stdio: the protocol
            // gets no ambient authority.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            env,
            effects: Vec::new(),
            status: unstarted_status(node),
            node: node.to_string(),
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(MEMORY_CAP)
                .trap_on_grow_failure(true)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        // Instantiating runs the component's start functions: they get
        // the budget of a call (see `guarded`).
        let _ = store.set_fuel(self.call_fuel);
        let bindings = wasm(self.pre.instantiate(&mut store))
            .with_context(|| format!("instantiating the protocol for node {node}"))?;
        Ok(ProtocolInstance {
            store,
            bindings,
            call_fuel: self.call_fuel,
        })
    }
}

/// The most memory one protocol instance may have: the built-in one uses
/// well under 1 MiB for a 5-node cluster; a build that grows past this
/// traps instead of taking the node's memory.
pub const MEMORY_CAP: usize = 64 << 20;

/// The fuel (about one unit per wasm instruction) each call into the
/// protocol may burn on a metering engine: the built-in protocol's
/// calls stay under a twentieth of it through the chaos mix (a test runs
/// it on a budget of 500,000); a build that loops traps within about 20 ms
/// instead of holding the node's task.
pub const CALL_FUEL: u64 = 10_000_000;

/// The engine a node compiles protocol builds with: it meters fuel, so a
/// build that loops is stopped ([`CALL_FUEL`]).
pub fn protocol_engine() -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    profile_if_asked(&mut config);
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// The variable that makes protocol engines write `/tmp/perf-PID.map`, so
/// `perf report` names the guest's functions instead of `[JIT]` addresses:
/// `TENURE_WASM_PERFMAP=1 perf record -g tenure sim bench --nodes 51`.
pub const PERFMAP_ENV: &str = "TENURE_WASM_PERFMAP";

/// Turns on wasmtime's perf map if [`PERFMAP_ENV`] is set (to anything
/// but `0`): a profiling aid, off by default since it writes a file per
/// process.
pub fn profile_if_asked(config: &mut wasmtime::Config) {
    if std::env::var_os(PERFMAP_ENV).is_some_and(|v| v != "0") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
}

/// Real time and OS entropy for a trial instance (see
/// [`ElectionComponent::trial`]).
struct TrialEnvironment {
    origin: std::time::Instant,
}

impl Environment for TrialEnvironment {
    fn now_ns(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn random_u64(&mut self) -> u64 {
        rand::random()
    }
}

impl ElectionComponent {
    /// This build's version, asked of a fresh instance that is never
    /// started (what `tenure --version` reports for the built-in build).
    pub fn build_version(&self) -> anyhow::Result<String> {
        let env = TrialEnvironment {
            origin: std::time::Instant::now(),
        };
        self.instantiate("version", Box::new(env))?
            .version()
            .context("asking the build its version")
    }

    /// Runs this build on a running node's exported `state`, in an instance
    /// of its own whose effects go nowhere, and returns its version: what
    /// a node does with an uploaded build before it lets it near its own
    /// task. Call it off any async runtime (a WASI call from the build
    /// then runs on wasmtime's own). An error says why the build is
    /// refused: it refused the state, trapped, ran past its budget or its
    /// memory cap.
    pub fn trial(&self, node: &str, options: &Options, state: &[u8]) -> anyhow::Result<String> {
        let env = TrialEnvironment {
            origin: std::time::Instant::now(),
        };
        let mut instance = self.instantiate(node, Box::new(env))?;
        instance.import_state(options, state)?;
        instance
            .version()
            .context("asking the new build its version")
    }
}

/// A role as the admin JSON, the watch stream and the CLI name it:
/// `"leader"`, `"candidate"` or `"follower"`.
pub fn role_name(role: crate::bindings::types::Role) -> &'static str {
    use crate::bindings::types::Role;
    match role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        Role::Follower => "follower",
    }
}

/// What a node's status is before its protocol started.
fn unstarted_status(node: &str) -> NodeStatus {
    NodeStatus {
        node_id: node.to_string(),
        cluster_id: String::new(),
        role: crate::bindings::types::Role::Follower,
        term: 0,
        leader: None,
        voted_for: None,
        members: Vec::new(),
        epoch: 0,
        alive_peers: Vec::new(),
        quorum: 0,
        ignored_messages: 0,
        lease_expires_ns: None,
        data_id: 0,
        abstaining: false,
        confirmed: false,
    }
}

/// Turns wasmtime's error type (which is not a `std::error::Error`) into
/// `anyhow`'s, so context can be added to it.
pub(crate) fn wasm<T>(result: wasmtime::Result<T>) -> anyhow::Result<T> {
    result.map_err(anyhow::Error::from)
}

/// One node's running protocol. Every method is one call into the
/// component and returns the effects it produced. An `Err` is a trap: the
/// store is then unusable and the instance must be replaced.
pub struct ProtocolInstance {
    store: Store<ProtocolState>,
    bindings: Protocol,
    /// Each call's budget on a metering engine.
    call_fuel: u64,
}

impl ProtocolInstance {
    /// Starts the protocol; see `start` in `wit/protocol.wit`. Refused
    /// options come back as an [`InvalidOptions`] error.
    pub fn start(
        &mut self,
        options: &Options,
        state: Option<&PersistedState>,
    ) -> anyhow::Result<Vec<Effect>> {
        self.guarded("start", |e, store| e.call_start(store, options, state))?
            .map_err(InvalidOptions)?;
        Ok(self.take_effects())
    }

    /// Delivers a message from `sender`.
    pub fn on_message(&mut self, sender: &str, payload: &[u8]) -> anyhow::Result<Vec<Effect>> {
        let sender = sender.to_string();
        self.guarded("on-message", |e, store| {
            e.call_on_message(store, &sender, payload)
        })?;
        Ok(self.take_effects())
    }

    /// Fires timer `id`.
    pub fn on_timer(&mut self, id: u64) -> anyhow::Result<Vec<Effect>> {
        self.guarded("on-timer", |e, store| e.call_on_timer(store, id))?;
        Ok(self.take_effects())
    }

    /// Adds `peer` to the membership and introduces this node to it.
    pub fn join(&mut self, peer: &str) -> anyhow::Result<Vec<Effect>> {
        let peer = peer.to_string();
        self.guarded("join", |e, store| e.call_join(store, &peer))?;
        Ok(self.take_effects())
    }

    /// Reports that `peer`'s process looks dead (see `peer-unreachable` in
    /// `wit/protocol.wit`).
    pub fn peer_unreachable(&mut self, peer: &str) -> anyhow::Result<Vec<Effect>> {
        let peer = peer.to_string();
        self.guarded("peer-unreachable", |e, store| {
            e.call_peer_unreachable(store, &peer)
        })?;
        Ok(self.take_effects())
    }

    /// Hands leadership to `to`; a refusal comes back as a [`Refused`]
    /// error with the protocol's reason.
    pub fn transfer_leadership(&mut self, to: &str) -> anyhow::Result<Vec<Effect>> {
        let to = to.to_string();
        self.guarded("transfer-leadership", |e, store| {
            e.call_transfer_leadership(store, &to)
        })?
        .map_err(Refused)?;
        Ok(self.take_effects())
    }

    /// Removes `node` from the membership for good (see `leave` in
    /// `wit/protocol.wit`); a refusal comes back as a [`Refused`] error
    /// with the protocol's reason.
    pub fn leave(&mut self, node: &str) -> anyhow::Result<Vec<Effect>> {
        let node = node.to_string();
        self.guarded("leave", |e, store| e.call_leave(store, &node))?
            .map_err(Refused)?;
        Ok(self.take_effects())
    }

    /// Starts an election now (see `campaign` in `wit/protocol.wit`), or
    /// says why the node will not stand. Either way the effects (a log
    /// line for a refusal) are the host's to carry out; the error is a trap.
    pub fn campaign(&mut self) -> anyhow::Result<(Vec<Effect>, Result<(), CampaignRefusal>)> {
        let answer = self.guarded("campaign", |e, store| e.call_campaign(store))?;
        Ok((self.take_effects(), answer))
    }

    /// Gives up leadership or a candidacy.
    pub fn step_down(&mut self) -> anyhow::Result<Vec<Effect>> {
        self.guarded("step-down", |e, store| e.call_step_down(store))?;
        Ok(self.take_effects())
    }

    /// This build's version string.
    pub fn version(&mut self) -> anyhow::Result<String> {
        self.guarded("version", |e, store| e.call_version(store))
    }

    /// The whole running state, for [`ProtocolInstance::import_state`] on
    /// an instance of another build.
    pub fn export_state(&mut self) -> anyhow::Result<Vec<u8>> {
        self.guarded("export-state", |e, store| e.call_export_state(store))
    }

    /// Starts this (fresh) instance from another build's exported state,
    /// instead of [`ProtocolInstance::start`]. A refusal comes back as an
    /// error with the protocol's reason.
    pub fn import_state(&mut self, options: &Options, state: &[u8]) -> anyhow::Result<Vec<Effect>> {
        self.guarded("import-state", |e, store| {
            e.call_import_state(store, options, state)
        })?
        .map_err(|reason| anyhow::anyhow!("the new protocol refused the state: {reason}"))?;
        Ok(self.take_effects())
    }

    /// The node's current view, as the protocol last reported it (see
    /// [`Effect::StatusChanged`]): no call into the component. Before
    /// `start`, a follower at term 0 that knows nothing.
    pub fn status(&self) -> &NodeStatus {
        &self.store.data().status
    }

    /// Asks the component for its status (the `status` export). Always
    /// equal to [`ProtocolInstance::status`]; for tests that check so.
    pub fn query_status(&mut self) -> anyhow::Result<NodeStatus> {
        self.guarded("status", |e, store| e.call_status(store))
    }

    /// Steps down and does not stand for `hold_ms` (see `stand-aside` in
    /// `wit/protocol.wit`).
    pub fn stand_aside(&mut self, hold_ms: u64) -> anyhow::Result<Vec<Effect>> {
        self.guarded("stand-aside", |e, store| e.call_stand_aside(store, hold_ms))?;
        Ok(self.take_effects())
    }

    fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.store.data_mut().effects)
    }
}
