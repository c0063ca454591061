//! A node inside your Rust program: the same node `tenure run` starts (it
//! is built on this), spawned on your tokio runtime, with a handle to
//! watch its leadership, to do leader-only work that stops before the
//! lease can lapse, and to step down, transfer, campaign and shut down.
//!
//! ```no_run
//! use tenure_host::config::NodeConfig;
//! use tenure_host::embed::EmbeddedNode;
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let config = NodeConfig::load("n1.toml".as_ref())?;
//! let node = EmbeddedNode::start(config).await?;
//! loop {
//!     // Waits until this node leads and holds its lease.
//!     let guard = node.leading().await?;
//!     let token = guard.fencing_token();
//!     tokio::select! {
//!         // Cancelled before the lease can lapse: when leadership is lost,
//!         // given up, or not renewed in time.
//!         _ = guard.lost() => println!("term {token} is over: stopped"),
//!         _ = async {
//!             loop {
//!                 // write(…, token): the store refuses tokens below the highest seen
//!                 tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//!             }
//!         } => {}
//!     }
//! }
//! # }
//! ```
//!
//! Shut down with [`EmbeddedNode::shutdown`]: once your guarded work has
//! stopped, a leader hands leadership to a peer (no election timeout for
//! the others), then the node stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::artifact_cache::ArtifactCache;
use crate::bindings::types::{CampaignRefusal, ChangeRefusal};
use crate::builtin;
use crate::config::NodeConfig;
use crate::node::data_lock::DataDirLock;
use crate::node::leadership::{Leadership, Subscriptions};
use crate::node::swap::{file_name, watch_plugin};
use crate::node::{Command, Node, NodeReport, PluginSetup};
use crate::plugin::{PluginComponent, plugin_engine};
use crate::protocol::ElectionComponent;

