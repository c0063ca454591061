//! What a chaos seed decides: the fault kinds and the plan of a run.

use std::sync::Arc;

use super::MS;
use crate::bindings::types::Timings;
use crate::plugin::PluginComponent;
use crate::sim::rng::SimRng;
use crate::sim::{NetworkConfig, SimPlugin};

/// The kinds of fault a run may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Kill a running node.
    Crash,
    /// Restart a crashed node from its persisted state.
    Restart,
    /// Split the nodes into two or three random groups.
    Partition,
    /// Cut the current leader off from everyone.
    IsolateLeader,
    /// End all partitions.
    Heal,
    /// Switch the network to this run's bad behaviour.
    Degrade,
    /// Switch the network back to healthy.
    Calm,
    /// Remove a crashed node for good (`leave`), asked of a running one.
    /// It may be restarted later: its tombstone must keep it out.
    Leave,
    /// Cut one directed link: one node stops hearing another, which still
    /// hears it.
    OneWay,
    /// A bridge (non-transitive) partition: two groups that cannot reach
    /// each other, and one node that reaches both.
    Bridge,
    /// Slow one directed link by up to a minimum election timeout.
    SlowLink,
    /// Freeze a node (GC pause, stopped VM) for up to three maximum
    /// election timeouts: its connections stay open, nobody sees it die.
    Pause,
    /// A node's dial to a live peer that still reaches it is refused (a
    /// resetting firewall, a full backlog): judged by the transport's
    /// rule, it is no evidence of death.
    RefuseDial,
    /// An operator runs `tenure campaign` on a random node.
    Campaign,
    /// An operator transfers leadership to a random member (the
    /// TimeoutNow may be lost, the target may crash).
    Transfer,
    /// An operator tells the leader to step down.
    StepDown,
    /// A node's clock changes rate (within ±1 %, the bound the seeds'
    /// lease margin covers), carrying on from its reading.
    ClockRate,
    /// A node loses its data directory (once per run: the data-id proof
    /// covers fewer lost disks than a majority; see
    /// `guest/election-core/src/identity.rs`). It restarts with nothing
    /// and must abstain, never vote twice.
    WipeDisk,
    /// A new node starts and joins through a random member; half the
    /// time its peer list also names nodes that do not exist (a typo).
    /// Admissions go through the leader, one at a time (see
    /// `guest/election-core/src/membership.rs`).
    Join,
    /// Two new nodes start at the same instant and join through two
    /// different members (often on two sides of a partition).
    JoinTwo,
    /// An operator removes a live member, one cut off from the leader
    /// when there is one: it keeps running and may never hear of it.
    LeaveLive,
    /// One directed link drops 10–90 % of its messages.
    LossyLink,
    /// Fill a node's disk, or make room on a full one: every save fails
    /// meanwhile and the node goes quiet (`node::durability`).
    DiskFull,
    /// An operator hot-swaps a running node's protocol (`POST
    /// /protocol`): the old instance exports its whole state and a fresh
    /// instance imports it, in the middle of whatever the node was doing
    /// (a candidacy, a lease, a transfer). It must keep its place: its
    /// vote, its term, its lease, its loyalty.
    SwapProtocol,
    /// An operator hot-swaps a running node's behaviour plugin (`POST
    /// /plugin`) to one of the run's versions (see [`ChaosPlugins`]),
    /// whatever the node is doing: the plugin's state crosses over, the
    /// node keeps its place in the cluster, and the new version leads only
    /// while its node does. Only runs given plugins draw it.
    SwapPlugin,
}

const ALL_FAULTS: [Fault; 8] = [
    Fault::Crash,
    Fault::Restart,
    Fault::Partition,
    Fault::IsolateLeader,
    Fault::Heal,
    Fault::Degrade,
    Fault::Calm,
    Fault::Leave,
];

/// Faults added after the first eight, drawn from a stream of their own so
/// that every other choice a seed makes stays what it was.
const LATER_FAULTS: [Fault; 10] = [
    Fault::OneWay,
    Fault::Bridge,
    Fault::SlowLink,
    Fault::Pause,
    Fault::RefuseDial,
    Fault::Campaign,
    Fault::Transfer,
    Fault::StepDown,
    Fault::ClockRate,
    Fault::WipeDisk,
];

/// Membership changes of running members, drawn from a third stream (see
/// [`LATER_FAULTS`]); [`Fault::Leave`] removes crashed members.
const MEMBERSHIP_FAULTS: [Fault; 3] = [Fault::Join, Fault::JoinTwo, Fault::LeaveLive];

