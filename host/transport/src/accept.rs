//! The accept loop: takes connections off the listening socket and starts
//! a task for each (see [`crate::inbound`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::event::Inbound;
use crate::inbound::serve;
use crate::shared::{Shared, log_join};

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
                tracing::debug!(peer = %remote, "accepted connection");
                keep_alive(&stream, remote);
                connections.spawn(serve(stream, remote, shared.clone(), inbound.clone()));
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