/// A running node and the handle to it. Dropping it stops the node (as
/// [`EmbeddedNode::shutdown`] does, but without handing leadership over).
pub struct EmbeddedNode {
    commands: mpsc::Sender<Command>,
    subscriptions: Subscriptions,
    shutdown: CancellationToken,
    admin: SocketAddr,
    /// `[admin-auth]`, to read its tokens file again.
    admin_auth: crate::config::AdminAuthConfig,
    /// The tokens the admin endpoint accepts now.
    tokens: crate::admin::TokenStore,
    /// The admin endpoint's TLS, and `[admin-tls]` to read it again.
    admin_https: Option<(crate::admin::HttpsConfig, crate::config::AdminTlsConfig)>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl EmbeddedNode {
    /// Loads the election component (the built-in one, or
    /// `protocol.component`) and the plugin if any, opens the admin
    /// endpoint, and starts the node on the current tokio runtime. Fails,
    /// saying why, on a bad component, an unusable state file or a port in
    /// use.
    pub async fn start(config: NodeConfig) -> anyhow::Result<EmbeddedNode> {
        let data_lock = DataDirLock::acquire(&config.data_dir)?;
        config
            .admin_auth
            .check_exposure(config.admin, config.admin_tls.as_ref())?;
        let cache = ArtifactCache::open(&config.cache_dir)?;
        let (component, sha256) = load_protocol(&config, &cache).await?;
        let engine = plugin_engine()?;
        let plugin = load_plugin(&config, &engine, &cache).await?;
        let admin_listener = TcpListener::bind(config.admin)
            .await
            .with_context(|| format!("`admin`: cannot listen on {}", config.admin))?;
        let admin = admin_listener.local_addr().context("admin address")?;
        let data_dir = config.data_dir.clone();
        let (node_id, cluster_id, admin_auth, admin_limits, admin_tls) = (
            config.node_id.clone(),
            config.cluster_id.clone(),
            config.admin_auth.clone(),
            config.admin_limits.clone(),
            config.admin_tls.clone(),
        );
        // Bad certificate files stop the start here, before the node runs.
        let https = match &admin_tls {
            Some(tls) => Some((crate::admin::HttpsConfig::load(tls)?, cluster_id)),
            None => None,
        };
        let admin_https = https
            .as_ref()
            .zip(admin_tls.clone())
            .map(|((config, _), tls)| (config.clone(), tls));
        let plugin_to_watch = config
            .plugin
            .as_ref()
            .filter(|p| p.watch)
            .map(|p| p.path.clone());
        let (node, inputs) =
            Node::start(config, Arc::new(component), sha256, admin, plugin).await?;
        std::fs::write(data_dir.join("admin.addr"), format!("{admin}\n"))
            .with_context(|| format!("writing {}", data_dir.join("admin.addr").display()))?;
        let shutdown = CancellationToken::new();
        let (commands, command_rx) = mpsc::channel(64);
        let subscriptions = node.subscriptions();
        if let Some(path) = plugin_to_watch {
            tokio::spawn(watch_plugin(
                path,
                engine.clone(),
                cache.clone(),
                commands.clone(),
                shutdown.clone(),
            ));
        }
        let tokens = crate::admin::TokenStore::new(admin_auth.tokens.clone());
        let setup = crate::admin::AdminSetup {
            commands: commands.clone(),
            leadership: subscriptions.clone(),
            plugin_engine: engine,
            cache,
            tokens: tokens.clone(),
            auth: admin_auth.clone(),
            limits: admin_limits,
            data_dir,
            node_id,
            https,
        };
        let admin_task = tokio::spawn(crate::admin::serve(admin_listener, setup, shutdown.clone()));
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            // Held until the node has stopped: see `DataDirLock`.
            let _data_lock = data_lock;
            let result = node.run(inputs, command_rx, stop.clone()).await;
            stop.cancel();
            match admin_task.await {
                Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "admin endpoint failed"),
                Err(e) => tracing::warn!(error = %e, "admin endpoint panicked"),
                Ok(Ok(())) => {}
            }
            result
        });
        Ok(EmbeddedNode {
            commands,
            subscriptions,
            shutdown,
            admin,
            admin_auth,
            tokens,
            admin_https,
            task: Some(task),
        })
    }

    /// A receiver of this node's leadership, starting with the current
    /// one; it always ends on the latest.
    pub fn watch(&self) -> watch::Receiver<Leadership> {
        self.subscriptions.watch()
    }

    /// The leadership now.
    pub fn leadership(&self) -> Leadership {
        self.subscriptions.watch().borrow().clone()
    }

    /// Where the admin endpoint listens (`GET /status`, `/watch`, …).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Waits until this node leads and holds its lease, and returns a
    /// guard for that term: see [`LeaderGuard`]. An error if the node
    /// stops first.
    pub async fn leading(&self) -> anyhow::Result<LeaderGuard> {
        let mut watch = self.watch();
        let token = loop {
            if let Some(token) = watch.borrow_and_update().fencing_token {
                break token;
            }
            watch
                .changed()
                .await
                .map_err(|_| anyhow::anyhow!("the node stopped"))?;
        };
        let lost = CancellationToken::new();
        let cancel = lost.clone();
        let watcher = tokio::spawn(async move {
            loop {
                let (held, until) = {
                    let now = watch.borrow_and_update();
                    (now.fencing_token == Some(token), now.valid_until)
                };
                let Some(until) = until.filter(|_| held) else {
                    break;
                };
                // The node revokes the token at `until` itself; this is
                // the second line, should its task be late.
                tokio::select! {
                    changed = watch.changed() => if changed.is_err() { break },
                    _ = tokio::time::sleep_until(until.into()) => break,
                }
            }
            cancel.cancel();
        });
        Ok(LeaderGuard {
            token,
            lost,
            watcher,
        })
    }

    /// The node's full status (what `GET /status` serves).
    pub async fn status(&self) -> anyhow::Result<NodeReport> {
        self.ask(Command::Status).await
    }

    /// Reads `[admin-auth] tokens-file` again and accepts the tokens in it
    /// (and the environment's) from now on, instead of the old ones (what
    /// `tenure run` does on SIGHUP): rotate a token by adding its line,
    /// moving clients to it, then removing the old line. An error, keeping
    /// the current tokens, if the node has no tokens file or it is wrong;
    /// the names now accepted otherwise.
    pub fn reload_admin_tokens(&self) -> anyhow::Result<Vec<String>> {
        let tokens = self.admin_auth.reread()?;
        self.tokens.replace(tokens);
        Ok(self.tokens.names())
    }

    /// Reads `[admin-tls]`'s certificate files again, for new admin
    /// connections (what `tenure run` does on SIGHUP). An error, keeping
    /// the current certificate, if the node has no `[admin-tls]` or the
    /// files are wrong.
    pub fn reload_admin_tls(&self) -> anyhow::Result<()> {
        let Some((config, tls)) = &self.admin_https else {
            anyhow::bail!("this node has no `[admin-tls]`");
        };
        config.reload(tls)
    }

    /// Reads the `[tls]` certificate files again, for new connections
    /// (what `tenure run` does on SIGHUP): rotate a certificate by writing
    /// the new files, then calling this. An error, keeping the current
    /// certificate, if the node does not use TLS or the files are wrong.
    pub async fn reload_tls(&self) -> anyhow::Result<()> {
        self.ask(Command::ReloadTls)
            .await?
            .map_err(|reason| anyhow::anyhow!("{reason}"))
    }

    /// Gives up leadership (or a candidacy); a peer takes over within an
    /// election timeout.
    pub async fn step_down(&self) -> anyhow::Result<()> {
        self.ask(Command::StepDown).await
    }

    /// Hands leadership to `to` (see `transfer-leadership` in
    /// `wit/protocol.wit`); `Ok(Err(refusal))` if the protocol refused.
    pub async fn transfer(&self, to: &str) -> anyhow::Result<Result<(), ChangeRefusal>> {
        let to = to.to_string();
        self.ask(|reply| Command::Transfer { to, reply }).await
    }

    /// Starts an election now; `Ok(Err(refusal))` says why not.
    pub async fn campaign(&self) -> anyhow::Result<Result<(), CampaignRefusal>> {
        self.ask(Command::Campaign).await
    }

    /// Stops the node gracefully: a leader first hands leadership to a
    /// peer it hears from (waiting at most a second for it to take over),
    /// then the node stops. Call it once your guarded work has stopped.
    /// Returns the node task's result (an error if it had failed).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        hand_over(&self.commands).await;
        self.shutdown.cancel();
        self.join().await
    }

    /// Waits until the node stops on its own (a fatal error, a duplicate
    /// process) or is shut down; its result.
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        self.join().await
    }

    /// Completes once the node is stopping or has stopped, for whatever
    /// reason (its result comes from [`EmbeddedNode::shutdown`] or
    /// [`EmbeddedNode::stopped`]).
    pub fn stopping(&self) -> WaitForCancellationFuture<'_> {
        self.shutdown.cancelled()
    }

    async fn join(&mut self) -> anyhow::Result<()> {
        match self.task.take() {
            Some(task) => task.await.context("the node task panicked")?,
            None => Ok(()),
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> anyhow::Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| anyhow::anyhow!("the node stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the node stopped before it answered"))
    }
}

