//! `tenure run --config FILE -- CMD ARGS…`: run a command while this node
//! leads, and stop it before the lease can lapse.
//!
//! The command starts when the node leads and holds its lease, with
//! `TENURE_NODE_ID`, `TENURE_TERM` and `TENURE_FENCING_TOKEN` in its
//! environment, in a process group of its own, its output in the node's
//! log. The moment the fencing token is revoked — leadership lost, given
//! up, or not renewed by `[protocol] lease-guard-ms` before the lease would
//! lapse — its group gets SIGTERM, and SIGKILL `[command] grace-ms` later
//! (below the guard, so before the lease could lapse). If the node process
//! dies, even by SIGKILL, the command is killed with it (Linux: a
//! parent-death signal), so a crashed leader leaves no orphan working on.
//! A command that exits on its own while the node leads is restarted after
//! a back-off, or makes the node step down (`[command] on-exit`). A frozen
//! node cannot stop its command: attach `TENURE_FENCING_TOKEN` to every
//! write, and let the store refuse tokens below the highest it has seen.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::config::{CommandConfig, OnExit};
use crate::embed::EmbeddedNode;

/// The longest wait between restarts of a command that keeps exiting.
pub const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

/// How long a command may take to stop when the node shuts down, before
/// SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What to run, and how.
#[derive(Clone, Debug)]
pub struct Supervised {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// `[command]`: grace, what an exit causes, restart back-off.
    pub config: CommandConfig,
    /// `[protocol] lease-guard-ms`: how long before the lease lapses the
    /// token is revoked (for the margins the log reports).
    pub lease_guard: Duration,
}

/// Runs `what` whenever `node` leads, until `stop` is cancelled; then
/// stops a running command (SIGTERM, SIGKILL after [`SHUTDOWN_GRACE`]) and
/// returns, so the caller can hand leadership over.
pub async fn supervise(
    node: &EmbeddedNode,
    what: &Supervised,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    anyhow::ensure!(!what.argv.is_empty(), "no command to run");
    let id = node.leadership().node;
    loop {
        let guard = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            guard = node.leading() => guard?,
        };
        let term = guard.fencing_token();
        let mut watch = node.watch();
        let mut lapses_at = lease_lapse(&watch.borrow(), what.lease_guard);
        let mut backoff = what.config.restart_backoff;
        'term: loop {
            let mut child = spawn(what, &id, term)?;
            let pid = child.id();
            tracing::info!(node = %id, term, pid, "leading: command started");
            let started = Instant::now();
            let ended = loop {
                tokio::select! {
                    _ = stop.cancelled() => {
                        stop_child(&mut child, &id, term, SHUTDOWN_GRACE, lapses_at).await;
                        return Ok(());
                    }
                    _ = guard.lost() => {
                        tracing::info!(
                            node = %id, term, pid,
                            lease_lapses_in_ms = margin_ms(lapses_at),
                            "fencing token revoked: SIGTERM to the command"
                        );
                        stop_child(&mut child, &id, term, what.config.grace, lapses_at).await;
                        tracing::info!(
                            node = %id, term, pid,
                            lease_lapses_in_ms = margin_ms(lapses_at),
                            "command stopped"
                        );
                        break 'term;
                    }
                    changed = watch.changed() => {
                        if changed.is_err() {
                            stop_child(&mut child, &id, term, what.config.grace, lapses_at).await;
                            anyhow::bail!("the node stopped");
                        }
                        if let Some(at) = lease_lapse(&watch.borrow_and_update(), what.lease_guard) {
                            lapses_at = Some(at);
                        }
                    }
                    status = child.wait() => break status,
                }
            };
            let status = ended.context("waiting for the command")?;
            tracing::warn!(node = %id, term, pid, %status, "the command exited on its own");
            match what.config.on_exit {
                OnExit::StepDown => {
                    node.step_down().await?;
                    break 'term;
                }
                OnExit::Restart => {
                    // A command that ran a while starts from the first
                    // back-off again.
                    if started.elapsed() > MAX_RESTART_BACKOFF {
                        backoff = what.config.restart_backoff;
                    }
                    tracing::info!(node = %id, term, backoff_ms = backoff.as_millis() as u64, "restarting the command");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = guard.lost() => break 'term,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
                }
            }
        }
    }
}