/// Faults of single links beyond cuts and delays, from a fourth stream.
const LINK_FAULTS: [Fault; 1] = [Fault::LossyLink];

/// Drawn from a stream of their own too.
const DISK_FAULTS: [Fault; 1] = [Fault::DiskFull];

/// Operations on a running node's code, from a stream of their own.
const SWAP_FAULTS: [Fault; 1] = [Fault::SwapProtocol];

/// Behaviour plugins for a chaos run ([`ChaosPlan::with_plugins`]): every
/// node, the observer and joiners included, starts with `start`, and
/// [`Fault::SwapPlugin`] swaps a node to one of `versions`.
#[derive(Clone, Debug)]
pub struct ChaosPlugins {
    /// What each node runs from its start (and after each restart).
    pub start: SimPlugin,
    /// The versions a swap picks from (include the start's component to
    /// swap back and forth).
    pub versions: Vec<Arc<PluginComponent>>,
}

/// Everything a seed decides about a run.
#[derive(Clone, Debug)]
pub struct ChaosPlan {
    /// Cluster size.
    pub nodes: usize,
    /// Every node's timings.
    pub timings: Timings,
    /// Whether the nodes run pre-votes (three seeds in four do).
    pub pre_vote: bool,
    /// Probability of a crash around each persist during the safety
    /// phase (zero in half the seeds).
    pub crash_mid_call: f64,
    /// Whether (and how late) surviving hosts see a crash, as a real
    /// transport does (half the seeds).
    pub crash_detection_ns: Option<u64>,
    /// Up to how much later than that each survivor sees a crash, drawn
    /// per survivor (half the seeds that detect crashes; zero otherwise):
    /// the first in line may stand before the voters know.
    pub crash_detection_spread_ns: u64,
    /// How the network misbehaves while degraded.
    pub degraded: NetworkConfig,
    /// The fault kinds this run draws from.
    pub faults: Vec<Fault>,
    /// Range of the virtual time between two faults.
    pub fault_gap_ns: (u64, u64),
    /// Each node's clock drift, in parts per million (within ±1 %, in
    /// three seeds in four; the lease invariant is checked against it).
    pub clock_drift_ppm: Vec<i32>,
    /// Each node's leadership priority (all 0 in half the seeds).
    pub priorities: Vec<u8>,
    /// Whether an observer (`o1`, bootstrapped with the voters) runs too
    /// (a third of the seeds). Faults strike it like any node.
    pub observer: bool,
    /// The run's behaviour plugins, if the caller gave it any (seeds alone
    /// run none).
    pub plugins: Option<ChaosPlugins>,
}

impl ChaosPlan {
    /// This plan, drawing `fault` too.
    pub fn with_fault(mut self, fault: Fault) -> ChaosPlan {
        if !self.faults.contains(&fault) {
            self.faults.push(fault);
        }
        self
    }

    /// This plan with `plugins` on every node, drawing
    /// [`Fault::SwapPlugin`] too. The seed's other choices (size, timings,
    /// network, kinds of fault) stay; which kind each fault draw picks
    /// changes, since there is one kind more to pick from.
    pub fn with_plugins(mut self, plugins: ChaosPlugins) -> ChaosPlan {
        self.plugins = Some(plugins);
        self.with_fault(Fault::SwapPlugin)
    }

    /// The plan for `seed`, with `plugins` on every node when given
    /// ([`ChaosPlan::with_plugins`]): what `tenure sim chaos --plugin …`
    /// and [`super::run_many_with_plugins`] run.
    pub fn for_seed_with_plugins(seed: u64, plugins: Option<&ChaosPlugins>) -> ChaosPlan {
        let plan = ChaosPlan::for_seed(seed);
        match plugins {
            Some(p) => plan.with_plugins(p.clone()),
            None => plan,
        }
    }

    /// This plan, without `fault` (to replay a seed as it ran before
    /// `fault` joined the mix).
    pub fn without_fault(mut self, fault: Fault) -> ChaosPlan {
        self.faults.retain(|f| *f != fault);
        self
    }