impl Drop for EmbeddedNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Leadership of one term, held while this node leads it and its lease
/// holds. [`LeaderGuard::lost`] completes (and [`LeaderGuard::token`] is
/// cancelled) *before* the lease can lapse: when the node loses or gives up
/// leadership, or when no majority has renewed the lease by a guard
/// (`[protocol] lease-guard-ms`) before it would lapse. Work that stops
/// then has stopped while no other leader can exist yet — unless this
/// process is frozen (a stopped process cannot stop its work): attach
/// [`LeaderGuard::fencing_token`] to what the work writes, so the store
/// refuses a deposed leader's late writes.
pub struct LeaderGuard {
    token: u64,
    lost: CancellationToken,
    watcher: JoinHandle<()>,
}

impl LeaderGuard {
    /// The fencing token of this term (the term itself).
    pub fn fencing_token(&self) -> u64 {
        self.token
    }

    /// Completes when this leadership is over (see [`LeaderGuard`]).
    pub fn lost(&self) -> WaitForCancellationFuture<'_> {
        self.lost.cancelled()
    }

    /// Whether this leadership is over.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// A token cancelled when this leadership is over, to hand to tasks.
    pub fn token(&self) -> CancellationToken {
        self.lost.clone()
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.watcher.abort();
        self.lost.cancel();
    }
}

