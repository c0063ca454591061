//! Real `tenure run` processes on 127.0.0.1, for the multi-process tests,
//! the polyglot tests and `tenure-bench`: one place that plans a loopback
//! cluster's ports, writes its configs, starts and signals its processes,
//! keeps their logs, reads their event logs, and leaves no process behind.
//!
//! Ports come from [`super::ports`], so nothing else in the run — another
//! test's cluster, an outgoing connection — can hold them. Each node's
//! output goes to `DIR/ID.log`, appended across restarts, every start
//! marked with a line (so [`LocalCluster::log_since_start`] finds the
//! latest life's lines). Every process still running is killed when the
//! cluster is dropped (a frozen one too).
//!
//! ```no_run
//! use std::path::Path;
//! use tenure_host::testing::processes::LocalCluster;
//!
//! # fn main() -> anyhow::Result<()> {
//! let dir = std::env::temp_dir().join("my-cluster");
//! let mut cluster = LocalCluster::plan(&dir, Path::new("target/release/tenure"), "demo", 3)?;
//! for id in cluster.ids() {
//!     cluster.write_config(&id, "[timings]\nheartbeat-interval-ms = 20\n")?;
//!     cluster.spawn(&id)?;
//! }
//! println!("n1's admin endpoint: http://{}/status", cluster.admin("n1")?);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{Context as _, bail};

use super::ports;

/// The shared secret every planned node's config carries.
pub const SECRET: &str = "local-cluster-secret-0123456789";

/// The line written to a node's log before each start (then the start's
/// number).
pub const START_MARK: &str = "=== tenure test kit: start ";

