//! The nemesis: which fault comes next, its victims and its timing, all
//! drawn from one seed, and how each is applied and healed.

use std::fmt;

use super::nodes::Cluster;

/// splitmix64: the next number of the sequence `state` is at.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seeded random source of a run.
pub struct Rng(u64);

impl Rng {
    /// The source for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        splitmix(&mut self.0) % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// `items` in a random order.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The kinds of fault, for the per-kind figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// 3/2 split with the links down.
    MajorityMinority,
    /// 2/2/1 split with the links down.
    TwoTwoOne,
    /// One node hears nobody, or nobody hears it (nftables).
    OneWay,
    /// kill -9 of the leader, restarted at the heal.
    KillLeader,
    /// SIGSTOP of the leader, SIGCONT at the heal.
    StopLeader,
    /// SIGSTOP of a follower, SIGCONT at the heal.
    StopFollower,
    /// A node (the leader half the time) killed and restarted under a new
    /// address, the hosts files updated.
    NewAddress,
    /// Delay, jitter and loss on every received message (the transport's
    /// test-only layer).
    DelayLoss,
}

/// Every kind, in a fixed order.
pub const KINDS: [Kind; 8] = [
    Kind::MajorityMinority,
    Kind::TwoTwoOne,
    Kind::OneWay,
    Kind::KillLeader,
    Kind::StopLeader,
    Kind::StopFollower,
    Kind::NewAddress,
    Kind::DelayLoss,
];

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Kind::MajorityMinority => "partition 3/2",
            Kind::TwoTwoOne => "partition 2/2/1",
            Kind::OneWay => "one-way partition",
            Kind::KillLeader => "kill -9 leader",
            Kind::StopLeader => "SIGSTOP leader",
            Kind::StopFollower => "SIGSTOP follower",
            Kind::NewAddress => "restart, new address",
            Kind::DelayLoss => "delay + loss",
        };
        f.write_str(name)
    }
}

/// One fault, drawn: what is done at the apply and undone at the heal.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Each group on a bridge of its own.
    Partition {
        kind: Kind,
        groups: Vec<Vec<String>>,
    },
    /// `node` hears none of `others` (`deaf`), or none of them hears it.
    OneWay {
        node: String,
        deaf: bool,
        others: Vec<String>,
    },
    /// kill -9 of `node`, restarted at the heal.
    Kill { node: String },
    /// SIGSTOP of `node`, SIGCONT at the heal.
    Stop { kind: Kind, node: String },
    /// `node` restarted under a new address.
    NewAddress { node: String },
    /// Every node's fault layer set to `spec`.
    DelayLoss { spec: String },
}

impl Fault {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Fault::Partition { kind, .. } | Fault::Stop { kind, .. } => *kind,
            Fault::OneWay { .. } => Kind::OneWay,
            Fault::Kill { .. } => Kind::KillLeader,
            Fault::NewAddress { .. } => Kind::NewAddress,
            Fault::DelayLoss { .. } => Kind::DelayLoss,
        }
    }

    /// Draws a fault of `kind` for a cluster of `ids` led by `leader`.
    pub fn draw(kind: Kind, ids: &[String], leader: &str, rng: &mut Rng) -> Fault {
        let mut others: Vec<String> = ids.iter().filter(|i| *i != leader).cloned().collect();
        rng.shuffle(&mut others);
        let pick_any = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize].clone();
        match kind {
            Kind::MajorityMinority | Kind::TwoTwoOne => {
                let mut all = others.clone();
                // The leader on a random side.
                let at = rng.below(all.len() as u64 + 1) as usize;
                all.insert(at, leader.to_string());
                let groups = if kind == Kind::MajorityMinority {
                    vec![all[..3].to_vec(), all[3..].to_vec()]
                } else {
                    vec![all[..2].to_vec(), all[2..4].to_vec(), all[4..].to_vec()]
                };
                Fault::Partition { kind, groups }
            }
            Kind::OneWay => {
                let node = if rng.below(2) == 0 {
                    leader.to_string()
                } else {
                    pick_any(rng)
                };
                let rest = ids.iter().filter(|i| **i != node).cloned().collect();
                Fault::OneWay {
                    node,
                    deaf: rng.below(2) == 0,
                    others: rest,
                }
            }
            Kind::KillLeader => Fault::Kill {
                node: leader.to_string(),
            },
            Kind::StopLeader => Fault::Stop {
                kind,
                node: leader.to_string(),
            },
            Kind::StopFollower => Fault::Stop {
                kind,
                node: others[0].clone(),
            },
            Kind::NewAddress => {
                let node = if rng.below(2) == 0 {
                    leader.to_string()
                } else {
                    others[0].clone()
                };
                Fault::NewAddress { node }
            }
            Kind::DelayLoss => {
                let delay = rng.between(5, 60);
                let jitter = rng.between(0, 40);
                let loss = rng.between(0, 30);
                Fault::DelayLoss {
                    spec: format!("delay-ms={delay} jitter-ms={jitter} loss=0.{loss:02}"),
                }
            }
        }
    }

    /// Applies the fault.
    pub fn apply(&self, cluster: &mut Cluster) -> anyhow::Result<()> {
        match self {
            Fault::Partition { groups, .. } => cluster.net.partition(groups),
            Fault::OneWay {
                node,
                deaf: true,
                others,
            } => cluster.net.one_way(node, others),
            Fault::OneWay {
                node,
                deaf: false,
                others,
            } => {
                for other in others {
                    cluster.net.one_way(other, std::slice::from_ref(node))?;
                }
                Ok(())
            }
            Fault::Kill { node } => cluster.kill(node),
            Fault::Stop { node, .. } => cluster.freeze(node, true),
            Fault::NewAddress { node } => {
                cluster.kill(node)?;
                cluster.net.readdress(node)?;
                cluster.spawn(node)
            }
            Fault::DelayLoss { spec } => cluster.set_link_faults(spec),
        }
    }

    /// Undoes it.
    pub fn heal(&self, cluster: &mut Cluster) -> anyhow::Result<()> {
        match self {
            Fault::Partition { .. } => cluster.net.heal_partition(),
            Fault::OneWay { .. } => cluster.net.heal_one_way(),
            Fault::Kill { node } => cluster.spawn(node),
            Fault::Stop { node, .. } => cluster.freeze(node, false),
            Fault::NewAddress { .. } => Ok(()),
            Fault::DelayLoss { .. } => cluster.set_link_faults(""),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { kind, groups } => {
                let sides: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
                write!(f, "{kind}: {}", sides.join(" | "))
            }
            Fault::OneWay {
                node, deaf: true, ..
            } => write!(f, "one-way: {node} hears nobody"),
            Fault::OneWay {
                node, deaf: false, ..
            } => write!(f, "one-way: nobody hears {node}"),
            Fault::Kill { node } => write!(f, "kill -9 leader {node}"),
            Fault::Stop { kind, node } => write!(f, "{kind} {node}"),
            Fault::NewAddress { node } => write!(f, "restart {node} under a new address"),
            Fault::DelayLoss { spec } => write!(f, "delay + loss: {spec}"),
        }
    }
}
