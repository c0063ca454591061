//! Behaviour plugins: the application's leader logic, as components of the
//! `plugin` world (`wit/behaviour.wit`).
//!
//! A plugin never costs its node its place in the cluster:
//!
//! - every callback runs under a deadline, and every store under a memory
//!   cap, so a loop, a wait or an allocation bomb ends the callback instead
//!   of hanging or exhausting the host. The deadline is enforced twice:
//!   wasmtime epoch interruption (a ticker advances the plugin engine's
//!   epoch every [`EPOCH_TICK`] while a callback runs) traps a plugin that
//!   computes past it, and a timer around the asynchronous call ([`io`])
//!   cuts one that waits past it in a host call;
//! - what a plugin may ask of its node is limited and counted
//!   ([`quota`]); its stdout and stderr go to the node's log ([`output`]);
//!   it reaches the network only through allowed, fenced HTTP
//!   ([`egress`]) and gets no sockets, files or environment;
//! - the plugin runs on a thread of its own ([`runner`]), so the protocol's
//!   heartbeats never wait for a callback;
//! - a trap poisons the store, so the driver replaces a trapped instance
//!   with a fresh one (see [`driver`] for the policy).
//!
//! # Layout
//!
//! - this file: compiling a plugin ([`PluginComponent`]) and calling one
//!   instance ([`PluginInstance`]) with deadline and memory cap;
//! - [`view`]: the node's state as the plugin sees it ([`LeaderView`]);
//! - `imports.rs`: the `leader-api` the plugin imports, answered from the
//!   shared view and held to the quota;
//! - [`driver`]: callbacks in order, wake-ups and the fault policy, on any
//!   clock (the simulator's too);
//! - [`runner`]: the plugin's thread on a real node.

pub mod backoff;
pub mod driver;
pub mod egress;
mod imports;
pub mod io;
pub mod output;
pub mod quota;
pub mod runner;
pub mod view;

pub use view::{LeaderView, SharedView, ViewClock};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::artifact_cache::{ArtifactCache, CacheOutcome};
use crate::bindings::plugin::tenure::election::leader_api;
use crate::bindings::plugin::{Plugin, PluginPre};
use crate::bindings::types;
use crate::bindings::types::LogLevel;
use crate::protocol::wasm;
use egress::{EgressHooks, EgressPolicy};
use output::CapturedOutput;
use quota::{PluginQuota, PluginUsage};

/// How often the plugin engine's epoch advances; deadlines are counted in
/// these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The most host resources (streams, pollables, HTTP requests, responses,
/// header fields…) one plugin instance may hold at once; one more traps
/// the instance, which is then replaced. What the host keeps for a plugin
/// lives outside its memory cap, so this bounds it: wasmtime's default
/// (a million entries) would not. Language runtimes hold a handful.
pub const MAX_RESOURCES: usize = 1024;

/// The largest set of header fields a plugin may build, in bytes (what
/// wasmtime counts); with [`MAX_RESOURCES`], at most 16 MiB of headers.
pub const MAX_FIELDS_BYTES: usize = 16 << 10;

/// What a plugin asked for during a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginEffect {
    /// Send bytes to `peer`'s plugin.
    Send { peer: String, payload: Vec<u8> },
    /// Send bytes to every peer's plugin.
    Broadcast { payload: Vec<u8> },
    /// Wake the plugin with `on-scheduled(id, tag)` after `after_ms`.
    Schedule { id: u64, after_ms: u64, tag: String },
    /// Forget wake-up `id`.
    CancelSchedule { id: u64 },
    /// A log line (already written to `tracing`).
    Log { level: LogLevel, message: String },
    /// Hand leadership to `to` (checked against the view already).
    TransferLeadership { to: String },
}

/// What a plugin's store holds.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    egress: EgressHooks,
    limits: StoreLimits,
    view: SharedView,
    effects: Vec<PluginEffect>,
    /// The quota and counters of this plugin on this node.
    usage: Arc<PluginUsage>,
    /// Wake-ups pending before this callback (the driver's count), for the
    /// quota on them.
    wakeups_pending: usize,
    /// Wake-up ids are handed out by the host, unique per node.
    next_schedule_id: Arc<std::sync::atomic::AtomicU64>,
    /// The plugin's name, for log fields.
    name: String,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

