//! Fast failover switched off from the outside.
//!
//! Tenure's fast failover rests on one signal: a refused reconnect to the
//! leader (its process died, its kernel answers with RST). It has no
//! configuration switch, so to measure failover *without* it the benchmark
//! takes the dead leader's port the moment the process is reaped and holds
//! every connection open without answering. The survivors' redials then
//! succeed, nothing is refused, and they must wait out their election
//! timeouts — as they would for a leader whose host vanished without
//! resetting connections.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Holds a port open; [`Tarpit::release`] frees it.
pub struct Tarpit {
    task: JoinHandle<()>,
}

impl Tarpit {
    /// Binds `addr` and accepts (and holds, silently) every connection.
    pub async fn hold(addr: SocketAddr) -> anyhow::Result<Tarpit> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("holding the dead leader's port {addr}"))?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                }
            }
        });
        Ok(Tarpit { task })
    }

    /// Closes the port and every held connection.
    pub async fn release(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
