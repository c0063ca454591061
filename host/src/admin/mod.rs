//! The admin endpoint: HTTP on the admin address (loopback by default).
//!
//! - `GET /status`: the node's [`NodeReport`] as JSON.
//! - `GET /metrics`: the node in the Prometheus format ([`crate::metrics`]);
//!   a read, so `[admin-auth] protect-reads` covers it.
//! - `GET /inspect`: the behaviour plugin's `inspect()` pairs as a JSON
//!   object (404 when the node runs no plugin).
//! - `POST /step-down`: give up leadership (or a candidacy).
//! - `POST /campaign`: start an election now (a pre-vote first). Refused
//!   with the reason: 403 if the node never stands (observer, removed,
//!   lost state), 409 if it leads or is not admitted yet, 503 with
//!   `Retry-After` while it is loyal to a live leader whose lease may rest
//!   on it, stands aside, or waits for its peers' confirmations.
//! - `POST /leave?node=NODE`: remove NODE from the membership for good.
//! - `POST /transfer?to=NODE`: hand leadership to NODE.
//!
//!   Both refused with the reason: 404 if NODE is no member, 409 if this
//!   node does not lead (the body names the leader) or NODE cannot take
//!   over, 503 with `Retry-After` while a transfer or membership change is
//!   under way.
//! - `POST /call[?local=true]`: the request body goes to the plugin's
//!   `on-call` — on a follower, the leader's plugin (the call is forwarded),
//!   unless `local=true`; the reply is the response body (200), an error a
//!   409 with the reason.
//! - `POST /protocol`: the body is another build of the election
//!   component; it is compiled off the node's task, then the running
//!   protocol's whole state moves into it (see `Node::swap_protocol`). 200
//!   with the new version; 422 with the reason, the old build running.
//! - `POST /plugin[?name=FILE]`: the body is a new plugin component; it is compiled
//!   off the node's task, then swapped in (see
//!   [`crate::plugin::driver::PluginDriver::swap`]). 200 when the new
//!   version runs; 422 with the reason when it was refused and the old
//!   version keeps running.
//! - `POST /plugin/compile[?name=FILE]`: the same compile, into the
//!   node's artifact cache, without the swap: 200 with the time; 422 with
//!   the reason. A rolling swap calls it on every node first, so each swap
//!   is then a cached one of a few milliseconds.
//!
//! - `GET /leader`, `GET /livez`, `GET /readyz`, `GET /watch`: for
//!   applications, load balancers and orchestrators; see [`roles`].
//! - `GET /`: the live cluster page (and its assets under `/page/`), for
//!   people; see [`page`].
//!
//! Handlers only pass a [`Command`] to the node task and wait for its
//! answer, or read what the node publishes; they never touch the wasm
//! stores.

mod auth;
mod page;
pub mod roles;
mod server;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use auth::{Caller, TokenStore};
pub use server::{AdminReport, Remote, SHUTDOWN_GRACE};
pub use tls::ClientCertificate;
pub(crate) use tls::certificates;

use crate::artifact_cache::ArtifactCache;
use crate::config::{AdminAuthConfig, AdminLimits};
use crate::node::leadership::Subscriptions;
use crate::node::swap::compile_and_swap;
use crate::node::{Command, NodeReport};
use crate::plugin::PluginEngine;
use crate::protocol::ElectionComponent;
use auth::{AuditLog, Gate};
use server::{AdminCounters, BodyGate};

/// How long a handler waits for the node task.
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handlers share.
#[derive(Clone)]
struct AdminState {
    commands: mpsc::Sender<Command>,
    /// Compiles new plugin versions (off the node's task).
    plugin_engine: PluginEngine,
    /// Where compiled versions are kept.
    cache: ArtifactCache,
    /// The version `POST /plugin/compile` compiled last, kept loaded.
    prepared: crate::node::swap::Prepared,
    /// Compiles new protocol builds.
    protocol_engine: wasmtime::Engine,
    /// The leadership the node publishes.
    leadership: Subscriptions,
    /// The endpoint's own counters, for `GET /status`.
    counters: Arc<AdminCounters>,
}

