//! The test kit for real process clusters: `tenure run` processes on
//! 127.0.0.1 in a temporary directory, with ports that no other test of the
//! run can hold ([`tenure_host::testing::ports`]), their logs shown when a
//! wait fails, and every process killed (thawed first) when the cluster is
//! dropped.
//!
//! Included by the host package's process tests with
//! `#[path = "kit/mod.rs"] mod kit;`; not every test uses every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tenure_host::admin_client::{ACTION_TIMEOUT, fetch_status, request};
use tenure_host::node::NodeReport;
use tenure_host::testing::ports;

pub const SECRET: &str = "process-test-secret-0123456789";

/// A cluster of `tenure run` processes in a temporary directory.
pub struct Cluster {
    pub dir: PathBuf,
    pub ids: Vec<String>,
    pub admins: BTreeMap<String, SocketAddr>,
    pub children: BTreeMap<String, Child>,
    /// Each node's peer port.
    pub listens: BTreeMap<String, u16>,
}

/// A loopback port for a node that no other test of this run can hold
/// (see [`tenure_host::testing::ports`]).
pub fn free_port() -> u16 {
    ports::port().expect("a loopback port")
}

/// Writes node `id`'s config into `dir`: the kit's cluster id and secret,
/// `peers` (a `[peers]` body), then `extra` (more tables).
fn write_config(dir: &Path, id: &str, port: u16, admin: SocketAddr, peers: &str, extra: &str) {
    let text = format!(
        "node-id = \"{id}\"\ncluster-id = \"proc\"\nlisten = \"127.0.0.1:{port}\"\n\
         admin = \"{admin}\"\ndata-dir = \"{id}\"\nsecret = \"{SECRET}\"\n\
         [peers]\n{peers}\n{extra}"
    );
    std::fs::write(dir.join(format!("{id}.toml")), text).expect("config");
}