/// What a plugin is held to: every callback, every store, and what it may
/// ask of its node. Clones share the [`PluginUsage`] counters, so make one
/// per plugin per node (`..PluginLimits::default()` fills what a caller
/// does not set).
#[derive(Clone, Debug)]
pub struct PluginLimits {
    /// Each callback's time limit, computing or waiting.
    pub deadline: Duration,
    /// The store's linear memory cap, in bytes.
    pub memory_bytes: usize,
    /// Where the plugin may send HTTP requests, and how.
    pub egress: Arc<EgressPolicy>,
    /// The quota ([`PluginUsage::quota`]) and what was refused under it.
    pub usage: Arc<PluginUsage>,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            deadline: Duration::from_millis(crate::config::DEFAULT_DEADLINE_MS),
            memory_bytes: usize::try_from(crate::config::DEFAULT_MEMORY_MIB << 20)
                .unwrap_or(usize::MAX),
            egress: Arc::new(EgressPolicy::default()),
            usage: Arc::new(PluginUsage::default()),
        }
    }
}

impl PluginLimits {
    /// These limits with a fresh usage under `quota`.
    pub fn with_quota(mut self, quota: PluginQuota) -> PluginLimits {
        self.usage = Arc::new(PluginUsage::new(quota));
        self
    }
}

impl std::fmt::Debug for PluginComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginComponent")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// A compiled plugin, ready to instantiate.
pub struct PluginComponent {
    engine: PluginEngine,
    pre: PluginPre<PluginState>,
    name: String,
    sha256: String,
}

/// Advances a plugin engine's epoch every [`EPOCH_TICK`], but only while a
/// callback runs: an idle node does not wake up 200 times a second for
/// nothing. Callbacks [`EpochTicker::enter`] for their duration.
pub struct EpochTicker {
    active: AtomicUsize,
    thread: std::thread::Thread,
}

/// Marks a callback in progress for the [`EpochTicker`] while it lives.
pub struct Ticking<'a>(&'a EpochTicker);

impl EpochTicker {
    /// Marks a callback as running (and wakes the ticker).
    pub fn enter(&self) -> Ticking<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
        Ticking(self)
    }
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An engine for plugins — epoch interruption on — and its ticker, a
/// thread that lives as long as the engine does.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    ticker: Arc<EpochTicker>,
}

/// Creates a [`PluginEngine`].
pub fn plugin_engine() -> anyhow::Result<PluginEngine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // One compiling thread, at low priority (see crate::background): a
    // hot swap must never take the cores the node's heartbeats need.
    config.parallel_compilation(false);
    let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
    let weak = engine.weak();
    let (tx, rx) = std::sync::mpsc::channel::<Arc<EpochTicker>>();
    let thread = std::thread::Builder::new()
        .name("tenure-epoch".into())
        .spawn(move || {
            let Ok(ticker) = rx.recv() else { return };
            while let Some(engine) = weak.upgrade() {
                if ticker.active.load(Ordering::SeqCst) > 0 {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                } else {
                    drop(engine);
                    // Woken by `enter`; the timeout notices a dropped engine.
                    std::thread::park_timeout(Duration::from_secs(1));
                }
            }
        })
        .context("starting the epoch ticker")?;
    let ticker = Arc::new(EpochTicker {
        active: AtomicUsize::new(0),
        thread: thread.thread().clone(),
    });
    tx.send(ticker.clone())
        .map_err(|_| anyhow::anyhow!("the epoch ticker did not start"))?;
    Ok(PluginEngine { engine, ticker })
}

