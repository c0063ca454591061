//! `tenure plugin compile --admin A [--admin B …] PATH` and the rolling
//! `tenure plugin swap --admin A --admin B … PATH`.
//!
//! A first swap of a big plugin (a 15 MB Python or JavaScript component)
//! spends seconds in Cranelift on every node. Compiling is harmless on a
//! node (it runs below the node's threads and changes nothing), but done
//! node by node inside the swap it leaves the cluster half on the old
//! version for all that time. So a rolling swap compiles on every node
//! first — `POST /plugin/compile`, into each node's artifact cache — and
//! swaps on none until all have compiled; then it swaps the followers,
//! one at a time, and the leader last, each a cached swap of a few
//! milliseconds. The first refusal stops it: the nodes before it run the
//! new version, the rest the old one, and it says which.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use tenure_host::admin_client::{
    ACTION_TIMEOUT, Credentials, STATUS_TIMEOUT, fetch_status_as, request_as,
};

/// The plugin at `path`, and the name a node reports it under (its file
/// name, reduced to characters safe in a query string).
pub fn read_plugin(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    Ok((bytes, name))
}

/// Compiles on each node in turn; `false` if one refused (named on
/// stderr). One at a time: on a machine that hosts several nodes,
/// compiles side by side would take every core at once.
async fn compile_everywhere(
    admins: &[SocketAddr],
    credentials: &Credentials,
    bytes: &[u8],
    name: &str,
) -> anyhow::Result<bool> {
    for admin in admins {
        let started = Instant::now();
        let (code, body) = request_as(
            *admin,
            credentials,
            "POST",
            &format!("/plugin/compile?name={name}"),
            bytes,
            ACTION_TIMEOUT,
        )
        .await
        .with_context(|| format!("compiling on {admin}"))?;
        if code != 200 {
            eprint!("{admin}: {body}");
            return Ok(false);
        }
        println!(
            "{admin}: {} (request {:.1} ms)",
            body.trim_end(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(true)
}

/// `tenure plugin compile`: compiles the plugin into every named node's
/// artifact cache; exit 1 if one refused it.
pub async fn compile(
    admins: &[SocketAddr],
    credentials: &Credentials,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let (bytes, name) = read_plugin(path)?;
    Ok(
        if compile_everywhere(admins, credentials, &bytes, &name).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// The rolling `tenure plugin swap` over several nodes: compile on all,
/// then swap followers first and the leader last.
pub async fn swap(
    admins: &[SocketAddr],
    credentials: &Credentials,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let (bytes, name) = read_plugin(path)?;
    let started = Instant::now();
    if !compile_everywhere(admins, credentials, &bytes, &name).await? {
        eprintln!("swapped on no node: every node keeps the old version");
        return Ok(ExitCode::FAILURE);
    }
    let compiled = started.elapsed();
    let order = followers_first(admins, credentials).await;
    let mut done: Vec<String> = Vec::new();
    for (admin, role) in &order {
        let (code, body) = request_as(
            *admin,
            credentials,
            "POST",
            &format!("/plugin?name={name}"),
            &bytes,
            ACTION_TIMEOUT,
        )
        .await
        .with_context(|| format!("swapping on {admin}"))?;
        if code != 200 {
            eprint!("{admin} ({role}): {body}");
            let rest: Vec<String> = order
                .iter()
                .skip(done.len())
                .map(|(a, _)| a.to_string())
                .collect();
            eprintln!(
                "stopped: the new version runs on {}; {} keep the old one",
                if done.is_empty() {
                    "no node".to_string()
                } else {
                    done.join(", ")
                },
                rest.join(", ")
            );
            return Ok(ExitCode::FAILURE);
        }
        print!("{admin} ({role}): {body}");
        done.push(admin.to_string());
    }
    println!(
        "rolled across {} nodes: compiled everywhere in {:.1} s, then swapped in {:.1} ms",
        order.len(),
        compiled.as_secs_f64(),
        (started.elapsed() - compiled).as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

/// The nodes with their roles, followers first and the leader last (a
/// node whose status cannot be read keeps its place among the followers).
async fn followers_first(
    admins: &[SocketAddr],
    credentials: &Credentials,
) -> Vec<(SocketAddr, String)> {
    let mut order = Vec::new();
    for admin in admins {
        let role = match fetch_status_as(*admin, credentials, STATUS_TIMEOUT).await {
            Ok(report) => report.role,
            Err(_) => "unknown role".to_string(),
        };
        order.push((*admin, role));
    }
    order.sort_by_key(|(_, role)| role == "leader");
    order
}
