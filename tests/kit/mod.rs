//! The test kit for real process clusters: the library's
//! [`LocalCluster`] (ports no other test of the run can hold, configs,
//! processes, logs; see [`tenure_host::testing::processes`]) with what the
//! tests ask of it — statuses, an agreed leader, one leader per term —
//! panicking with every node's log when a wait fails.
//!
//! Included by the host package's process tests with
//! `#[path = "kit/mod.rs"] mod kit;`; not every test uses every helper.
#![allow(dead_code)]

#[path = "fencing_store.rs"]
pub mod fencing_store;
#[path = "metrics.rs"]
pub mod metrics;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tenure_host::admin_client::{ACTION_TIMEOUT, fetch_status, request};
use tenure_host::node::NodeReport;
use tenure_host::testing::ports;
use tenure_host::testing::processes::LocalCluster;

/// The cluster id of every kit cluster (tests that need two deployments
/// with one id rely on it).
pub const CLUSTER_ID: &str = "proc";

/// A cluster of `tenure run` processes in a temporary directory, removed
/// when the cluster is dropped (kept when a test fails, for its logs).
pub struct Cluster {
    pub local: LocalCluster,
    /// The cluster's directory (configs, logs, data directories).
    pub dir: PathBuf,
    /// The nodes the cluster started with, `n1`…
    pub ids: Vec<String>,
}

/// A loopback port for a node that no other test of this run can hold
/// (see [`tenure_host::testing::ports`]).
pub fn free_port() -> u16 {
    ports::port().expect("a loopback port")
}

/// Runs `future` on a one-thread runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

impl Cluster {
    /// Plans `size` nodes of cluster [`CLUSTER_ID`] in a fresh directory
    /// named after `name` and writes their configs, `extra(id)` appended to
    /// each (a `[timings]` or `[plugin]` table, say); starts nothing.
    pub fn configure(name: &str, size: usize, extra: impl Fn(&str) -> String) -> Cluster {
        let dir = std::env::temp_dir().join(format!("tenure-{name}-{}", std::process::id()));
        let binary = Path::new(env!("CARGO_BIN_EXE_tenure"));
        let local = LocalCluster::plan(&dir, binary, CLUSTER_ID, size).expect("a planned cluster");
        let ids = local.ids();
        for id in &ids {
            local.write_config(id, &extra(id)).expect("a config");
        }
        Cluster { local, dir, ids }
    }

    /// Starts `size` nodes; `extra(id)` is appended to each node's config.
    pub fn start(name: &str, size: usize, extra: impl Fn(&str) -> String) -> Cluster {
        let mut cluster = Cluster::configure(name, size, extra);
        for id in cluster.ids.clone() {
            cluster.spawn(&id);
        }
        cluster
    }

    /// Starts node `id` (again).
    pub fn spawn(&mut self, id: &str) {
        self.local.spawn(id).expect("tenure starts");
    }

    /// Node `id`'s admin endpoint.
    pub fn admin(&self, id: &str) -> SocketAddr {
        self.local.admin(id).expect("a planned node")
    }

    /// Node `id`'s peer port.
    pub fn listen(&self, id: &str) -> SocketAddr {
        self.local.listen(id).expect("a planned node")
    }

    /// Sends `signal` (`libc::SIGSTOP`, …) to node `id`.
    pub fn signal(&self, id: &str, signal: libc::c_int) {
        self.local.signal(id, signal).expect("signalled");
    }

    pub fn kill9(&mut self, id: &str) {
        self.local.kill(id).expect("killed");
    }

