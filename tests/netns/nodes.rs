//! The five `tenure run` processes, one per namespace, and what the
//! nemesis does to them: SIGKILL and restart, SIGSTOP and SIGCONT, a
//! restart under a new address, and the transport's test-only delay and
//! loss (its control file, see `tenure_transport::faults`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tenure_host::admin_client::{fetch_status, request};
use tenure_host::node::NodeReport;
use tenure_host::testing::processes::Process;

use super::net::{Net, PEER_PORT};
use super::store::{mono_ns, writer_script};

/// How long a status request may take (a frozen node never answers).
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// One node's process and what the test did to it.
struct Node {
    process: Option<Process>,
    frozen: bool,
    starts: u32,
}

/// The cluster: processes first, so they are killed before the network
/// they run in is deleted.
pub struct Cluster {
    nodes: BTreeMap<String, Node>,
    /// When each node was SIGKILLed (monotonic ns): a dead process's
    /// lease ends there.
    pub kills: BTreeMap<String, Vec<u64>>,
    /// (node, killed at, until when its `/leader` promised its token
    /// just before the kill), for each leader killed.
    pub promises: Vec<(String, u64, u64)>,
    pub net: Net,
    pub dir: PathBuf,
    binary: PathBuf,
    secret: String,
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    /// Plans nodes `ids` on `net` in `dir` (emptied first); starts none.
    pub fn new(
        net: Net,
        ids: &[String],
        dir: &Path,
        binary: &Path,
        seed: u64,
    ) -> anyhow::Result<Cluster> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // A secret that looks random (the node refuses a guessable one off
        // loopback), different for every run.
        let mut x = seed ^ u64::from(std::process::id()) ^ mono_ns();
        let secret = (0..4)
            .map(|_| format!("{:016x}", super::nemesis::splitmix(&mut x)))
            .collect();
        let nodes = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    Node {
                        process: None,
                        frozen: false,
                        starts: 0,
                    },
                )
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("a runtime for status requests")?;
        Ok(Cluster {
            nodes,
            kills: BTreeMap::new(),
            promises: Vec::new(),
            net,
            dir: dir.to_path_buf(),
            binary: binary.to_path_buf(),
            secret,
            runtime,
        })
    }

    /// The node ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Node `id`'s output, every start appended.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    fn faults_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.faults"))
    }

    /// Writes node `id`'s config for its current address.
    fn write_config(&self, id: &str) -> anyhow::Result<PathBuf> {
        let peers: String = self
            .nodes
            .keys()
            .filter(|p| *p != id)
            .map(|p| format!("{p} = \"{}:{PEER_PORT}\"\n", Net::name(p)))
            .collect();
        let text = format!(
            "node-id = \"{id}\"\ncluster-id = \"netns\"\nlisten = \"{}:{PEER_PORT}\"\n\
             admin = \"{}\"\ndata-dir = \"{id}\"\nsecret = \"{}\"\n[peers]\n{peers}\
             [admin-auth]\ninsecure-allow-remote-without-auth = true\n",
            self.net.cluster_ip(id)?,
            self.net.admin(id)?,
            self.secret,
        );
        let path = self.dir.join(format!("{id}.toml"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Starts node `id` in its namespace (killing a running one first),
    /// supervising the store writer, with the fault layer's control file.
    pub fn spawn(&mut self, id: &str) -> anyhow::Result<()> {
        let config = self.write_config(id)?;
        let faults = self.faults_path(id);
        if !faults.exists() {
            std::fs::write(&faults, "").context("writing the fault file")?;
        }
        let log = self.log_path(id);
        let ns = self.net.ns(id)?.to_string();
        let node = self
            .nodes
            .get_mut(id)
            .with_context(|| format!("no node {id}"))?;
        if let Some(mut old) = node.process.take() {
            old.kill()?;
        }
        node.starts += 1;
        node.frozen = false;
        let mut mark = File::options().create(true).append(true).open(&log)?;
        writeln!(
            mark,
            "=== netns test: start {} at mono {} ===",
            node.starts,
            mono_ns()
        )?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns])
            .arg(&self.binary)
            .args(["run", "--config"])
            .arg(&config)
            .args(["--", "bash", "-c", &writer_script()])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env(tenure_transport::faults::ENV_VAR, &faults);
        // If this test process dies (even by SIGKILL), the node dies with
        // it, so a killed run leaves no node behind in its namespace.
        // SAFETY: the closure runs between fork and exec and makes one
        // async-signal-safe call, prctl(2), touching no memory of ours.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // `ip netns exec` execs the command: the child's pid is tenure's,
        // and the parent-death signal survives the exec.
        node.process = Some(Process::spawn(command, &log)?);
        Ok(())
    }

    /// Until when node `id`'s `GET /leader` promises its fencing token
    /// good (monotonic ns), if it answers 200.
    fn promised_until(&self, id: &str) -> Option<u64> {
        let admin = self.net.admin(id).ok()?;
        let (code, body) = self
            .runtime
            .block_on(request(admin, "GET", "/leader", b"", PROBE_TIMEOUT))
            .ok()?;
        let body: serde_json::Value = serde_json::from_str(&body).ok()?;
        let at = body["monotonic_ns"].as_u64()?;
        let valid_ms = body["valid_for_ms"].as_f64()?;
        (code == 200).then_some(at + (valid_ms * 1e6) as u64)
    }

    /// SIGKILLs node `id` (frozen or not) and notes when — and, if it
    /// led, until when its `/leader` had promised its token just before.
    pub fn kill(&mut self, id: &str) -> anyhow::Result<()> {
        let promised = if self.answers(id) {
            self.promised_until(id)
        } else {
            None
        };
        let node = self
            .nodes
            .get_mut(id)
            .with_context(|| format!("no node {id}"))?;
        if let Some(mut process) = node.process.take() {
            let at = mono_ns();
            process.kill()?;
            self.kills.entry(id.to_string()).or_default().push(at);
            if let Some(until) = promised {
                self.promises.push((id.to_string(), at, until));
            }
        }
        node.frozen = false;
        Ok(())
    }

    /// SIGSTOPs (`true`) or SIGCONTs node `id`'s process (not its
    /// command, which is in a group of its own and writes on).
    pub fn freeze(&mut self, id: &str, frozen: bool) -> anyhow::Result<()> {
        let node = self
            .nodes
            .get_mut(id)
            .with_context(|| format!("no node {id}"))?;
        let process = node
            .process
            .as_ref()
            .with_context(|| format!("{id} is not running"))?;
        process.signal(if frozen { libc::SIGSTOP } else { libc::SIGCONT })?;
        node.frozen = frozen;
        Ok(())
    }

    /// Sets every node's test-only delay and loss (`""` heals).
    pub fn set_link_faults(&self, spec: &str) -> anyhow::Result<()> {
        for id in self.nodes.keys() {
            let path = self.faults_path(id);
            std::fs::write(&path, spec).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Whether node `id` runs and is not frozen.
    pub fn answers(&self, id: &str) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| n.process.as_ref().is_some_and(|p| p.pid().is_some()) && !n.frozen)
    }

    /// The status of every running, unfrozen node that answers (asked
    /// together).
    pub fn statuses(&self) -> BTreeMap<String, NodeReport> {
        let asked: Vec<(String, std::net::SocketAddr)> = self
            .nodes
            .keys()
            .filter(|id| self.answers(id))
            .filter_map(|id| Some((id.clone(), self.net.admin(id).ok()?)))
            .collect();
        self.runtime.block_on(async {
            let futures = asked.into_iter().map(|(id, admin)| async move {
                fetch_status(admin, PROBE_TIMEOUT)
                    .await
                    .ok()
                    .map(|r| (id, r))
            });
            futures_util::future::join_all(futures)
                .await
                .into_iter()
                .flatten()
                .collect()
        })
    }

    /// Waits (at most `bound`) until every running, unfrozen node answers
    /// and names one leader, which leads and holds its lease; returns it
    /// and its term, or `None` when the bound passes.
    pub fn wait_for_leader(&self, bound: Duration) -> Option<(String, u64)> {
        let deadline = Instant::now() + bound;
        loop {
            let expected = self.nodes.keys().filter(|id| self.answers(id)).count();
            let statuses = self.statuses();
            let leaders: std::collections::BTreeSet<_> =
                statuses.values().map(|s| s.leader.clone()).collect();
            if statuses.len() == expected
                && leaders.len() == 1
                && let Some(Some(leader)) = leaders.into_iter().next()
                && let Some(report) = statuses.get(&leader)
                && report.role == "leader"
                && report.lease_remaining_ms.is_some_and(|ms| ms > 0.0)
            {
                return Some((leader, report.term));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `lines` lines of every node's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        self.nodes
            .keys()
            .map(|id| {
                let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(lines).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {id} ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGCONTs what is frozen and stops every node with SIGTERM (so each
    /// revokes its token and logs it), SIGKILL after a few seconds.
    pub fn stop_all(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(process) = node.process.as_ref() {
                let _ = process.signal(libc::SIGCONT);
                let _ = process.signal(libc::SIGTERM);
            }
            node.frozen = false;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for node in self.nodes.values_mut() {
            if let Some(process) = node.process.as_mut() {
                while Instant::now() < deadline && matches!(process.try_exit(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = process.kill();
            }
            node.process = None;
        }
    }
}
