//! A cluster of real `etcd` processes on 127.0.0.1, for comparison.
//!
//! etcd counts time in ticks of one heartbeat interval and draws each
//! election timeout uniformly from `[election, 2 × election)` ticks; it
//! refuses an election timeout under 5 heartbeats. So Tenure's
//! `[min, max]/h` maps to heartbeat `min / 5` and election `min`, which
//! gives `[min, 2 × min)` in steps of `min / 5`: for 150–300/50 that is
//! 150–300 ms with a 30 ms heartbeat (see [`EtcdTimings::closest_to`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::cluster::{Probe, System};
use crate::ports::free_port;
use crate::tenure::Timings;
use tenure_host::testing::processes::Process;

/// etcd's two timing flags, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtcdTimings {
    pub heartbeat_ms: u32,
    pub election_ms: u32,
}

impl EtcdTimings {
    /// The etcd timings closest to Tenure's `t`: election timeouts drawn
    /// from `[t.min, 2 × t.min)`, the heartbeat as long as etcd allows
    /// (one fifth of the election timeout).
    pub fn closest_to(t: Timings) -> EtcdTimings {
        EtcdTimings {
            heartbeat_ms: (t.min_ms / 5).max(1),
            election_ms: t.min_ms,
        }
    }
}

/// One member: its addresses and process.
struct Member {
    args: Vec<String>,
    client: SocketAddr,
    peer: SocketAddr,
    process: Process,
}

/// A running etcd cluster; every process is killed when it is dropped.
pub struct EtcdCluster {
    binary: PathBuf,
    timings: EtcdTimings,
    pre_vote: bool,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `size` members with data under `dir` (emptied first).
    pub fn start(
        binary: &Path,
        dir: &Path,
        size: usize,
        timings: EtcdTimings,
        pre_vote: bool,
    ) -> anyhow::Result<Self> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let names: Vec<String> = (1..=size).map(|i| format!("e{i}")).collect();
        let peers: Vec<SocketAddr> = names
            .iter()
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let initial: Vec<String> = names
            .iter()
            .zip(&peers)
            .map(|(name, peer)| format!("{name}=http://{peer}"))
            .collect();
        let initial = initial.join(",");
        let token = format!("tenure-bench-{}", std::process::id());
        let mut members = Vec::with_capacity(size);
        for (name, peer) in names.iter().zip(&peers) {
            let client = free_port()?;
            let args: Vec<String> = vec![
                format!("--name={name}"),
                format!("--data-dir={}", dir.join(name).display()),
                format!("--listen-peer-urls=http://{peer}"),
                format!("--initial-advertise-peer-urls=http://{peer}"),
                format!("--listen-client-urls=http://{client}"),
                format!("--advertise-client-urls=http://{client}"),
                format!("--initial-cluster={initial}"),
                "--initial-cluster-state=new".into(),
                format!("--initial-cluster-token={token}"),
                format!("--heartbeat-interval={}", timings.heartbeat_ms),
                format!("--election-timeout={}", timings.election_ms),
                format!("--pre-vote={pre_vote}"),
                "--logger=zap".into(),
                "--log-outputs=stderr".into(),
            ];
            let process = Process::spawn(command(binary, &args), &dir.join(format!("{name}.log")))?;
            members.push(Member {
                args,
                client,
                peer: *peer,
                process,
            });
        }
        Ok(EtcdCluster {
            binary: binary.to_path_buf(),
            timings,
            pre_vote,
            members,
        })
    }
}

fn command(binary: &Path, args: &[String]) -> Command {
    let mut command = Command::new(binary);
    command.args(args);
    command
}

impl System for EtcdCluster {
    fn label(&self) -> String {
        format!(
            "etcd {} members, heartbeat {} ms, election {} ms, pre-vote {}",
            self.members.len(),
            self.timings.heartbeat_ms,
            self.timings.election_ms,
            if self.pre_vote { "on" } else { "off" }
        )
    }

    fn size(&self) -> usize {
        self.members.len()
    }

    fn probe(&self, member: usize) -> Probe {
        Probe::Etcd(self.members[member].client)
    }

    fn process(&mut self, member: usize) -> &mut Process {
        &mut self.members[member].process
    }

    fn peer_addr(&self, member: usize) -> SocketAddr {
        self.members[member].peer
    }

    fn restart(&mut self, member: usize) -> anyhow::Result<()> {
        let m = &mut self.members[member];
        m.process.respawn(command(&self.binary, &m.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_timings() {
        let t = Timings {
            min_ms: 150,
            max_ms: 300,
            heartbeat_ms: 50,
        };
        let e = EtcdTimings::closest_to(t);
        assert_eq!((e.heartbeat_ms, e.election_ms), (30, 150));
    }
}
