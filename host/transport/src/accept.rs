//! The accept loop: takes connections off the listening socket, admits
//! them within the listener's bounds ([`crate::limits`]) and starts a task
//! for each (see [`crate::inbound`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::event::Inbound;
use crate::inbound::serve;
use crate::limits::{Full, Ticket};
use crate::shared::{Shared, log_join};
use crate::stats::Counters;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts connections until cancelled, then waits for their tasks.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut connections = JoinSet::new();
    loop {
        while let Some(done) = connections.try_join_next() {
            log_join(done, "inbound connection");
        }
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                let ticket = match Ticket::admit(&shared.admission, remote.ip()) {
                    Ok(ticket) => ticket,
                    Err(full) => {
                        // Dropping the stream closes it at once.
                        refuse(&shared, remote, full);
                        continue;
                    }
                };
                tracing::debug!(peer = %remote, "accepted connection");
                keep_alive(&stream, remote);
                connections.spawn(serve(
                    stream,
                    remote,
                    shared.clone(),
                    inbound.clone(),
                    ticket,
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = shared.cancel.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    drop(listener);
    while let Some(done) = connections.join_next().await {
        log_join(done, "inbound connection");
    }
}

/// Counts and (at a limited pace) logs a connection closed on accept.
fn refuse(shared: &Shared, remote: SocketAddr, full: Full) {
    let stats = &shared.stats;
    let counter = match full {
        Full::Connections => &stats.refused_max_connections,
        Full::Pending => &stats.refused_max_pending,
        Full::PendingPerIp => &stats.refused_max_pending_per_ip,
    };
    Counters::add(counter, 1);
    shared.warn_bounds(remote, full.describe());
}

/// Turns TCP keepalive on for an accepted connection, so one whose host
/// vanished (no reset ever comes) ends within seconds and stops holding
/// its peer's claim ([`crate::claims::KEEPALIVE`]).
fn keep_alive(stream: &TcpStream, remote: SocketAddr) {
    let k = &crate::claims::KEEPALIVE;
    let params = socket2::TcpKeepalive::new()
        .with_time(k.idle)
        .with_interval(k.interval)
        .with_retries(k.retries);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&params) {
        tracing::warn!(peer = %remote, error = %e, "cannot set TCP keepalive");
    }
}
