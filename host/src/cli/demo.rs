//! `tenure demo`: a 3-node cluster on loopback, as child processes of this
//! binary, with the scheduler plugin, and a live view of who leads.
//!
//! Each node is a real `tenure run` with its own config, data directory and
//! sockets. The demo polls every node's admin endpoint and prints each
//! change of role, term or leader, and relays the scheduler's runs from
//! the nodes' logs. Press Enter to kill the leader with SIGKILL (it is
//! restarted a few seconds later and rejoins as a follower); type `swap`
//! and Enter to hot-swap every node's scheduler for its v2 build (followers
//! first), whose runs say "(v2)"; Ctrl-C stops everything and removes the
//! demo's files.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

use tenure_host::admin_client::{ACTION_TIMEOUT, STATUS_TIMEOUT, fetch_status, request};

/// How the demo is set up.
pub struct DemoOptions {
    /// The first peer port; nodes use base, base+1, base+2 and admin
    /// endpoints base+100…
    pub base_port: u16,
    /// The behaviour plugin (default: the workspace's release build of the
    /// scheduler example).
    pub plugin: Option<PathBuf>,
    /// `[plugin.config]` entries as KEY=VALUE (default, for the default
    /// scheduler only: period-ms=1000, job=report).
    pub plugin_config: Vec<String>,
    /// Stop by itself after this long (default: run until Ctrl-C).
    pub duration: Option<Duration>,
    /// Kill the leader by itself after this long (default: on Enter).
    pub kill_leader_after: Option<Duration>,
}

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const SECRET: &str = "tenure-demo-secret-not-for-production";

struct DemoNode {
    id: &'static str,
    config: PathBuf,
    admin: SocketAddr,
    child: Option<Child>,
    restart_at: Option<Instant>,
}

/// Runs the demo until Ctrl-C or `duration`.
pub async fn demo(options: DemoOptions) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the tenure binary")?;
    let custom = options.plugin.is_some();
    let plugin = options.plugin.clone().unwrap_or_else(default_plugin);
    if !plugin.is_file() {
        bail!(
            "plugin not found at {}: build the examples with scripts/build-guests.sh \
             (or pass --plugin PATH)",
            plugin.display()
        );
    }
    // The nodes' configs live in a temporary folder, and relative paths in
    // a config are read from the config's folder: pass an absolute one.
    let plugin = std::fs::canonicalize(&plugin)
        .with_context(|| format!("resolving {}", plugin.display()))?;
    let config = plugin_config(&options.plugin_config, custom)?;
    let dir = std::env::temp_dir().join(format!("tenure-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut nodes = write_configs(&dir, options.base_port, &plugin, &config)?;
    let what = if custom {
        format!("the plugin {}", plugin.display())
    } else {
        "the scheduler plugin (one run per second, on the leader only)".to_string()
    };
    println!(
        "Tenure demo: 3 nodes on 127.0.0.1:{}-{}, each running {what}. Files in {}.",
        options.base_port,
        options.base_port + 2,
        dir.display()
    );
    for node in &mut nodes {
        node.child = Some(spawn(&exe, node)?);
    }
    println!(
        "Press Enter to kill the leader (SIGKILL) and watch the failover; type `swap` and Enter \
         to hot-swap every scheduler for its v2 build; Ctrl-C to stop.\n"
    );
    // Listen for SIGINT and SIGTERM from the start, so a signal sent to
    // this process alone (not to the terminal's process group) stops the
    // nodes too, and none is missed between two turns of the loop.
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let result = watch(&mut nodes, &exe, &options, &mut interrupt, &mut terminate).await;
    let children: Vec<Child> = nodes.iter_mut().filter_map(|n| n.child.take()).collect();
    stop_all(children).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("All nodes stopped.");
    result.map(|()| ExitCode::SUCCESS)
}

fn default_plugin() -> PathBuf {
    crate_target_dir().join("wasm32-wasip2/release/tenure_plugin_scheduler.wasm")
}

fn crate_target_dir() -> PathBuf {
    tenure_host::component_path::election_wasm()
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
}

/// The `[plugin.config]` table: the KEY=VALUE pairs given, or the
/// scheduler's defaults when the default plugin runs without any.
fn plugin_config(pairs: &[String], custom: bool) -> anyhow::Result<String> {
    if pairs.is_empty() && !custom {
        return Ok("period-ms = \"1000\"\njob = \"report\"\n".to_string());
    }
    let mut table = String::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("`--config {pair}`: expected KEY=VALUE");
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            bail!("`--config {pair}`: the key must be letters, digits, `-` or `_`");
        }
        table.push_str(&format!("{key} = {}\n", toml_string(value)));
    }
    Ok(table)
}

