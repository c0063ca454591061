//! systemd's notify protocol, for `tenure run` under a `Type=notify` unit
//! (`deploy/systemd/tenure.service`), with the `sd-notify` crate.
//!
//! Three messages, each a datagram to `$NOTIFY_SOCKET`:
//!
//! - `READY=1` once the node has loaded its state, bound its peer listener
//!   and its admin endpoint, and its task has answered a status query —
//!   so `systemctl start` returns when the node can be asked things, and
//!   units ordered `After=tenure.service` start after that;
//! - `WATCHDOG=1` every half `$WATCHDOG_USEC` (systemd's `WatchdogSec=`),
//!   each only after the node's task answered a status query within that
//!   half: a node whose task hangs stops pinging, and systemd restarts it;
//! - `STOPPING=1` when a shutdown signal arrives, before leadership is
//!   handed over.
//!
//! Without `$NOTIFY_SOCKET` (not under systemd) every call is a no-op. The
//! variables are removed from what the supervised command and hooks
//! inherit ([`tenure_host::supervise::SERVICE_MANAGER_VARIABLES`]), so only this process
//! speaks for the unit.

use std::time::Duration;

use sd_notify::NotifyState;
use tenure_host::embed::EmbeddedNode;

/// The notifier of one `tenure run` process.
///
/// Call [`Notifier::ready`] once the node is up, poll
/// [`Notifier::watchdog`] alongside the process's other work until a
/// shutdown signal, then call [`Notifier::stopping`].
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    /// Whether a service manager listens (`$NOTIFY_SOCKET` is set).
    enabled: bool,
    /// The ping period: half the watchdog timeout, if one is set.
    ping_every: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` (a
    /// watchdog meant for another process is ignored).
    pub fn from_env() -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let ping_every = sd_notify::watchdog_enabled()
            .filter(|timeout| !timeout.is_zero())
            .map(|timeout| timeout / 2);
        Notifier {
            enabled,
            ping_every,
        }
    }

    /// Asks the node's task for its status (proving it runs), then sends
    /// `READY=1` with a one-line `STATUS=`.
    pub async fn ready(&self, node: &EmbeddedNode) {
        if !self.enabled {
            return;
        }
        let status = match node.status().await {
            Ok(report) => format!(
                "node {} serving, admin {}",
                report.node_id,
                node.admin_addr()
            ),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "node did not answer before READY=1");
                return;
            }
        };
        self.send(
            &[NotifyState::Ready, NotifyState::Status(&status)],
            "READY=1",
        );
        if let Some(every) = self.ping_every {
            tracing::info!(
                every_ms = every.as_millis() as u64,
                "systemd watchdog pings on"
            );
        }
    }

    /// Sends `WATCHDOG=1` every half watchdog timeout while the node's task
    /// answers; never returns (pending forever without a watchdog).
    pub async fn watchdog(&self, node: &EmbeddedNode) {
        let (true, Some(every)) = (self.enabled, self.ping_every) else {
            return std::future::pending().await;
        };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match tokio::time::timeout(every, node.status()).await {
                Ok(Ok(_)) => self.send(&[NotifyState::Watchdog], "WATCHDOG=1"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "node did not answer; no watchdog ping")
                }
                Err(_) => tracing::warn!(
                    within_ms = every.as_millis() as u64,
                    "node did not answer in time; no watchdog ping"
                ),
            }
        }
    }

    /// Sends `STOPPING=1`: the node is shutting down.
    pub fn stopping(&self) {
        if self.enabled {
            self.send(&[NotifyState::Stopping], "STOPPING=1");
        }
    }

    fn send(&self, states: &[NotifyState], what: &str) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(message = what, error = %e, "cannot notify systemd");
        }
    }
}