impl Cluster {
    /// Starts `size` nodes; `extra(id)` is appended to each node's config
    /// (a `[timings]` or `[plugin]` table, say).
    pub fn start(name: &str, size: usize, extra: impl Fn(&str) -> String) -> Cluster {
        let dir = std::env::temp_dir().join(format!("tenure-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ids: Vec<String> = (1..=size).map(|i| format!("n{i}")).collect();
        let ports: Vec<u16> = ids.iter().map(|_| free_port()).collect();
        let peers: String = ids
            .iter()
            .zip(&ports)
            .map(|(id, port)| format!("{id} = \"127.0.0.1:{port}\"\n"))
            .collect();
        let mut admins = BTreeMap::new();
        for (id, port) in ids.iter().zip(&ports) {
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            write_config(&dir, id, *port, admin, &peers, &extra(id));
            admins.insert(id.clone(), admin);
        }
        let mut cluster = Cluster {
            dir,
            ids: ids.clone(),
            admins,
            children: BTreeMap::new(),
            listens: ids.iter().cloned().zip(ports).collect(),
        };
        for id in &ids {
            cluster.spawn(id);
        }
        cluster
    }

    pub fn spawn(&mut self, id: &str) {
        let log = std::fs::File::create(self.dir.join(format!("{id}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["run", "--config"])
            .arg(self.dir.join(format!("{id}.toml")))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tenure starts");
        self.children.insert(id.to_string(), child);
    }

    pub fn signal(&self, id: &str, signal: &str) {
        let pid = self.children.get(id).expect("running").id();
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {signal} {pid}");
    }

    pub fn kill9(&mut self, id: &str) {
        self.signal(id, "-KILL");
        if let Some(mut child) = self.children.remove(id) {
            let _ = child.wait();
        }
    }

    /// The status of every node that answers.
    pub fn statuses(&self) -> BTreeMap<String, NodeReport> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        self.admins
            .iter()
            .filter(|(id, _)| self.children.contains_key(*id))
            .filter_map(|(id, admin)| {
                let report = runtime.block_on(fetch_status(*admin, PROBE_TIMEOUT)).ok()?;
                Some((id.clone(), report))
            })
            .collect()
    }

    /// Waits (at most `bound`) until every node in `among` that answers
    /// agrees on one leader, itself among them and leading; returns it.
    pub fn wait_for_leader(&self, among: &[&str], bound: Duration) -> (String, u64) {
        let deadline = Instant::now() + bound;
        loop {
            let statuses = self.statuses();
            let views: Vec<&NodeReport> = among.iter().filter_map(|id| statuses.get(*id)).collect();
            if views.len() == among.len() {
                let first = (views[0].leader.clone(), views[0].term);
                let agreed = views.iter().all(|v| (v.leader.clone(), v.term) == first);
                if let (true, (Some(leader), term)) = (agreed, first) {
                    let leads = statuses
                        .get(&leader)
                        .is_some_and(|s| s.role == "leader" && s.term == term);
                    if leads && among.contains(&leader.as_str()) {
                        return (leader, term);
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?} within {bound:?}: {statuses:#?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every (term, node) that some node's event log says became leader.
    pub fn leaders_by_term(&self) -> BTreeMap<u64, Vec<String>> {
        let mut by_term: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for id in &self.ids {
            let path = self.dir.join(id).join("events.log");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                let event: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                if event["event"] == "became-leader" {
                    let term = event["term"].as_u64().expect("term");
                    let node = event["node"].as_str().expect("node").to_string();
                    let nodes = by_term.entry(term).or_default();
                    if !nodes.contains(&node) {
                        nodes.push(node);
                    }
                }
            }
        }
        by_term
    }

    pub fn assert_one_leader_per_term(&self) {
        for (term, nodes) in self.leaders_by_term() {
            assert_eq!(
                nodes.len(),
                1,
                "term {term} had leaders {nodes:?}\n{}",
                self.logs()
            );
        }
    }

    pub fn logs(&self) -> String {
        log_tails(
            self.ids
                .iter()
                .map(|id| (id.as_str(), self.dir.join(format!("{id}.log")))),
        )
    }
}

/// The last 15 lines of each `(node, log file)`, under a `--- node ---`
/// header, for failure messages.
pub fn log_tails<'a>(logs: impl Iterator<Item = (&'a str, PathBuf)>) -> String {
    logs.map(|(id, path)| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        format!(
            "--- {id} ---\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })
    .collect::<Vec<_>>()
    .join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `POST path` with `body` through the library's admin client: the status
/// code, the reply, and how long it took.
pub fn post(admin: SocketAddr, path: &str, body: &[u8]) -> (u16, String, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let (code, reply) = runtime
        .block_on(request(admin, "POST", path, body, ACTION_TIMEOUT))
        .expect("the admin endpoint answers");
    (code, reply, started.elapsed())
}

pub const BOUND: Duration = Duration::from_secs(15);

/// How long one status probe waits: short, because a node the test froze
/// with SIGSTOP accepts the connection but never answers, and one probe
/// must not eat the whole [`BOUND`] of the wait it is part of.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET path` on a node's admin endpoint: the status code and the body.
pub fn get(admin: SocketAddr, path: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(request(admin, "GET", path, &[], ACTION_TIMEOUT))
        .expect("the admin endpoint answers")
}

impl Cluster {
    /// Starts node `id` again and waits (at most `bound`) for it to exit
    /// on its own: its exit status and its log, or `None` if it was still
    /// running at the bound (it is then left running, as [`Cluster::spawn`]
    /// would).
    pub fn spawn_expecting_exit(
        &mut self,
        id: &str,
        bound: Duration,
    ) -> Option<(std::process::ExitStatus, String)> {
        self.spawn(id);
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            let child = self.children.get_mut(id).expect("just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.children.remove(id);
                let log =
                    std::fs::read_to_string(self.dir.join(format!("{id}.log"))).unwrap_or_default();
                return Some((status, log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Starts a new node `id` that joins the running cluster
    /// (`[protocol] join = true`), asking the nodes `ask`.
    pub fn add_joiner(&mut self, id: &str, ask: &[&str]) {
        let port = free_port();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let peers: String = ask
            .iter()
            .map(|peer| format!("{peer} = \"127.0.0.1:{}\"\n", self.listens[*peer]))
            .collect();
        write_config(
            &self.dir,
            id,
            port,
            admin,
            &peers,
            "[protocol]\njoin = true\n",
        );
        self.admins.insert(id.to_string(), admin);
        self.listens.insert(id.to_string(), port);
        self.ids.push(id.to_string());
        self.spawn(id);
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }
}