/// A child process with its output in a log file, signalled directly (no
/// `kill` subprocess, so a signal's time is the syscall's), and killed when
/// dropped.
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with stdin closed and stdout and stderr appended
    /// to `log`.
    pub fn spawn(command: Command, log: &Path) -> anyhow::Result<Process> {
        Process::spawn_with_stderr(command, log, None)
    }

    /// [`Process::spawn`], with stderr going to `stderr` instead of the
    /// log when given (a pipe nobody reads, say); stdout stays in the log.
    pub fn spawn_with_stderr(
        mut command: Command,
        log: &Path,
        stderr: Option<OwnedFd>,
    ) -> anyhow::Result<Process> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = match stderr {
            Some(fd) => Stdio::from(fd),
            None => Stdio::from(out.try_clone().context("duplicating the log file")?),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        Ok(Process {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id, while it runs (or has exited and is not reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the process's output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Sends `signal` (e.g. `libc::SIGSTOP`).
    pub fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        let pid = self.pid().context("the process is not running")?;
        let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is
        // our own child's, not yet reaped, so it cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Its exit status, if it has exited (then it is reaped).
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait().context("asking whether it exited")?;
        if status.is_some() {
            self.child = None;
        }
        Ok(status)
    }

    /// Waits for it to exit (after a SIGTERM, say) and reaps it.
    pub fn wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.child.take() {
            Some(mut child) => Ok(Some(child.wait().context("waiting for the process")?)),
            None => Ok(None),
        }
    }

    /// SIGKILLs and reaps the process (a frozen one too: SIGKILL needs no
    /// thaw); its sockets are closed once this returns.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL")?;
            child.wait().context("reaping a killed process")?;
        }
        Ok(())
    }

    /// Replaces the process (killing it if it runs) with one from
    /// `command`, logging to the same file.
    pub fn respawn(&mut self, command: Command) -> anyhow::Result<()> {
        self.kill()?;
        *self = Process::spawn(command, &self.log)?;
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// One planned node: its addresses, and its process once started.
struct Planned {
    listen: SocketAddr,
    admin: SocketAddr,
    starts: u32,
    process: Option<Process>,
    /// What `tenure run … --` supervises, if anything.
    command: Vec<String>,
    /// Environment variables the process gets besides the kit's own.
    env: Vec<(String, String)>,
    /// Where its stderr goes instead of its log, if set.
    stderr: Option<OwnedFd>,
}

/// A loopback cluster of `tenure run` processes in one directory. See the
/// module docs.
pub struct LocalCluster {
    dir: PathBuf,
    binary: PathBuf,
    cluster_id: String,
    nodes: BTreeMap<String, Planned>,
}

impl LocalCluster {
    /// Plans nodes `n1`…`nSIZE` of `cluster_id` in `dir` (emptied first),
    /// each with a peer port and an admin port; starts nothing.
    pub fn plan(
        dir: &Path,
        binary: &Path,
        cluster_id: &str,
        size: usize,
    ) -> anyhow::Result<LocalCluster> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cluster = LocalCluster {
            dir: dir.to_path_buf(),
            binary: binary.to_path_buf(),
            cluster_id: cluster_id.to_string(),
            nodes: BTreeMap::new(),
        };
        for i in 1..=size {
            cluster.add_node(&format!("n{i}"))?;
        }
        Ok(cluster)
    }

    /// Plans one more node `id` (a joiner, a second process): its ports.
    pub fn add_node(&mut self, id: &str) -> anyhow::Result<()> {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let planned = Planned {
            listen: loopback(ports::port()?),
            admin: loopback(ports::port()?),
            starts: 0,
            process: None,
            command: Vec::new(),
            env: Vec::new(),
            stderr: None,
        };
        self.nodes.insert(id.to_string(), planned);
        Ok(())
    }

    /// The cluster's directory: configs, logs, and each node's data
    /// directory (`DIR/ID`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The planned nodes' ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    fn planned(&self, id: &str) -> anyhow::Result<&Planned> {
        self.nodes
            .get(id)
            .with_context(|| format!("no node {id} in this cluster"))
    }

    /// Where node `id` listens for peers.
    pub fn listen(&self, id: &str) -> anyhow::Result<SocketAddr> {
        Ok(self.planned(id)?.listen)
    }

    /// Node `id`'s admin endpoint.
    pub fn admin(&self, id: &str) -> anyhow::Result<SocketAddr> {
        Ok(self.planned(id)?.admin)
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Node `id`'s config file.
    pub fn config_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.toml"))
    }

    /// Node `id`'s log file (every start of it, appended).
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    /// A `[peers]` body naming `ids` at their planned addresses.
    pub fn peers_of(&self, ids: &[&str]) -> anyhow::Result<String> {
        ids.iter()
            .map(|id| Ok(format!("{id} = \"{}\"\n", self.listen(id)?)))
            .collect()
    }

    /// Writes node `id`'s config with every other planned node as a peer,
    /// then `extra` (more tables: `[timings]`, `[plugin]`, …).
    pub fn write_config(&self, id: &str, extra: &str) -> anyhow::Result<()> {
        let others: Vec<String> = self.nodes.keys().filter(|o| *o != id).cloned().collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        let peers = self.peers_of(&others)?;
        self.write_config_with_peers(id, &peers, extra)
    }

    /// Writes node `id`'s config with `peers` (a `[peers]` body) and then
    /// `extra`: the cluster's id and [`SECRET`], the planned addresses,
    /// `data-dir = "ID"`.
    pub fn write_config_with_peers(
        &self,
        id: &str,
        peers: &str,
        extra: &str,
    ) -> anyhow::Result<()> {
        let planned = self.planned(id)?;
        let text = format!(
            "node-id = \"{id}\"\ncluster-id = \"{}\"\nlisten = \"{}\"\nadmin = \"{}\"\n\
             data-dir = \"{id}\"\nsecret = \"{SECRET}\"\n[peers]\n{peers}\n{extra}",
            self.cluster_id, planned.listen, planned.admin
        );
        let path = self.config_path(id);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Switches node `id`'s written config (see
    /// [`LocalCluster::write_config`]) from the shared secret to mutual
    /// TLS: its `secret` line goes, and a `[tls]` table names `ca.pem`,
    /// `CERT.pem` and `CERT.key` in `certs` (as `tenure certs --out certs`
    /// writes them); a `[tls]` set before is replaced.
    pub fn use_tls(&self, id: &str, certs: &Path, cert: &str) -> anyhow::Result<()> {
        let path = self.config_path(id);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        // `[tls]` is always the last table this writes.
        let text = text.split("[tls]\n").next().unwrap_or_default();
        let mut text: String = text
            .lines()
            .filter(|l| !l.starts_with("secret = "))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!(
            "[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
            certs.join("ca.pem").display().to_string(),
            certs.join(format!("{cert}.pem")).display().to_string(),
            certs.join(format!("{cert}.key")).display().to_string(),
        ));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Makes node `id` run `command` while it leads (`tenure run … --
    /// COMMAND`), from its next start on.
    pub fn supervise(&mut self, id: &str, command: &[&str]) -> anyhow::Result<()> {
        let planned = self
            .nodes
            .get_mut(id)
            .with_context(|| format!("no node {id} in this cluster"))?;
        planned.command = command.iter().map(|a| a.to_string()).collect();
        Ok(())
    }

    /// Gives node `id`'s process `key=value` in its environment, from its
    /// next start on (`TENURE_LOG_FORMAT=json`, say).
    pub fn set_env(&mut self, id: &str, key: &str, value: &str) -> anyhow::Result<()> {
        let planned = self
            .nodes
            .get_mut(id)
            .with_context(|| format!("no node {id} in this cluster"))?;
        planned.env.push((key.to_string(), value.to_string()));
        Ok(())
    }

    /// Sends node `id`'s stderr to `fd` instead of its log, from its next
    /// start on (each start gets a duplicate): a pipe that nobody reads,
    /// to show that a node whose output stalls keeps its place.
    pub fn stderr_to(&mut self, id: &str, fd: OwnedFd) -> anyhow::Result<()> {
        let planned = self
            .nodes
            .get_mut(id)
            .with_context(|| format!("no node {id} in this cluster"))?;
        planned.stderr = Some(fd);
        Ok(())
    }

    /// Starts node `id` from its config (again, if it ran before: the old
    /// process is killed first), `RUST_LOG=info`, output to its log after a
    /// start mark.
    pub fn spawn(&mut self, id: &str) -> anyhow::Result<()> {
        let log = self.log_path(id);
        let config = self.config_path(id);
        let binary = self.binary.clone();
        let planned = self
            .nodes
            .get_mut(id)
            .with_context(|| format!("no node {id} in this cluster"))?;
        if let Some(mut old) = planned.process.take() {
            old.kill()?;
        }
        planned.starts += 1;
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        writeln!(file, "{START_MARK}{} ===", planned.starts)
            .with_context(|| format!("writing {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(planned.env.iter().map(|(k, v)| (k, v)));
        if !planned.command.is_empty() {
            command.arg("--").args(&planned.command);
        }
        let stderr = planned
            .stderr
            .as_ref()
            .map(OwnedFd::try_clone)
            .transpose()
            .context("duplicating the stderr given")?;
        planned.process = Some(Process::spawn_with_stderr(command, &log, stderr)?);
        Ok(())
    }

    /// Node `id`'s process, if it was started (and not killed since).
    pub fn process(&mut self, id: &str) -> Option<&mut Process> {
        self.nodes.get_mut(id)?.process.as_mut()
    }

    /// Whether node `id` was started and not killed or reaped since.
    pub fn is_running(&self, id: &str) -> bool {
        self.nodes
            .get(id)
            .and_then(|p| p.process.as_ref())
            .is_some_and(|p| p.pid().is_some())
    }

    /// Sends `signal` to node `id`.
    pub fn signal(&self, id: &str, signal: libc::c_int) -> anyhow::Result<()> {
        self.planned(id)?
            .process
            .as_ref()
            .with_context(|| format!("{id} is not running"))?
            .signal(signal)
    }

    /// SIGKILLs node `id` and reaps it (nothing if it is not running).
    pub fn kill(&mut self, id: &str) -> anyhow::Result<()> {
        match self.process(id) {
            Some(process) => process.kill(),
            None => Ok(()),
        }
    }

    /// The whole log of node `id` (every start), empty if none yet.
    pub fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// The lines node `id` logged since its latest start.
    pub fn log_since_start(&self, id: &str) -> String {
        let log = self.log(id);
        match log.rfind(START_MARK) {
            Some(at) => log[at..]
                .split_once('\n')
                .map_or(String::new(), |(_, rest)| rest.to_string()),
            None => log,
        }
    }

    /// The last `lines` lines of every node's log, under a `--- ID ---`
    /// header: for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        self.nodes
            .keys()
            .map(|id| {
                let text = self.log(id);
                let tail: Vec<&str> = text.lines().rev().take(lines).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {id} ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every (term, nodes) that the event logs (`DIR/ID/events.log`) of
    /// `ids` say became leader of that term; more than one node in a term
    /// is a broken election.
    pub fn leaders_by_term(&self, ids: &[&str]) -> anyhow::Result<BTreeMap<u64, Vec<String>>> {
        let mut by_term: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for id in ids {
            let path = self.data_dir(id).join("events.log");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                let event: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{}: not a JSON line: {line}", path.display()))?;
                if event["event"] != "became-leader" {
                    continue;
                }
                let term = event["term"].as_u64().context("an event without a term")?;
                let node = event["node"]
                    .as_str()
                    .context("an event without a node")?
                    .to_string();
                let nodes = by_term.entry(term).or_default();
                if !nodes.contains(&node) {
                    nodes.push(node);
                }
            }
        }
        Ok(by_term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_every_other_node_and_the_logs_mark_each_start() {
        let dir = std::env::temp_dir().join(format!("tenure-local-{}", std::process::id()));
        let mut cluster =
            LocalCluster::plan(&dir, Path::new("/bin/echo"), "plan", 3).expect("planned");
        assert_eq!(cluster.ids(), ["n1", "n2", "n3"]);
        cluster.write_config("n1", "[timings]\n").expect("written");
        let text = std::fs::read_to_string(cluster.config_path("n1")).expect("config");
        for peer in ["n2", "n3"] {
            let addr = cluster.listen(peer).expect("planned");
            assert!(text.contains(&format!("{peer} = \"{addr}\"")), "{text}");
        }
        assert!(
            !text.contains("n1 = "),
            "a node is not its own peer:\n{text}"
        );
        // `echo run --config …` stands in for tenure: it prints and exits.
        cluster.spawn("n1").expect("spawned");
        cluster
            .process("n1")
            .expect("started")
            .wait()
            .expect("exits");
        cluster.spawn("n1").expect("spawned again");
        cluster
            .process("n1")
            .expect("started")
            .wait()
            .expect("exits");
        let log = cluster.log("n1");
        assert_eq!(log.matches(START_MARK).count(), 2, "{log}");
        assert!(cluster.log_since_start("n1").starts_with("run --config"));
        assert!(cluster.admin("n9").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