/// If this node leads, asks it to transfer leadership to a peer it hears
/// from, and waits (at most a second) until it no longer leads.
pub(crate) async fn hand_over(commands: &mpsc::Sender<Command>) {
    let status = || async {
        let (reply, answer) = oneshot::channel();
        commands.send(Command::Status(reply)).await.ok()?;
        answer.await.ok()
    };
    let Some(report) = status().await else { return };
    if report.role != "leader" {
        return;
    }
    for peer in &report.peers {
        let (reply, answer) = oneshot::channel();
        let to = peer.clone();
        if commands
            .send(Command::Transfer { to, reply })
            .await
            .is_err()
        {
            return;
        }
        match answer.await {
            Ok(Ok(())) => {
                tracing::info!(%peer, "handing leadership over before shutting down");
                let deadline = Instant::now() + Duration::from_secs(1);
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    match status().await {
                        Some(r) if r.role == "leader" => continue,
                        _ => return,
                    }
                }
                return;
            }
            Ok(Err(refusal)) => {
                let reason = crate::protocol::explain_change_refusal(&refusal);
                tracing::debug!(%peer, %reason, "cannot hand over to this peer");
            }
            Err(_) => return,
        }
    }
}

/// The election component the config names (or the built-in one),
/// compiled through the cache on a blocking thread, and its sha256.
async fn load_protocol(
    config: &NodeConfig,
    cache: &ArtifactCache,
) -> anyhow::Result<(ElectionComponent, String)> {
    let (bytes, source) = match &config.protocol_component {
        Some(path) => (
            std::fs::read(path)
                .with_context(|| format!("`protocol.component`: reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            builtin::ELECTION
                .context(
                    "this tenure was built without its election component: run \
                     scripts/build-guests.sh, rebuild, or set `protocol.component`",
                )?
                .to_vec(),
            "built-in".to_string(),
        ),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let started = Instant::now();
    // Cranelift runs on a blocking thread, never on the runtime's thread;
    // a cached artifact skips it.
    let cache = cache.clone();
    let (component, outcome) = tokio::task::spawn_blocking(move || {
        let engine = crate::protocol::protocol_engine()?;
        let (component, outcome) = cache.component(&engine, &bytes)?;
        Ok::<_, anyhow::Error>((
            ElectionComponent::from_component(&engine, component)?,
            outcome,
        ))
    })
    .await
    .context("compiling the election component")?
    .with_context(|| format!("loading the election component ({source})"))?;
    tracing::info!(
        cache = ?outcome, ms = started.elapsed().as_secs_f64() * 1e3,
        "election component loaded"
    );
    Ok((component, sha256))
}

/// The plugin the config names, compiled through the cache.
async fn load_plugin(
    config: &NodeConfig,
    engine: &crate::plugin::PluginEngine,
    cache: &ArtifactCache,
) -> anyhow::Result<Option<PluginSetup>> {
    let Some(p) = &config.plugin else {
        return Ok(None);
    };
    let path = p.path.clone();
    let bytes = std::fs::read(&path)
        .with_context(|| format!("`plugin.path`: reading {}", path.display()))?;
    let (compile_engine, compile_cache) = (engine.clone(), cache.clone());
    let name = file_name(&path);
    let started = Instant::now();
    let (component, outcome) = tokio::task::spawn_blocking(move || {
        PluginComponent::from_cache(&compile_engine, &compile_cache, &name, &bytes)
    })
    .await
    .context("compiling the plugin")?
    .with_context(|| format!("loading plugin {}", path.display()))?;
    tracing::info!(
        cache = ?outcome, ms = started.elapsed().as_secs_f64() * 1e3,
        "plugin loaded"
    );
    Ok(Some(PluginSetup {
        component: Arc::new(component),
        config: p.clone(),
    }))
}