    /// Waits (at most `bound`) for node `id` to exit; its status, or
    /// `None` if it still runs.
    pub fn wait_exit(&mut self, id: &str, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            let process = self.local.process(id)?;
            if let Some(status) = process.try_exit().expect("asks") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The status of every started node that answers.
    pub fn statuses(&self) -> BTreeMap<String, NodeReport> {
        self.local
            .ids()
            .into_iter()
            .filter(|id| self.local.is_running(id))
            .filter_map(|id| {
                let admin = self.local.admin(&id).ok()?;
                let report = block_on(fetch_status(admin, PROBE_TIMEOUT)).ok()?;
                Some((id, report))
            })
            .collect()
    }

    /// The largest heartbeat gap any follower that answers has seen
    /// (`max_leader_gap_ms`), 0 with none.
    pub fn largest_follower_gap_ms(&self) -> u64 {
        self.statuses()
            .values()
            .filter(|s| s.role == "follower")
            .map(|s| s.max_leader_gap_ms)
            .max()
            .unwrap_or(0)
    }

    /// Node `id`'s status, if it runs and answers.
    pub fn status(&self, id: &str) -> Option<NodeReport> {
        if !self.local.is_running(id) {
            return None;
        }
        block_on(fetch_status(self.admin(id), PROBE_TIMEOUT)).ok()
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

    /// Waits (at most `bound`) until the leader the nodes in `among` agree
    /// on satisfies `wanted(leader, term)` (`what` says what is awaited,
    /// for the failure message); returns it. The agreed leader right after
    /// a request may still be the old one: this waits that out.
    pub fn wait_for_leader_where(
        &self,
        among: &[&str],
        bound: Duration,
        what: &str,
        wanted: impl Fn(&str, u64) -> bool,
    ) -> (String, u64) {
        let deadline = Instant::now() + bound;
        loop {
            let (leader, term) = self.wait_for_leader(among, bound);
            if wanted(&leader, term) {
                return (leader, term);
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {bound:?}: {leader} leads term {term}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every (term, node) that some node's event log says became leader.
    pub fn leaders_by_term(&self) -> BTreeMap<u64, Vec<String>> {
        let ids = self.local.ids();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.local.leaders_by_term(&ids).expect("event logs")
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

    /// The last lines of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.local.log_tails(15)
    }

    /// Node `id`'s whole log (every start).
    pub fn log(&self, id: &str) -> String {
        self.local.log(id)
    }

    /// Waits (at most `bound`) until node `id`'s log contains `text`
    /// (after a SIGHUP, say); fails the test with the log otherwise.
    pub fn wait_for_log(&self, id: &str, text: &str, bound: Duration) {
        let deadline = Instant::now() + bound;
        while !self.log(id).contains(text) {
            assert!(
                Instant::now() < deadline,
                "{id}'s log never said {text:?} within {bound:?}\n{}",
                self.log(id)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts node `id` again and waits (at most `bound`) for it to exit
    /// on its own: its exit status and its log, or `None` if it was still
    /// running at the bound (it is then left running, as [`Cluster::spawn`]
    /// would).
    pub fn spawn_expecting_exit(
        &mut self,
        id: &str,
        bound: Duration,
    ) -> Option<(ExitStatus, String)> {
        self.spawn(id);
        let status = self.wait_exit(id, bound)?;
        Some((status, self.local.log_since_start(id)))
    }

    /// Starts a new node `id` that joins the running cluster
    /// (`[protocol] join = true`), asking the nodes `ask`.
    pub fn add_joiner(&mut self, id: &str, ask: &[&str]) {
        self.local.add_node(id).expect("ports");
        let peers = self.local.peers_of(ask).expect("planned peers");
        self.local
            .write_config_with_peers(id, &peers, "[protocol]\njoin = true\n")
            .expect("a config");
        self.spawn(id);
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.local.data_dir(id)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.local.ids() {
            let _ = self.local.kill(&id);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `POST path` with `body` through the library's admin client: the status
/// code, the reply, and how long it took.
pub fn post(admin: SocketAddr, path: &str, body: &[u8]) -> (u16, String, Duration) {
    let started = Instant::now();
    let (code, reply) = block_on(request(admin, "POST", path, body, ACTION_TIMEOUT))
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
    block_on(request(admin, "GET", path, &[], ACTION_TIMEOUT)).expect("the admin endpoint answers")
}

/// The misbehave plugin's `[plugin]` table: `mode` at callback `on`, a
/// 50 ms deadline and a 32 MiB memory cap.
pub fn misbehave(mode: &str, on: &str) -> String {
    let wasm =
        tenure_host::component_path::election_wasm().with_file_name("tenure_plugin_misbehave.wasm");
    assert!(
        wasm.is_file(),
        "build the plugins first: scripts/build-guests.sh"
    );
    format!(
        "[plugin]\npath = \"{}\"\ndeadline-ms = 50\nmemory-mib = 32\n\
         [plugin.config]\nmode = \"{mode}\"\non = \"{on}\"\n",
        wasm.display()
    )
}
