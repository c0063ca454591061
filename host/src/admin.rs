//! The admin endpoint: HTTP on the admin address (loopback by default).
//!
//! - `GET /status`: the node's [`NodeReport`] as JSON.
//! - `POST /step-down`: give up leadership (or a candidacy).
//! - `POST /call`: the request body goes to the plugin's `on-call`; its
//!   reply is the response body (200), its error a 409 with the reason.
//!
//! Handlers only pass a [`Command`] to the node task and wait for its
//! answer; they never touch the wasm stores.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::node::{Command, NodeReport};

/// How long a handler waits for the node task.
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the admin API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    commands: mpsc::Sender<Command>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/status", get(status))
        .route("/step-down", post(step_down))
        .route("/call", post(call))
        .with_state(commands);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
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

async fn status(
    State(commands): State<mpsc::Sender<Command>>,
) -> Result<Json<NodeReport>, Response> {
    ask(&commands, Command::Status).await.map(Json)
}

async fn step_down(
    State(commands): State<mpsc::Sender<Command>>,
) -> Result<&'static str, Response> {
    ask(&commands, Command::StepDown).await?;
    Ok("stepped down\n")
}

async fn call(
    State(commands): State<mpsc::Sender<Command>>,
    body: axum::body::Bytes,
) -> Result<Vec<u8>, Response> {
    let request = body.to_vec();
    match ask(&commands, |reply| Command::Call { request, reply }).await? {
        Ok(reply) => Ok(reply),
        Err(reason) => Err((StatusCode::CONFLICT, format!("{reason}\n")).into_response()),
    }
}