/// Everything [`serve`] needs besides its listener.
pub struct AdminSetup {
    /// The node task's command queue.
    pub commands: mpsc::Sender<Command>,
    /// The leadership the node publishes.
    pub leadership: Subscriptions,
    /// Compiles uploaded plugins.
    pub plugin_engine: PluginEngine,
    /// Where compiled components are kept.
    pub cache: ArtifactCache,
    /// Who may call what (`[admin-auth]`).
    pub auth: AdminAuthConfig,
    /// The tokens accepted, which the owner may replace while the endpoint
    /// runs (start it with `auth.tokens`).
    pub tokens: TokenStore,
    /// What one client may ask (`[admin-limits]`).
    pub limits: AdminLimits,
    /// Where `events.log` is, for the audit trail.
    pub data_dir: PathBuf,
    /// This node's id, in the audit trail.
    pub node_id: String,
    /// HTTPS, if configured, and the cluster whose admin certificates
    /// count.
    pub https: Option<(HttpsConfig, String)>,
}

/// The endpoint's TLS configuration: made from `[admin-tls]` when the node
/// starts (so bad files stop it there), and replaceable while it runs
/// ([`HttpsConfig::reload`], on SIGHUP): new connections use the new
/// certificate.
#[derive(Clone)]
pub struct HttpsConfig(Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>);

impl HttpsConfig {
    /// Reads `[admin-tls]`'s files.
    pub fn load(tls: &crate::config::AdminTlsConfig) -> anyhow::Result<HttpsConfig> {
        Ok(HttpsConfig(Arc::new(std::sync::RwLock::new(
            tls::server_config(tls)?,
        ))))
    }

    /// Reads the files again; on any error the current configuration
    /// stays.
    pub fn reload(&self, tls: &crate::config::AdminTlsConfig) -> anyhow::Result<()> {
        let config = tls::server_config(tls)?;
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// The configuration now.
    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Serves the admin API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    setup: AdminSetup,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let counters = Arc::new(AdminCounters::default());
    let state = AdminState {
        commands: setup.commands,
        plugin_engine: setup.plugin_engine,
        cache: setup.cache,
        prepared: Default::default(),
        protocol_engine: crate::protocol::protocol_engine()?,
        leadership: setup.leadership,
        counters: counters.clone(),
    };
    let audit = AuditLog::open(&setup.data_dir, &setup.node_id)?;
    let page = page::routes(page::Access {
        tokens: setup.tokens.clone(),
        protect_reads: setup.auth.protect_reads,
    });
    let gate = Gate::new(setup.tokens, audit, counters.clone());
    let limits = setup.limits;
    let body = |max_bytes| BodyGate {
        max_bytes,
        timeout: limits.body_timeout,
        counters: counters.clone(),
    };
    // Probes never need a token: an orchestrator must always reach them.
    let probes = Router::new()
        .route("/livez", get(roles::livez))
        .route("/readyz", get(roles::readyz));
    let mut reads = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/leader", get(roles::leader))
        .route("/watch", get(roles::watch))
        .route("/inspect", get(inspect));
    if setup.auth.protect_reads {
        reads = reads.route_layer(from_fn_with_state(gate.clone(), auth::require_token));
    }
    let uploads = Router::new()
        .route("/plugin", post(swap_plugin))
        .route("/plugin/compile", post(compile_plugin))
        .route("/protocol", post(swap_protocol))
        .route_layer(from_fn_with_state(
            body(limits.max_upload_bytes),
            server::buffer_body,
        ));
    let changes = Router::new()
        .route("/step-down", post(step_down))
        .route("/campaign", post(campaign))
        .route("/transfer", post(transfer))
        .route("/leave", post(leave))
        .route("/call", post(call))
        .route_layer(from_fn_with_state(
            body(limits.max_body_bytes),
            server::buffer_body,
        ))
        .merge(uploads)
        // Outermost first: the token, then the audit line, then the body.
        .route_layer(from_fn_with_state(gate.clone(), auth::audit))
        .route_layer(from_fn_with_state(gate, auth::require_token));
    let app = probes
        .merge(page)
        .merge(reads)
        .merge(changes)
        // Bodies are already read within their limits.
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    let https = setup.https.map(|(config, cluster)| server::Https {
        config: std::sync::Arc::new(move || config.current()),
        cluster,
    });
    server::serve(listener, app, limits, counters, https, shutdown).await;
    Ok(())
}

/// Sends a command built around a reply channel and waits for the answer.
async fn ask<T>(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    let unavailable =
        |what: &str| (StatusCode::SERVICE_UNAVAILABLE, format!("node {what}\n")).into_response();
    commands
        .send(make(tx))
        .await
        .map_err(|_| unavailable("is shutting down"))?;
    match tokio::time::timeout(NODE_TIMEOUT, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(unavailable("is shutting down")),
        Err(_) => Err(unavailable("did not answer in time")),
    }
}

async fn status(State(state): State<AdminState>) -> Result<Json<NodeReport>, Response> {
    let mut report = ask(&state.commands, Command::Status).await?;
    report.admin_endpoint = state.counters.report();
    Ok(Json(report))
}

/// `GET /metrics`: the Prometheus scrape (see [`crate::metrics`]).
async fn metrics(State(state): State<AdminState>) -> Result<Response, Response> {
    let text = ask(&state.commands, Command::Metrics).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// The plugin's `inspect()` pairs, as a JSON object (404 without a plugin).
async fn inspect(
    State(state): State<AdminState>,
) -> Result<Json<std::collections::BTreeMap<String, String>>, Response> {
    let answer = match ask(&state.commands, Command::Inspect).await? {
        Ok(answer) => answer,
        Err(reason) => return Err((StatusCode::NOT_FOUND, format!("{reason}\n")).into_response()),
    };
    match tokio::time::timeout(NODE_TIMEOUT, answer).await {
        Ok(Ok(pairs)) => Ok(Json(pairs.into_iter().collect())),
        Ok(Err(_)) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the plugin did not answer (it may have trapped; see the node's log)\n",
        )
            .into_response()),
        Err(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the plugin did not answer in time\n",
        )
            .into_response()),
    }
}