impl PluginComponent {
    /// Reads and compiles the plugin at `path`.
    pub fn from_file(engine: &PluginEngine, path: &Path) -> anyhow::Result<PluginComponent> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Self::from_bytes(engine, &name, &bytes)
            .with_context(|| format!("loading plugin {}", path.display()))
    }

    /// Compiles plugin bytes and links them against the host.
    pub fn from_bytes(
        engine: &PluginEngine,
        name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<PluginComponent> {
        let component =
            wasm(Component::new(&engine.engine, bytes)).context("compiling the plugin")?;
        Self::link(engine, name, hex::encode(Sha256::digest(bytes)), component)
    }

    /// Like [`PluginComponent::from_bytes`], through the on-disk artifact
    /// cache: a plugin compiled before (for this engine) skips Cranelift.
    pub fn from_cache(
        engine: &PluginEngine,
        cache: &ArtifactCache,
        name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<(PluginComponent, CacheOutcome)> {
        let (component, outcome) = cache
            .component(&engine.engine, bytes)
            .context("compiling the plugin")?;
        let plugin = Self::link(engine, name, hex::encode(Sha256::digest(bytes)), component)?;
        Ok((plugin, outcome))
    }

    fn link(
        engine: &PluginEngine,
        name: &str,
        sha256: String,
        component: Component,
    ) -> anyhow::Result<PluginComponent> {
        let mut linker = Linker::new(&engine.engine);
        // All of WASI links, so any language's runtime instantiates; the
        // context each store gets grants nothing (see `instantiate`).
        wasm(wasmtime_wasi::p2::add_to_linker_async(&mut linker)).context("linking WASI")?;
        wasm(wasmtime_wasi_http::p2::add_only_http_to_linker_async(
            &mut linker,
        ))
        .context("linking wasi:http")?;
        // The world's own interfaces; wasi:* came from the crates above.
        wasm(types::add_to_linker::<PluginState, HasSelf<PluginState>>(
            &mut linker,
            |s| s,
        ))
        .context("linking the shared types")?;
        wasm(leader_api::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s))
            .context("linking the leader API")?;
        let pre = wasm(linker.instantiate_pre(&component))
            .context("the component does not fit the `plugin` world")?;
        let pre = wasm(PluginPre::new(pre)).context("the component does not export `behaviour`")?;
        Ok(PluginComponent {
            engine: engine.clone(),
            pre,
            name: name.to_string(),
            sha256,
        })
    }

    /// The plugin's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sha256 of the component, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// A fresh instance in a store of its own, not yet `init`ed.
    pub fn instantiate(
        &self,
        view: SharedView,
        limits: &PluginLimits,
        next_schedule_id: Arc<std::sync::atomic::AtomicU64>,
    ) -> anyhow::Result<PluginInstance> {
        let node = view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .node_id
            .clone();
        let usage = limits.usage.clone();
        let output = |stream| CapturedOutput::new(stream, &node, &self.name, usage.clone());
        // No arguments, environment, preopened directories, sockets or
        // name lookups: the defaults, spelled out.
        let wasi = WasiCtx::builder()
            .stdout(output("stdout"))
            .stderr(output("stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let egress = EgressHooks::new(
            limits.egress.clone(),
            view.clone(),
            usage.clone(),
            &node,
            &self.name,
        );
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        let state = PluginState {
            wasi,
            table,
            http,
            egress,
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            view,
            effects: Vec::new(),
            usage,
            wakeups_pending: 0,
            next_schedule_id,
            name: self.name.clone(),
        };
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limits);
        let ticks = (limits.deadline.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        let bindings = {
            let _ticking = self.engine.ticker.enter();
            let pre = &self.pre;
            let store = &mut store;
            let started = io::block_on(async move {
                tokio::time::timeout(limits.deadline, pre.instantiate_async(store)).await
            });
            match started {
                Ok(instantiated) => wasm(instantiated).context("instantiating the plugin")?,
                Err(_) => anyhow::bail!(
                    "instantiating the plugin took longer than its deadline ({:?})",
                    limits.deadline
                ),
            }
        };
        Ok(PluginInstance {
            store,
            bindings,
            deadline: limits.deadline,
            deadline_ticks: ticks,
            ticker: self.engine.ticker.clone(),
        })
    }
}

/// The outcome of one callback: what the plugin returned (`Err(reason)` for
/// a plugin-level error), and what it asked for.
pub type CallResult<T> = anyhow::Result<(T, Vec<PluginEffect>)>;

/// One plugin instance. Each method is one callback under the deadline;
/// an `Err` is a trap (or overrun deadline, or memory cap), after which the
/// instance is unusable and must be replaced.
pub struct PluginInstance {
    store: Store<PluginState>,
    bindings: Plugin,
    deadline: Duration,
    deadline_ticks: u64,
    ticker: Arc<EpochTicker>,
}

macro_rules! callback {
    ($(#[$doc:meta])* $name:ident => $call:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty) => {
        $(#[$doc])*
        pub fn $name(&mut self, $($arg: $ty),*) -> CallResult<$ret> {
            let ticker = self.ticker.clone();
            let _ticking = ticker.enter();
            self.store.set_epoch_deadline(self.deadline_ticks);
            let behaviour = self.bindings.tenure_election_behaviour();
            let store = &mut self.store;
            let deadline = self.deadline;
            let out = io::block_on(async move {
                tokio::time::timeout(deadline, behaviour.$call(store, $($arg),*)).await
            });
            self.finish(out)
        }
    };
}

impl PluginInstance {
    /// Tells the instance how many wake-ups are pending, for the quota on
    /// `schedule` in the next callback.
    pub fn set_wakeups_pending(&mut self, pending: usize) {
        self.store.data_mut().wakeups_pending = pending;
    }

    /// A callback's outcome, classified and counted: cut at the deadline
    /// while waiting, trapped at it while computing, or another trap.
    fn finish<T>(
        &mut self,
        out: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    ) -> CallResult<T> {
        let usage = self.store.data().usage.clone();
        let out = match out {
            Ok(Ok(out)) => out,
            Ok(Err(trap)) => {
                let counter = match trap.downcast_ref::<wasmtime::Trap>() {
                    Some(wasmtime::Trap::Interrupt) => &usage.deadlines,
                    _ if format!("{trap:?}").contains("memory growth") => &usage.memory,
                    _ => &usage.traps,
                };
                PluginUsage::bump(counter);
                return Err(anyhow::Error::from(trap));
            }
            Err(_) => {
                PluginUsage::bump(&usage.deadlines);
                anyhow::bail!(
                    "the callback was still waiting in a host call at its deadline ({:?})",
                    self.deadline
                );
            }
        };
        Ok((out, std::mem::take(&mut self.store.data_mut().effects)))
    }
}

// The generated bindings take `&String`, so the wrappers do too.
#[allow(clippy::ptr_arg)]
impl PluginInstance {
    callback!(
        /// `init(config)`.
        init => call_init(config: &[(String, String)]) -> Result<(), String>
    );
    callback!(
        /// `on-become-leader(term)`; an error refuses leadership.
        on_become_leader => call_on_become_leader(term: u64) -> Result<(), String>
    );
    callback!(
        /// `on-become-follower(leader, term)`.
        on_become_follower => call_on_become_follower(leader: Option<&String>, term: u64) -> ()
    );
    callback!(
        /// `on-peer-joined(peer)`.
        on_peer_joined => call_on_peer_joined(peer: &String) -> ()
    );
    callback!(
        /// `on-peer-left(peer)`.
        on_peer_left => call_on_peer_left(peer: &String) -> ()
    );
    callback!(
        /// `on-term-changed(old, new)`.
        on_term_changed => call_on_term_changed(old: u64, new: u64) -> ()
    );
    callback!(
        /// `on-message(sender, payload)`.
        on_message => call_on_message(sender: &String, payload: &[u8]) -> ()
    );
    callback!(
        /// `on-call(request)`.
        on_call => call_on_call(request: &[u8]) -> Result<Vec<u8>, String>
    );
    callback!(
        /// `on-scheduled(id, tag)`.
        on_scheduled => call_on_scheduled(id: u64, tag: &String) -> ()
    );
    callback!(
        /// `inspect()`.
        inspect => call_inspect() -> Vec<(String, String)>
    );
    callback!(
        /// `snapshot()`.
        snapshot => call_snapshot() -> Vec<u8>
    );
    callback!(
        /// `restore(snapshot)`.
        restore => call_restore(snapshot: &[u8]) -> Result<(), String>
    );
}

/// Writes a plugin's log line through `tracing`.
pub(crate) fn log_line(plugin: &str, node: &str, level: LogLevel, message: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(node, plugin, "{message}"),
        LogLevel::Debug => tracing::debug!(node, plugin, "{message}"),
        LogLevel::Info => tracing::info!(node, plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(node, plugin, "{message}"),
        LogLevel::Error => tracing::error!(node, plugin, "{message}"),
    }
}

/// Config as `init` takes it.
pub fn config_pairs(config: &BTreeMap<String, String>) -> Vec<(String, String)> {
    config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