    /// The plan for `seed`.
    pub fn for_seed(seed: u64) -> ChaosPlan {
        let mut rng = SimRng::derive(seed, 0xc4a05);
        let nodes = rng.range(3, 7) as usize;
        let min = rng.range(50, 300) as u32;
        let max = min + rng.range(u64::from(min / 2), u64::from(min) * 2) as u32;
        let heartbeat = rng.range(u64::from(min / 10), u64::from(min / 2)).max(1) as u32;
        let mut timings = Timings {
            election_timeout_min_ms: min,
            election_timeout_max_ms: max,
            heartbeat_interval_ms: heartbeat,
            peer_timeout_heartbeats: rng.range(2, 10) as u32,
            // Covers the simulated clocks' rate differences (see
            // `clock_drift` below) over a minimum timeout, with room.
            lease_drift_margin_ms: (min / 10).max(1),
            stability_window_ms: 2_000,
        };
        let max_delay = rng.range(MS, u64::from(min) * MS / 5);
        let degraded = NetworkConfig {
            min_delay_ns: MS / 10,
            max_delay_ns: max_delay,
            loss: if rng.chance(0.5) {
                rng.unit() * 0.3
            } else {
                0.0
            },
            duplicate: if rng.chance(0.5) {
                rng.unit() * 0.1
            } else {
                0.0
            },
            reorder: if rng.chance(0.5) {
                rng.unit() * 0.1
            } else {
                0.0
            },
        };
        let mut faults: Vec<Fault> = ALL_FAULTS.into_iter().filter(|_| rng.chance(0.6)).collect();
        if faults.is_empty() {
            faults.push(Fault::Degrade);
        }
        let pre_vote = rng.chance(0.75);
        let crash_mid_call = if rng.chance(0.5) {
            rng.unit() * 0.2
        } else {
            0.0
        };
        let crash_detection_ns = rng.chance(0.5).then(|| rng.range(MS, 60 * MS));
        if crash_mid_call > 0.0 && !faults.contains(&Fault::Restart) {
            faults.push(Fault::Restart);
        }
        let gap_low = rng.range(20 * MS, 300 * MS);
        let gap_high = gap_low + rng.range(0, 1_500 * MS);
        // Drawn from a stream of its own, so the other choices of a seed
        // stay what they were before clocks drifted.
        let mut clocks = SimRng::derive(seed, 0xd41f7);
        let drifting = clocks.chance(0.75);
        let clock_drift_ppm = (0..nodes)
            .map(|_| {
                if drifting {
                    clocks.range(0, 20_000) as i32 - 10_000
                } else {
                    0
                }
            })
            .collect();
        // Half the seeds rank their nodes, so leaders hand over by
        // priority in the middle of the faults.
        let ranked = clocks.chance(0.5);
        let priorities = (0..nodes)
            .map(|_| if ranked { clocks.range(0, 3) as u8 } else { 0 })
            .collect();
        timings.stability_window_ms = clocks.range(u64::from(max), 3_000) as u32;
        let observer = clocks.chance(1.0 / 3.0);
        let mut later = SimRng::derive(seed, 0x1a7e5);
        faults.extend(LATER_FAULTS.into_iter().filter(|_| later.chance(0.5)));
        let mut membership = SimRng::derive(seed, 0x3e3b5);
        faults.extend(
            MEMBERSHIP_FAULTS
                .into_iter()
                .filter(|_| membership.chance(0.5)),
        );
        let mut links = SimRng::derive(seed, 0x1055e);
        faults.extend(LINK_FAULTS.into_iter().filter(|_| links.chance(0.5)));
        let mut disks = SimRng::derive(seed, 0xd15cf);
        faults.extend(DISK_FAULTS.into_iter().filter(|_| disks.chance(0.5)));
        let mut swaps = SimRng::derive(seed, 0x5a4b);
        faults.extend(SWAP_FAULTS.into_iter().filter(|_| swaps.chance(0.5)));
        // Up to two fast-failover slots (a slot is at least 5 ms): past
        // the first in line's jitter and into the next one's turn.
        let mut spread = SimRng::derive(seed, 0x5b4ead);
        let crash_detection_spread_ns = match crash_detection_ns {
            Some(_) if spread.chance(0.5) => spread.range(MS / 10, 10 * MS),
            _ => 0,
        };
        ChaosPlan {
            nodes,
            timings,
            pre_vote,
            clock_drift_ppm,
            priorities,
            observer,
            crash_mid_call,
            crash_detection_ns,
            crash_detection_spread_ns,
            degraded,
            faults,
            fault_gap_ns: (gap_low, gap_high),
            plugins: None,
        }
    }
}
