//! A cluster of real `tenure run` processes on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tenure_host::testing::processes::{LocalCluster, Process};

use crate::cluster::{Probe, System};

/// Election timings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    pub min_ms: u32,
    pub max_ms: u32,
    pub heartbeat_ms: u32,
}

impl std::str::FromStr for Timings {
    type Err = String;

    /// `MIN,MAX,HEARTBEAT`, e.g. `150,300,50`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("`{s}`: {e} (expected MIN,MAX,HEARTBEAT in ms)"))?;
        match parts[..] {
            [min_ms, max_ms, heartbeat_ms] if min_ms < max_ms && heartbeat_ms > 0 => Ok(Timings {
                min_ms,
                max_ms,
                heartbeat_ms,
            }),
            _ => Err(format!(
                "`{s}`: expected MIN,MAX,HEARTBEAT in ms with MIN < MAX"
            )),
        }
    }
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}–{}/{} ms",
            self.min_ms, self.max_ms, self.heartbeat_ms
        )
    }
}

/// How to run each node.
#[derive(Clone, Debug)]
pub struct TenureOptions {
    /// The `tenure` binary.
    pub binary: PathBuf,
    pub timings: Timings,
    pub pre_vote: bool,
    /// A behaviour plugin for every node, if any.
    pub plugin: Option<PathBuf>,
    /// Mutual TLS between the nodes (`[tls]`, certificates made with
    /// `tenure certs`) instead of the shared secret.
    pub tls: bool,
}

/// A running Tenure cluster (the test kit's [`LocalCluster`]); every
/// process is killed when it is dropped.
pub struct TenureCluster {
    local: LocalCluster,
    ids: Vec<String>,
    options: TenureOptions,
}

impl TenureCluster {
    /// Writes `size` node configs under `dir` (emptied first) and starts
    /// every node.
    pub fn start(dir: &Path, size: usize, options: TenureOptions) -> anyhow::Result<Self> {
        let mut local = LocalCluster::plan(dir, &options.binary, "bench", size)?;
        let t = options.timings;
        let plugin = match &options.plugin {
            Some(path) => format!("[plugin]\npath = {:?}\n", path.display().to_string()),
            None => String::new(),
        };
        let extra = format!(
            "[timings]\nelection-timeout-min-ms = {}\nelection-timeout-max-ms = {}\n\
             heartbeat-interval-ms = {}\n[protocol]\npre-vote = {}\n{plugin}",
            t.min_ms, t.max_ms, t.heartbeat_ms, options.pre_vote
        );
        let ids = local.ids();
        let certs = dir.join("certs");
        if options.tls {
            let made = std::process::Command::new(&options.binary)
                .args(["certs", "--cluster", "bench", "--out"])
                .arg(&certs)
                .args(&ids)
                .output()?;
            anyhow::ensure!(made.status.success(), "tenure certs failed: {made:?}");
        }
        // The nodes log at the bench's own RUST_LOG when it has one
        // (`RUST_LOG=info,tenure_transport=debug` and `--dir` to trace a
        // trial), and at the test kit's `info` otherwise.
        let node_filter = std::env::var("RUST_LOG").ok();
        for id in &ids {
            local.write_config(id, &extra)?;
            if let Some(filter) = &node_filter {
                local.set_env(id, "RUST_LOG", filter)?;
            }
            if options.tls {
                local.use_tls(id, &certs, id)?;
            }
            local.spawn(id)?;
        }
        Ok(TenureCluster {
            local,
            ids,
            options,
        })
    }

    /// The admin endpoint of `member`.
    pub fn admin(&self, member: usize) -> SocketAddr {
        self.local
            .admin(&self.ids[member])
            .expect("members are planned")
    }

    /// `member`'s data directory (state, event log, compile cache).
    pub fn data_dir(&self, member: usize) -> PathBuf {
        self.local.data_dir(&self.ids[member])
    }
}

impl System for TenureCluster {
    fn label(&self) -> String {
        format!(
            "tenure {} nodes, {}, pre-vote {}, {}",
            self.ids.len(),
            self.options.timings,
            if self.options.pre_vote { "on" } else { "off" },
            if self.options.tls {
                "mutual TLS"
            } else {
                "shared secret"
            }
        )
    }

    fn size(&self) -> usize {
        self.ids.len()
    }

    fn probe(&self, member: usize) -> Probe {
        Probe::Tenure(self.admin(member))
    }

    fn process(&mut self, member: usize) -> &mut Process {
        self.local
            .process(&self.ids[member])
            .expect("every member was started")
    }

    fn peer_addr(&self, member: usize) -> SocketAddr {
        self.local
            .listen(&self.ids[member])
            .expect("members are planned")
    }

    fn restart(&mut self, member: usize) -> anyhow::Result<()> {
        self.local.spawn(&self.ids[member])
    }

    fn event_log(&self, member: usize) -> Option<PathBuf> {
        Some(self.data_dir(member).join("events.log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timings() {
        let t: Timings = "150,300,50".parse().unwrap();
        assert_eq!((t.min_ms, t.max_ms, t.heartbeat_ms), (150, 300, 50));
        assert!("300,150,50".parse::<Timings>().is_err());
        assert!("150,300".parse::<Timings>().is_err());
    }
}