async fn step_down(State(state): State<AdminState>) -> Result<&'static str, Response> {
    ask(&state.commands, Command::StepDown).await?;
    Ok("stepped down\n")
}

/// `?local=true` asks this node's plugin even on a follower.
#[derive(serde::Deserialize)]
struct CallQuery {
    #[serde(default)]
    local: bool,
}

/// The protocol's refusal when the node will not stand, with its status
/// code (see [`crate::protocol::campaign_refusal_http`]): 403 if it never
/// stands, 409 if it leads or is not admitted, 503 with `Retry-After`
/// while it is loyal to a live leader, stands aside or lacks confirmations.
async fn campaign(State(state): State<AdminState>) -> Result<&'static str, Response> {
    match ask(&state.commands, Command::Campaign).await? {
        Ok(()) => Ok("campaigning\n"),
        Err(refusal) => Err(refusal_response(
            crate::protocol::campaign_refusal_http(&refusal),
            format!(
                "not campaigning: {}",
                crate::protocol::explain_campaign_refusal(&refusal)
            ),
        )),
    }
}

/// A refusal as an HTTP answer: its status code, `Retry-After` when asking
/// again later may succeed, and the reason as the body.
fn refusal_response(http: crate::protocol::HttpRefusal, reason: String) -> Response {
    let status = StatusCode::from_u16(http.status).unwrap_or(StatusCode::CONFLICT);
    let mut response = (status, format!("{reason}\n")).into_response();
    if let Some(seconds) = http.retry_after_s {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

/// A refused transfer or removal as an HTTP answer (see
/// [`crate::protocol::change_refusal_http`]): 404 for a node that is no
/// member, 409 when this node does not lead or the target cannot take
/// over, 503 with `Retry-After` while a transfer or a change is under way.
fn change_refused(refusal: &crate::types::ChangeRefusal) -> Response {
    refusal_response(
        crate::protocol::change_refusal_http(refusal),
        crate::protocol::explain_change_refusal(refusal),
    )
}

/// `?to=NODE` names the new leader.
#[derive(serde::Deserialize)]
struct TransferQuery {
    to: String,
}

async fn transfer(
    State(state): State<AdminState>,
    Query(query): Query<TransferQuery>,
) -> Result<String, Response> {
    let to = query.to.clone();
    match ask(&state.commands, |reply| Command::Transfer { to, reply }).await? {
        Ok(()) => Ok(format!("handing leadership to {}\n", query.to)),
        Err(refusal) => Err(change_refused(&refusal)),
    }
}

/// `?node=NODE` names the member to remove.
#[derive(serde::Deserialize)]
struct LeaveQuery {
    node: String,
}

async fn leave(
    State(state): State<AdminState>,
    Query(query): Query<LeaveQuery>,
) -> Result<String, Response> {
    let node = query.node.clone();
    match ask(&state.commands, |reply| Command::Leave { node, reply }).await? {
        Ok(()) => Ok(format!("removed {} from the membership\n", query.node)),
        Err(refusal) => Err(change_refused(&refusal)),
    }
}

async fn call(
    State(state): State<AdminState>,
    Query(query): Query<CallQuery>,
    body: axum::body::Bytes,
) -> Result<Vec<u8>, Response> {
    let request = body.to_vec();
    let local = query.local;
    let command = |reply| Command::Call {
        request,
        local,
        reply,
    };
    match ask(&state.commands, command).await? {
        Ok(reply) => Ok(reply),
        Err(reason) => Err((StatusCode::CONFLICT, format!("{reason}\n")).into_response()),
    }
}

/// `?name=FILE` names the new version in status reports.
#[derive(serde::Deserialize)]
struct SwapQuery {
    name: Option<String>,
}

async fn swap_plugin(
    State(state): State<AdminState>,
    Query(query): Query<SwapQuery>,
    body: axum::body::Bytes,
) -> Result<String, Response> {
    let name = query.name.unwrap_or_else(|| "swapped.wasm".to_string());
    match compile_and_swap(
        &state.plugin_engine,
        &state.cache,
        &state.commands,
        Some(&state.prepared),
        name,
        body.to_vec(),
    )
    .await
    {
        Ok(r) if r.prepared => Ok(format!(
            "swapped to {} in {:.1} ms (compiled ahead)\n",
            r.sha256,
            r.total.as_secs_f64() * 1e3,
        )),
        Ok(r) => Ok(format!(
            "swapped to {} in {:.1} ms (compile {:.1} ms, cache {:?})\n",
            r.sha256,
            r.total.as_secs_f64() * 1e3,
            r.compile.as_secs_f64() * 1e3,
            r.cache
        )),
        Err(reason) => Err(refused(reason)),
    }
}

/// `POST /plugin/compile?name=FILE`: the body compiled into the node's
/// artifact cache, not swapped in, so that a later `POST /plugin` of the
/// same bytes takes milliseconds.
async fn compile_plugin(
    State(state): State<AdminState>,
    Query(query): Query<SwapQuery>,
    body: axum::body::Bytes,
) -> Result<String, Response> {
    let name = query.name.unwrap_or_else(|| "compiled.wasm".to_string());
    match crate::node::swap::compile_only(
        &state.plugin_engine,
        &state.cache,
        &state.prepared,
        name,
        body.to_vec(),
    )
    .await
    {
        Ok(r) => Ok(format!(
            "compiled {} in {:.1} ms (cache {:?})\n",
            r.sha256,
            r.compile.as_secs_f64() * 1e3,
            r.cache
        )),
        Err(reason) => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("not compiled: {reason}\n"),
        )
            .into_response()),
    }
}

