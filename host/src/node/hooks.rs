//! `[hooks]`: shell commands run on protocol events, as keepalived's
//! notify scripts and Patroni's callbacks are.
//!
//! Hooks run on a task of their own, one at a time in event order, so the
//! node's task never waits for one; a queue of [`QUEUED`] holds what is
//! waiting (an event that finds it full is logged and skipped). Each hook
//! is `sh -c COMMAND` with the event in its environment (see
//! [`crate::config::HooksConfig`]), its output in the node's log, and is
//! killed if it overruns its timeout. A `became-leader` hook that fails
//! refuses leadership through the same path a plugin's refusal takes
//! ([`PluginOutput::RefuseLeadership`]): the node steps down and stands
//! aside for the refusal back-off.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::bindings::types::{Event, NodeStatus};
use crate::config::HooksConfig;
use crate::plugin::runner::PluginOutput;

/// How many hook runs may wait.
pub const QUEUED: usize = 64;

/// One hook to run.
struct Run {
    event: &'static str,
    command: String,
    env: Vec<(&'static str, String)>,
    /// The term a failure refuses (`became-leader` only).
    refuses: Option<u64>,
}

/// The node's side of its hooks.
pub struct Hooks {
    config: HooksConfig,
    node: String,
    queue: mpsc::Sender<Run>,
}

impl Hooks {
    /// Starts the hook runner, if any hook is configured; refusals go to
    /// `refusals` (the node's plugin-output channel).
    pub fn start(
        config: &HooksConfig,
        node: &str,
        refusals: mpsc::UnboundedSender<PluginOutput>,
    ) -> Option<Hooks> {
        let any = config.became_leader.is_some()
            || config.became_follower.is_some()
            || config.term_changed.is_some();
        if !any {
            return None;
        }
        let (queue, runs) = mpsc::channel(QUEUED);
        tokio::spawn(run_hooks(runs, config.timeout, node.to_string(), refusals));
        Some(Hooks {
            config: config.clone(),
            node: node.to_string(),
            queue,
        })
    }

    /// Queues the hook for `event`, if one is configured; `status` is the
    /// node's after the call that emitted it.
    pub fn on_event(&self, event: &Event, status: &NodeStatus) {
        let mut env = vec![("TENURE_NODE_ID", self.node.clone())];
        if let Some(leader) = &status.leader {
            env.push(("TENURE_LEADER", leader.clone()));
        }
        let (name, command, refuses) = match event {
            Event::BecameLeader(term) => {
                env.push(("TENURE_TERM", term.to_string()));
                env.push(("TENURE_FENCING_TOKEN", term.to_string()));
                ("became-leader", &self.config.became_leader, Some(*term))
            }
            Event::BecameFollower(f) => {
                env.push(("TENURE_TERM", f.term.to_string()));
                ("became-follower", &self.config.became_follower, None)
            }
            Event::TermChanged(t) => {
                env.push(("TENURE_TERM", t.new.to_string()));
                env.push(("TENURE_OLD_TERM", t.old.to_string()));
                ("term-changed", &self.config.term_changed, None)
            }
            Event::PeerJoined(_) | Event::PeerLeft(_) => return,
        };
        let Some(command) = command else { return };
        env.push(("TENURE_EVENT", name.to_string()));
        let run = Run {
            event: name,
            command: command.clone(),
            env,
            refuses,
        };
        if self.queue.try_send(run).is_err() {
            tracing::warn!(node = %self.node, event = name, "hook queue full or closed: hook skipped");
        }
    }
}

/// Runs the queued hooks one by one.
async fn run_hooks(
    mut runs: mpsc::Receiver<Run>,
    timeout: std::time::Duration,
    node: String,
    refusals: mpsc::UnboundedSender<PluginOutput>,
) {
    while let Some(run) = runs.recv().await {
        let failure = match run_one(&run, timeout, &node).await {
            Ok(()) => continue,
            Err(why) => why,
        };
        tracing::warn!(node = %node, event = run.event, "hook failed: {failure}");
        if let Some(term) = run.refuses {
            let reason = format!("the became-leader hook {failure}");
            let _ = refusals.send(PluginOutput::RefuseLeadership { term, reason });
        }
    }
}

/// One hook, to completion or its timeout; why it failed, if it did.
async fn run_one(run: &Run, timeout: std::time::Duration, node: &str) -> Result<(), String> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&run.command)
        .envs(run.env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in crate::supervise::SERVICE_MANAGER_VARIABLES {
        command.env_remove(name);
    }
    let mut child = command.spawn().map_err(|e| format!("did not start: {e}"))?;
    for (stream, which) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            "stdout",
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            "stderr",
        ),
    ] {
        if let Some(stream) = stream {
            let (node, event) = (node.to_string(), run.event);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(node = %node, event, stream = which, "hook: {line}");
                }
            });
        }
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("exited with {status}")),
        Ok(Err(e)) => Err(format!("could not be waited for: {e}")),
        Err(_) => Err(format!(
            "ran past its {} ms timeout and was killed",
            timeout.as_millis()
        )),
    }
}