/// Milliseconds until `lapses_at` (negative once past; NaN if unknown, as
/// when the node never held a lease in this term), for the log.
fn margin_ms(lapses_at: Option<Instant>) -> f64 {
    let now = Instant::now();
    match lapses_at {
        Some(at) if at >= now => (at - now).as_secs_f64() * 1e3,
        Some(at) => -((now - at).as_secs_f64() * 1e3),
        None => f64::NAN,
    }
}

/// When the protocol's lease lapses, for a leadership whose token is good.
fn lease_lapse(now: &crate::node::leadership::Leadership, guard: Duration) -> Option<Instant> {
    now.valid_until.map(|until| until + guard)
}

/// The service manager's variables (systemd's notify socket and
/// watchdog), which children of `tenure run` — the supervised command and
/// the hooks — must not inherit: they would let a child speak for the
/// node's unit.
pub const SERVICE_MANAGER_VARIABLES: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// Starts the command for `term` in a process group of its own.
fn spawn(what: &Supervised, node: &str, term: u64) -> anyhow::Result<Child> {
    let mut command = Command::new(&what.argv[0]);
    command
        .args(&what.argv[1..])
        .env("TENURE_NODE_ID", node)
        .env("TENURE_TERM", term.to_string())
        .env("TENURE_FENCING_TOKEN", term.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in SERVICE_MANAGER_VARIABLES {
        command.env_remove(name);
    }
    die_with_this_process(&mut command);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {:?}", what.argv[0]))?;
    let pid = child.id();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out, node.to_string(), pid, "stdout"));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err, node.to_string(), pid, "stderr"));
    }
    Ok(child)
}

/// Writes each line the command prints to the node's log.
async fn forward_lines(
    stream: impl tokio::io::AsyncRead + Unpin,
    node: String,
    pid: Option<u32>,
    which: &'static str,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(node = %node, pid, stream = which, "command: {line}");
    }
}

/// SIGTERM to the command's group; SIGKILL after `grace` if it has not
/// exited; reaps it. `lapses_at`: when the lease lapses, for the log.
async fn stop_child(
    child: &mut Child,
    node: &str,
    term: u64,
    grace: Duration,
    lapses_at: Option<Instant>,
) {
    signal_group(child, libc::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => {
            tracing::info!(node, term, status = ?status.ok(), "the command exited after SIGTERM");
        }
        Err(_) => {
            signal_group(child, libc::SIGKILL);
            tracing::warn!(
                node,
                term,
                grace_ms = grace.as_millis() as u64,
                lease_lapses_in_ms = margin_ms(lapses_at),
                "the command outlived its grace: SIGKILL sent"
            );
            let _ = child.wait().await;
        }
    }
}

/// Sends `signal` to the command's process group (it leads one).
fn signal_group(child: &Child, signal: libc::c_int) {
    let Some(pid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) else {
        return; // already reaped
    };
    // SAFETY: kill(2) takes plain integers and touches no memory; the
    // group is our own unreaped child's (it leads it: process_group(0)).
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Linux: the command gets SIGKILL when this process dies, however it
/// dies (PR_SET_PDEATHSIG; the node's runtime thread, which spawns it,
/// lives as long as the process). Elsewhere: nothing (documented).
fn die_with_this_process(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid is async-signal-safe.
        let parent = unsafe { libc::getpid() };
        // SAFETY: between fork and exec only async-signal-safe calls
        // (prctl, getppid, _exit) are made, and no memory is allocated.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}