/// `text` as a TOML basic string (JSON's escaping is valid TOML).
fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn write_configs(
    dir: &Path,
    base: u16,
    plugin: &Path,
    plugin_config: &str,
) -> anyhow::Result<Vec<DemoNode>> {
    let port = |i: usize, offset: u16| base + offset + i as u16;
    let mut nodes = Vec::new();
    for (i, id) in NODES.iter().enumerate() {
        let peers: String = NODES
            .iter()
            .enumerate()
            .map(|(j, p)| format!("{p} = \"127.0.0.1:{}\"\n", port(j, 0)))
            .collect();
        let admin: SocketAddr = format!("127.0.0.1:{}", port(i, 100)).parse()?;
        let text = format!(
            "node-id = \"{id}\"\ncluster-id = \"demo\"\nlisten = \"127.0.0.1:{}\"\n\
             admin = \"{admin}\"\ndata-dir = \"{id}\"\nsecret = \"{SECRET}\"\n\n[peers]\n{peers}\n\
             [plugin]\npath = {}\n[plugin.config]\n{plugin_config}",
            port(i, 0),
            toml_string(&plugin.display().to_string())
        );
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
        nodes.push(DemoNode {
            id,
            config,
            admin,
            child: None,
            restart_at: None,
        });
    }
    Ok(nodes)
}

fn spawn(exe: &Path, node: &DemoNode) -> anyhow::Result<Child> {
    let mut child = Command::new(exe)
        .args(["run", "--config"])
        .arg(&node.config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", node.id))?;
    if let Some(stderr) = child.stderr.take() {
        let id = node.id;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(message) = plugin_message(&line) {
                    println!("    {id} plugin: {message}");
                } else if line.contains("ERROR")
                    || line.contains("refused")
                    || line.starts_with("error:")
                {
                    println!("    {id}: {line}");
                }
            }
        });
    }
    Ok(child)
}

/// The message of a log line a plugin wrote through `leader-api.log`
/// (`… tenure_host::plugin: MESSAGE node="n1" plugin="x.wasm"`), if it is one.
fn plugin_message(line: &str) -> Option<&str> {
    if !line.contains(" plugin=") {
        return None;
    }
    let (_, rest) = line.split_once("tenure_host::plugin: ")?;
    Some(rest.split(" node=").next().unwrap_or(rest).trim())
}

/// How long the nodes get to stop cleanly (a leader hands over first)
/// before they are killed: the demo exits within about a second.
const STOP_GRACE: Duration = Duration::from_millis(800);

