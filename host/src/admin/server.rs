//! The admin endpoint's HTTP server: bounded, whatever its clients do.
//!
//! HTTP/1.1 with keep-alive: a client that polls (a dashboard, the
//! failover bench every millisecond) reuses its connection instead of
//! paying the node a TCP accept and teardown per request, which costs
//! more than the request itself. Limits from `[admin-limits]`
//! ([`AdminLimits`]):
//!
//! - at most `max-connections` open at once — one more is closed as soon
//!   as it is accepted (counted: `refused_connections`); a kept-alive
//!   connection holds its slot while open;
//! - the headers must arrive within `header-timeout-ms` (else the
//!   connection closes: `timeouts`), the body within `body-timeout-ms`
//!   (408: `timeouts`). A kept-alive connection waiting for its next
//!   request is under the same timeout, so an idle one is closed after
//!   `header-timeout-ms` and its slot freed; that close is not counted;
//! - a body above `max-body-bytes`, or `max-upload-bytes` for a plugin or
//!   protocol upload, is refused with 413 (`too_large`) before the rest of
//!   it is read.
//!
//! On shutdown the listener closes at once and open requests get
//! [`SHUTDOWN_GRACE`] to finish; then their connections are dropped, so a
//! slow upload cannot hold SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

use crate::config::AdminLimits;

/// How long open requests may go on once the node stops.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The client's address, in every request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct Remote(pub SocketAddr);

/// The admin endpoint's counters, as `GET /status` shows them (`admin`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminReport {
    /// Requests without a token (401) to an endpoint that needs one.
    pub unauthorized: u64,
    /// Requests with a token that is not accepted (403).
    pub forbidden: u64,
    /// Connections closed on accept: `max-connections` were open.
    pub refused_connections: u64,
    /// Requests whose headers or body did not arrive in time.
    pub timeouts: u64,
    /// Bodies above their limit (413).
    pub too_large: u64,
}

/// The live counters behind [`AdminReport`].
#[derive(Debug, Default)]
pub(super) struct AdminCounters {
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    refused_connections: AtomicU64,
    timeouts: AtomicU64,
    too_large: AtomicU64,
}

impl AdminCounters {
    /// Counts a refused request by its status code (401 or 403).
    pub(super) fn count_refusal(&self, status: u16) {
        let counter = if status == 403 {
            &self.forbidden
        } else {
            &self.unauthorized
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn report(&self) -> AdminReport {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AdminReport {
            unauthorized: read(&self.unauthorized),
            forbidden: read(&self.forbidden),
            refused_connections: read(&self.refused_connections),
            timeouts: read(&self.timeouts),
            too_large: read(&self.too_large),
        }
    }
}

/// HTTPS for the endpoint: the acceptor, and the cluster whose admin
/// client certificates count (see [`super::tls`]).
#[derive(Clone)]
pub(super) struct Https {
    /// The configuration for a new connection (it may be reloaded).
    pub(super) config: Arc<dyn Fn() -> Arc<rustls::ServerConfig> + Send + Sync>,
    pub(super) cluster: String,
}

/// What every connection of the endpoint shares.
#[derive(Clone)]
struct Shared {
    app: Router,
    limits: AdminLimits,
    counters: Arc<AdminCounters>,
    stopping: CancellationToken,
}

/// Serves `app` on `listener` within `limits` until `shutdown`, over TLS
/// with `https`.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: AdminLimits,
    counters: Arc<AdminCounters>,
    https: Option<Https>,
    shutdown: CancellationToken,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let shared = Shared {
        app,
        limits: limits.clone(),
        counters: counters.clone(),
        stopping: CancellationToken::new(),
    };
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: pause rather than spin.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            counters.refused_connections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%remote, max = limits.max_connections, "admin connection refused: too many open");
            continue;
        };
        let (shared, https) = (shared.clone(), https.clone());
        connections.spawn(async move {
            let _permit = permit;
            let Some(https) = https else {
                return connection(stream, remote, None, shared).await;
            };
            // The handshake gets the time the headers get.
            let acceptor = tokio_rustls::TlsAcceptor::from((https.config)());
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(shared.limits.header_timeout, handshake).await {
                Ok(Ok(tls)) => {
                    let client = super::tls::client_name(tls.get_ref().1, &https.cluster);
                    connection(tls, remote, client, shared).await;
                }
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "admin TLS handshake failed"),
                Err(_) => {
                    shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    drop(listener);
    shared.stopping.cancel();
    while connections.join_next().await.is_some() {}
}

/// Serves one connection: its requests get the client's address and, over
/// TLS, the admin its certificate names.
async fn connection<S>(stream: S, remote: SocketAddr, client: Option<String>, shared: Shared)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let router = shared.app.clone();
    // Requests answered on this connection: a header timeout after one
    // is a kept-alive connection left idle, not a slow client.
    let served = Arc::new(AtomicU64::new(0));
    let counted = served.clone();
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        counted.fetch_add(1, Ordering::Relaxed);
        request.extensions_mut().insert(Remote(remote));
        if let Some(name) = &client {
            request
                .extensions_mut()
                .insert(super::tls::ClientCertificate(name.clone()));
        }
        let mut router = router.clone();
        async move { router.call(request.map(Body::new)).await }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_timeout)
        .keep_alive(true);
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shared.stopping.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        let idle = served.load(Ordering::Relaxed) > 0;
        if e.is_timeout() && !idle {
            shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(%remote, error = %e, "admin connection ended");
    }
}

