//! `tenure run --config FILE`: one node, until Ctrl-C or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wasmtime::Engine;

use std::time::{Duration, Instant};

use tenure_host::admin;
use tenure_host::artifact_cache::ArtifactCache;
use tenure_host::builtin;
use tenure_host::config::NodeConfig;
use tenure_host::node::swap::{file_name, watch_plugin};
use tenure_host::node::{Command, Node, PluginSetup};
use tenure_host::plugin::{PluginComponent, plugin_engine};
use tenure_host::protocol::ElectionComponent;

/// Loads the config, starts the node and its admin endpoint, and runs
/// until a shutdown signal.
pub async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(config_path)?;
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
    let cache = ArtifactCache::open(&config.cache_dir)?;
    let started = Instant::now();
    // Cranelift runs on a blocking thread, never on the runtime's workers;
    // a cached artifact skips it.
    let protocol_cache = cache.clone();
    let (component, outcome) = tokio::task::spawn_blocking(move || {
        let engine = Engine::default();
        let (component, outcome) = protocol_cache.component(&engine, &bytes)?;
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

    let engine = plugin_engine()?;
    let plugin = match &config.plugin {
        None => None,
        Some(p) => {
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
            Some(PluginSetup {
                component: Arc::new(component),
                config: p.clone(),
            })
        }
    };

    let admin_listener = TcpListener::bind(config.admin)
        .await
        .with_context(|| format!("`admin`: cannot listen on {}", config.admin))?;
    let admin_addr = admin_listener.local_addr().context("admin address")?;
    let data_dir = config.data_dir.clone();
    let plugin_to_watch = config
        .plugin
        .as_ref()
        .filter(|p| p.watch)
        .map(|p| p.path.clone());
    let (node, inputs) =
        Node::start(config, Arc::new(component), sha256, admin_addr, plugin).await?;
    std::fs::write(data_dir.join("admin.addr"), format!("{admin_addr}\n"))
        .with_context(|| format!("writing {}", data_dir.join("admin.addr").display()))?;

    let shutdown = CancellationToken::new();
    let (commands, command_rx) = mpsc::channel(64);
    tokio::spawn(stop_on_signal(shutdown.clone(), commands.clone()));
    if let Some(p) = plugin_to_watch {
        tokio::spawn(watch_plugin(
            p,
            engine.clone(),
            cache.clone(),
            commands.clone(),
            shutdown.clone(),
        ));
    }
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        commands,
        engine,
        cache,
        shutdown.clone(),
    ));
    let result = node.run(inputs, command_rx, shutdown.clone()).await;
    shutdown.cancel();
    match admin_task.await {
        Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "admin endpoint failed"),
        Err(e) => tracing::warn!(error = %e, "admin endpoint panicked"),
        Ok(Ok(())) => {}
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// On Ctrl-C or SIGTERM: a leader first hands leadership to a healthy peer
/// (so a rolling restart costs no election timeout), then `shutdown` is
/// cancelled.
async fn stop_on_signal(shutdown: CancellationToken, commands: mpsc::Sender<Command>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
        _ = shutdown.cancelled() => return,
    }
    tracing::info!("shutdown requested");
    hand_over(&commands).await;
    shutdown.cancel();
}

/// If this node leads, asks it to transfer leadership to a peer it hears
/// from, and waits (at most a second) until it no longer leads.
async fn hand_over(commands: &mpsc::Sender<Command>) {
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
            Ok(Err(reason)) => tracing::debug!(%peer, %reason, "cannot hand over to this peer"),
            Err(_) => return,
        }
    }
}
