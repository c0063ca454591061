//! A cluster of real `tenure run` processes on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::cluster::{Probe, System};
use crate::ports::free_port;
use crate::process::Process;

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
}

/// One node: its addresses and process.
struct Node {
    config: PathBuf,
    listen: SocketAddr,
    admin: SocketAddr,
    process: Process,
}

/// A running Tenure cluster; every process is killed when it is dropped.
pub struct TenureCluster {
    dir: PathBuf,
    options: TenureOptions,
    nodes: Vec<Node>,
}

const SECRET: &str = "tenure-bench-secret-0123456789";

impl TenureCluster {
    /// Writes `size` node configs under `dir` (emptied first) and starts
    /// every node.
    pub fn start(dir: &Path, size: usize, options: TenureOptions) -> anyhow::Result<Self> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ids: Vec<String> = (1..=size).map(|i| format!("n{i}")).collect();
        let listens: Vec<SocketAddr> = ids.iter().map(|_| free_port()).collect::<Result<_, _>>()?;
        let peers: String = ids
            .iter()
            .zip(&listens)
            .map(|(id, addr)| format!("{id} = \"{addr}\"\n"))
            .collect();
        let t = options.timings;
        let plugin = match &options.plugin {
            Some(path) => format!("[plugin]\npath = {:?}\n", path.display().to_string()),
            None => String::new(),
        };
        let mut nodes = Vec::with_capacity(size);
        for (id, listen) in ids.iter().zip(&listens) {
            let admin = free_port()?;
            let text = format!(
                "node-id = \"{id}\"\ncluster-id = \"bench\"\nlisten = \"{listen}\"\n\
                 admin = \"{admin}\"\ndata-dir = \"{id}\"\nsecret = \"{SECRET}\"\n\
                 [peers]\n{peers}\n[timings]\nelection-timeout-min-ms = {}\n\
                 election-timeout-max-ms = {}\nheartbeat-interval-ms = {}\n\
                 [protocol]\npre-vote = {}\n{plugin}",
                t.min_ms, t.max_ms, t.heartbeat_ms, options.pre_vote
            );
            let config = dir.join(format!("{id}.toml"));
            std::fs::write(&config, text)
                .with_context(|| format!("writing {}", config.display()))?;
            let process = Process::spawn(
                command(&options.binary, &config),
                &dir.join(format!("{id}.log")),
            )?;
            nodes.push(Node {
                config,
                listen: *listen,
                admin,
                process,
            });
        }
        Ok(TenureCluster {
            dir: dir.to_path_buf(),
            options,
            nodes,
        })
    }

    /// The admin endpoint of `member`.
    pub fn admin(&self, member: usize) -> SocketAddr {
        self.nodes[member].admin
    }

    /// `member`'s data directory (state, event log, compile cache).
    pub fn data_dir(&self, member: usize) -> PathBuf {
        self.dir.join(format!("n{}", member + 1))
    }
}

fn command(binary: &Path, config: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    command
}

impl System for TenureCluster {
    fn label(&self) -> String {
        format!(
            "tenure {} nodes, {}, pre-vote {}",
            self.nodes.len(),
            self.options.timings,
            if self.options.pre_vote { "on" } else { "off" }
        )
    }

    fn size(&self) -> usize {
        self.nodes.len()
    }

    fn probe(&self, member: usize) -> Probe {
        Probe::Tenure(self.nodes[member].admin)
    }

    fn process(&mut self, member: usize) -> &mut Process {
        &mut self.nodes[member].process
    }

    fn peer_addr(&self, member: usize) -> SocketAddr {
        self.nodes[member].listen
    }

    fn restart(&mut self, member: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[member];
        node.process
            .respawn(command(&self.options.binary, &node.config))
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
