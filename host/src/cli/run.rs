//! `tenure run --config FILE [-- CMD ARGS…]`: one node, until Ctrl-C or
//! SIGTERM — the library's [`EmbeddedNode`], as an application would embed
//! it — and, with a command, [`supervise`] running it while the node leads.
//! Under systemd (`Type=notify`) it reports readiness, pings the watchdog
//! and says when it stops ([`systemd`]).

use std::path::Path;
use std::process::ExitCode;

use tenure_host::config::NodeConfig;
use tenure_host::embed::EmbeddedNode;
use tenure_host::supervise::{Supervised, supervise};
use tokio::signal::unix::SignalKind;
use tokio_util::sync::CancellationToken;

mod systemd;

use systemd::Notifier;

/// SIGHUP: the TLS certificates (peers', admin's) and the admin tokens,
/// each if configured,
/// read again; what was wrong is logged and the old one kept.
async fn reload(node: &EmbeddedNode) {
    match node.reload_tls().await {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Err(e) => {
            tracing::info!(reason = %format!("{e:#}"), "SIGHUP: TLS certificate not reloaded")
        }
    }
    match node.reload_admin_tls() {
        Ok(()) => tracing::info!("SIGHUP: admin TLS certificate reloaded"),
        Err(e) => {
            tracing::info!(reason = %format!("{e:#}"), "SIGHUP: admin TLS certificate not reloaded")
        }
    }
    match node.reload_admin_tokens() {
        Ok(names) => tracing::info!(tokens = ?names, "SIGHUP: admin tokens reloaded"),
        Err(e) => tracing::info!(reason = %format!("{e:#}"), "SIGHUP: admin tokens not reloaded"),
    }
}

/// Waits for `kind`; forever if it cannot be watched (said in the log).
async fn signal(kind: SignalKind, name: &str) {
    match tokio::signal::unix::signal(kind) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch {name}");
            std::future::pending::<()>().await;
        }
    }
}

/// Loads the config, starts the node and its admin endpoint (and the
/// supervised `command`, if any), and runs until a shutdown signal — then
/// the command is stopped and waited for, and a leader hands leadership
/// over, so a rolling restart costs no election timeout — or until the
/// node stops on its own.
/// `sets` are `--set KEY=VALUE` overrides, over the environment's
/// `TENURE_…` keys, over the file's.
pub async fn run(
    config_path: &Path,
    sets: &[String],
    command: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load_with(config_path, sets)?;
    let supervised = Supervised {
        argv: command,
        config: config.command.clone(),
        lease_guard: config.lease_guard,
    };
    let node = EmbeddedNode::start(config).await?;
    let notifier = Notifier::from_env();
    notifier.ready(&node).await;
    let supervised_failed = until_shutdown(&node, &supervised, &notifier).await;
    notifier.stopping();
    tracing::info!("shutting down");
    let stopped = node.shutdown().await;
    match supervised_failed {
        Some(e) => Err(e.context("supervising the command")),
        None => stopped.map(|()| ExitCode::SUCCESS),
    }
}

/// Runs the command (if any) until Ctrl-C, SIGTERM or the node stopping;
/// then stops the command and waits for it. Returns why supervising
/// failed, if it did.
async fn until_shutdown(
    node: &EmbeddedNode,
    supervised: &Supervised,
    notifier: &Notifier,
) -> Option<anyhow::Error> {
    let stop = CancellationToken::new();
    let supervising = async {
        if supervised.argv.is_empty() {
            // Nothing to supervise: done once told to stop.
            stop.cancelled().await;
            return Ok(());
        }
        supervise(node, supervised, &stop).await
    };
    let mut supervising = std::pin::pin!(supervising);
    let mut terminate = std::pin::pin!(signal(SignalKind::terminate(), "SIGTERM"));
    let mut watchdog = std::pin::pin!(notifier.watchdog(node));
    // SIGHUP re-reads the TLS certificate files: rotation without restart.
    let mut hangups = tokio::signal::unix::signal(SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "cannot watch SIGHUP"))
        .ok();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = &mut terminate => break,
            // The node stopped on its own: shutdown() says why.
            _ = node.stopping() => break,
            result = &mut supervising => return result.err(),
            Some(()) = async { hangups.as_mut()?.recv().await } => reload(node).await,
            // Never completes: pings systemd's watchdog while the node answers.
            () = &mut watchdog => {}
        }
    }
    // Stop the command, and wait for it, before leadership is handed over.
    stop.cancel();
    if let Err(e) = supervising.await {
        tracing::warn!(error = %format!("{e:#}"), "stopping the command");
    }
    None
}
