//! `tenure run --config FILE`: one node, until Ctrl-C or SIGTERM — the
//! library's [`EmbeddedNode`], as an application would embed it.

use std::path::Path;
use std::process::ExitCode;

use tenure_host::config::NodeConfig;
use tenure_host::embed::EmbeddedNode;

/// Loads the config, starts the node and its admin endpoint, and runs
/// until a shutdown signal (then a leader hands leadership over first, so
/// a rolling restart costs no election timeout) or until the node stops on
/// its own.
pub async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(config_path)?;
    let mut node = EmbeddedNode::start(config).await?;
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
        result = node.stopped() => return result.map(|()| ExitCode::SUCCESS),
    }
    tracing::info!("shutdown requested");
    node.shutdown().await.map(|()| ExitCode::SUCCESS)
}