/// What [`buffer_body`] needs.
#[derive(Clone)]
pub(super) struct BodyGate {
    pub(super) max_bytes: usize,
    pub(super) timeout: Duration,
    pub(super) counters: Arc<AdminCounters>,
}

/// Middleware: reads the whole body within the route's size and time
/// limits before the handler runs (413 above the size, 408 when too
/// slow), so no handler ever waits on a client.
pub(super) async fn buffer_body(
    State(gate): State<BodyGate>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gate.max_bytes as u64) {
        return too_large(&gate);
    }
    let bytes = match tokio::time::timeout(gate.timeout, axum::body::to_bytes(body, gate.max_bytes))
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_length_limit(&e) => return too_large(&gate),
        Ok(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                "the request body could not be read\n",
            )
                .into_response();
        }
        Err(_) => {
            gate.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time\n",
            )
                .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether reading a body failed on its size limit.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn too_large(gate: &BodyGate) -> Response {
    gate.counters.too_large.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {} bytes\n", gate.max_bytes),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Reads one reply with a `content-length` off `stream`; `None` at EOF.
    async fn reply(stream: &mut tokio::net::TcpStream) -> Option<String> {
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|n| n.trim().parse().ok())
                    .expect("a content-length");
                if body.len() >= length {
                    return Some(text);
                }
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            got.extend_from_slice(&chunk[..n]);
        }
    }

    #[tokio::test]
    async fn a_connection_serves_several_requests_and_an_idle_one_closes_uncounted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = AdminLimits {
            header_timeout: Duration::from_millis(200),
            ..AdminLimits::default()
        };
        let counters = Arc::new(AdminCounters::default());
        let app = Router::new().route("/ping", get(|| async { "pong" }));
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            app,
            limits,
            counters.clone(),
            None,
            stop.clone(),
        ));

        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        for _ in 0..3 {
            stream
                .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            let text = reply(&mut stream)
                .await
                .expect("a reply on the same connection");
            assert!(
                text.starts_with("HTTP/1.1 200") && text.ends_with("pong"),
                "{text}"
            );
        }
        // Left idle past the header timeout, it is closed, and that is
        // not a client's timeout.
        let closed = tokio::time::timeout(Duration::from_secs(3), reply(&mut stream)).await;
        assert_eq!(closed, Ok(None), "the idle connection was closed");
        assert_eq!(counters.report().timeouts, 0);

        // A connection that never finishes its first request is counted.
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /pi").await.expect("write");
        let closed = tokio::time::timeout(Duration::from_secs(3), reply(&mut slow)).await;
        assert_eq!(closed, Ok(None), "the slow connection was closed");
        assert_eq!(counters.report().timeouts, 1);

        stop.cancel();
        server.await.expect("the server stops");
    }
}