/// Stops every node at once: SIGTERM to all, then SIGKILL to any still
/// running after [`STOP_GRACE`].
async fn stop_all(mut children: Vec<Child>) {
    for child in &children {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for child in &mut children {
        if tokio::time::timeout_at(deadline, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

async fn watch(
    nodes: &mut [DemoNode],
    exe: &Path,
    options: &DemoOptions,
    interrupt: &mut Signal,
    terminate: &mut Signal,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last: BTreeMap<&str, String> = BTreeMap::new();
    let mut enter = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut auto_kill = options.kill_leader_after;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let kill = tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            line = enter.next_line(), if stdin_open => {
                match line {
                    Ok(Some(text)) if text.trim() == "swap" => {
                        swap_to_v2(nodes, started).await;
                        false
                    }
                    Ok(Some(_)) => true,
                    _ => { stdin_open = false; false }
                }
            }
            _ = tick.tick() => false,
        };
        let elapsed = started.elapsed();
        if options.duration.is_some_and(|d| elapsed >= d) {
            return Ok(());
        }
        let kill = kill || auto_kill.is_some_and(|after| elapsed >= after);
        if kill {
            auto_kill = None;
            kill_leader(nodes, started).await;
        }
        for node in nodes.iter_mut() {
            if node.restart_at.is_some_and(|at| Instant::now() >= at) {
                node.restart_at = None;
                println!(
                    "[{:6.1}s] restarting {}",
                    started.elapsed().as_secs_f64(),
                    node.id
                );
                node.child = Some(spawn(exe, node)?);
            }
            let view = match fetch_status(node.admin, STATUS_TIMEOUT).await {
                Ok(r) => format!(
                    "{} in term {}{}",
                    r.role,
                    r.term,
                    match (&r.leader, r.role.as_str()) {
                        (_, "leader") => String::new(),
                        (Some(l), _) => format!(", following {l}"),
                        (None, _) => ", no leader known".to_string(),
                    }
                ),
                Err(_) if node.child.is_none() => "down".to_string(),
                Err(_) => "starting".to_string(),
            };
            if last.get(node.id) != Some(&view) {
                println!(
                    "[{:6.1}s] {}: {view}",
                    started.elapsed().as_secs_f64(),
                    node.id
                );
                last.insert(node.id, view);
            }
        }
    }
}

/// Hot-swaps every running node's scheduler for the v2 build, followers
/// first, printing each result.
async fn swap_to_v2(nodes: &[DemoNode], started: Instant) {
    let v2 = crate_target_dir().join("wasm32-wasip2/release/tenure_plugin_scheduler_v2.wasm");
    let bytes = match std::fs::read(&v2) {
        Ok(bytes) => bytes,
        Err(e) => {
            println!(
                "cannot read {}: {e} (scripts/build-guests.sh builds it)",
                v2.display()
            );
            return;
        }
    };
    let mut order = Vec::new();
    for node in nodes.iter().filter(|n| n.child.is_some()) {
        let leads =
            matches!(fetch_status(node.admin, STATUS_TIMEOUT).await, Ok(r) if r.role == "leader");
        order.push((leads, node));
    }
    order.sort_by_key(|(leads, _)| *leads);
    for (_, node) in order {
        let path = "/plugin?name=tenure_plugin_scheduler_v2.wasm";
        let outcome = match request(node.admin, "POST", path, &bytes, ACTION_TIMEOUT).await {
            Ok((200, body)) => body.trim().to_string(),
            Ok((_, body)) => format!("refused: {}", body.trim()),
            Err(e) => format!("failed: {e:#}"),
        };
        println!(
            "[{:6.1}s] {}: {outcome}",
            started.elapsed().as_secs_f64(),
            node.id
        );
    }
}

async fn kill_leader(nodes: &mut [DemoNode], started: Instant) {
    for node in nodes.iter_mut() {
        let leads =
            matches!(fetch_status(node.admin, STATUS_TIMEOUT).await, Ok(r) if r.role == "leader");
        if !leads {
            continue;
        }
        if let Some(mut child) = node.child.take() {
            println!(
                "[{:6.1}s] kill -9 {} (the leader, pid {})",
                started.elapsed().as_secs_f64(),
                node.id,
                child.id().unwrap_or_default()
            );
            let _ = child.kill().await;
            node.restart_at = Some(Instant::now() + Duration::from_secs(5));
        }
        return;
    }
    println!(
        "[{:6.1}s] no leader to kill right now",
        started.elapsed().as_secs_f64()
    );
}
