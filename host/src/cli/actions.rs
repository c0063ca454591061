//! Requests that change a running node, through its admin endpoint:
//! `tenure plugin swap`, `tenure protocol swap`, `tenure step-down` and
//! `tenure campaign`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use tenure_host::admin_client::{ACTION_TIMEOUT, Credentials, request_as};

/// Sends the component at `path` to the node's `POST /plugin` and reports
/// whether the new version runs (exit 0) or was refused (exit 1, the old
/// version keeps running).
pub async fn swap(
    admin: SocketAddr,
    credentials: &Credentials,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let (bytes, name) = super::rolling::read_plugin(path)?;
    let started = Instant::now();
    let (code, body) = request_as(
        admin,
        credentials,
        "POST",
        &format!("/plugin?name={name}"),
        &bytes,
        ACTION_TIMEOUT,
    )
    .await?;
    let took = started.elapsed().as_secs_f64() * 1e3;
    if code == 200 {
        print!("{}", body);
        println!("(command to current: {took:.1} ms)");
        Ok(ExitCode::SUCCESS)
    } else {
        eprint!("{}", body);
        Ok(ExitCode::FAILURE)
    }
}

/// Sends another build of the election component to the node's `POST
/// /protocol`: exit 0 when it runs (with the node's state), 1 when refused.
pub async fn swap_protocol(
    admin: SocketAddr,
    credentials: &Credentials,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading protocol {}", path.display()))?;
    post(admin, credentials, "/protocol", &bytes).await
}

/// `tenure step-down` / `tenure campaign` / `tenure transfer`: `POST path`
/// on the admin endpoint, printing the node's answer.
pub async fn admin_action(
    admin: SocketAddr,
    credentials: &Credentials,
    path: &str,
) -> anyhow::Result<ExitCode> {
    post(admin, credentials, path, &[]).await
}

/// `POST path` with `body`: prints the answer, exit 0 on 200, else 1.
async fn post(
    admin: SocketAddr,
    credentials: &Credentials,
    path: &str,
    body: &[u8],
) -> anyhow::Result<ExitCode> {
    let (code, reply) = request_as(admin, credentials, "POST", path, body, ACTION_TIMEOUT).await?;
    if code == 200 {
        print!("{reply}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprint!("{admin} answered {code}: {reply}");
        Ok(ExitCode::FAILURE)
    }
}