async fn swap_protocol(
    State(state): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<String, Response> {
    let started = std::time::Instant::now();
    let (engine, cache) = (state.protocol_engine.clone(), state.cache.clone());
    let store = cache.clone();
    let sha256 = hex::encode(Sha256::digest(&body));
    let body = Arc::new(body.to_vec());
    let source = body.clone();
    let compiled = crate::background::at_low_priority("compile", move || {
        let (component, outcome) = cache.component(&engine, &source)?;
        Ok::<_, anyhow::Error>((
            ElectionComponent::from_component(&engine, component)?,
            outcome,
        ))
    })
    .await;
    let (component, outcome) = match compiled {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            store.forget(body.clone()).await;
            return Err(refused(format!("{e:#}")));
        }
        Err(e) => return Err(refused(format!("compilation failed: {e}"))),
    };
    let component = Arc::new(component);
    // A first run on the node's own state, off the node's task: a build
    // that refuses it, traps, loops or allocates is refused here, and the
    // node never runs it.
    let (options, exported) = match ask(&state.commands, Command::ProtocolState).await? {
        Ok(input) => input,
        Err(reason) => return Err(refused(reason)),
    };
    let candidate = component.clone();
    let trial = crate::background::at_low_priority("trial", move || {
        candidate.trial(&options.node_id, &options, &exported)
    })
    .await;
    match trial {
        Ok(Ok(_version)) => {}
        Ok(Err(e)) => {
            store.forget(body.clone()).await;
            return Err(refused(format!("{e:#}")));
        }
        Err(e) => return Err(refused(format!("the trial run failed: {e:#}"))),
    }
    let answer = ask(&state.commands, |reply| Command::SwapProtocol {
        component,
        sha256,
        reply,
    })
    .await?;
    match answer {
        Ok(version) => Ok(format!(
            "protocol swapped to version {version} in {:.1} ms (cache {outcome:?})\n",
            started.elapsed().as_secs_f64() * 1e3
        )),
        Err(reason) => {
            // A build that never ran takes no space.
            store.forget(body.clone()).await;
            Err(refused(reason))
        }
    }
}

/// A refused swap: the old version keeps running.
fn refused(reason: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("swap refused, the old version keeps running: {reason}\n"),
    )
        .into_response()
}
