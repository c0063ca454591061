//! How each [`Fault`] strikes a running simulation.

use super::{CLUSTER, ChaosPlan, Fault, MAX_JOINERS, MS};
use crate::sim::rng::SimRng;
use crate::sim::{NetworkConfig, NodeSpec, Simulation};

/// Applies one fault; returns whether it changed anything.
pub(super) fn inject(
    sim: &mut Simulation,
    plan: &ChaosPlan,
    rng: &mut SimRng,
    fault: Fault,
) -> anyhow::Result<bool> {
    let n = sim.node_count();
    let up: Vec<usize> = (0..n).filter(|&i| sim.is_up(i)).collect();
    let down: Vec<usize> = (0..n).filter(|&i| !sim.is_up(i)).collect();
    match fault {
        Fault::Crash if !up.is_empty() => sim.crash(up[rng.index(up.len())]),
        Fault::Restart if !down.is_empty() => sim.restart(down[rng.index(down.len())])?,
        Fault::Partition => {
            let groups = rng.range(2, 3) as usize;
            let mut split: Vec<Vec<usize>> = vec![Vec::new(); groups];
            for node in 0..n {
                split[rng.index(groups)].push(node);
            }
            let slices: Vec<&[usize]> = split.iter().map(Vec::as_slice).collect();
            sim.partition(&slices);
        }
        Fault::IsolateLeader => match sim.leaders(CLUSTER).first() {
            Some(&leader) => sim.partition(&[&[leader]]),
            None => return Ok(false),
        },
        Fault::Heal => sim.heal(),
        Fault::Degrade => sim.set_network(plan.degraded.clone()),
        Fault::Calm => sim.set_network(NetworkConfig::default()),
        Fault::Leave if !down.is_empty() => {
            // A lost disk and a removal each take a voter away for good:
            // keep a majority of the membership able to vote.
            if sim.wiped_disks() > 0 && plan.nodes.saturating_sub(sim.removals() + 1) < 3 {
                return Ok(false);
            }
            let gone = sim.id(down[rng.index(down.len())]).to_string();
            // Removals go through the leader; refused (nothing changes)
            // while the last membership change has not settled.
            let Some(&leader) = sim.leaders(CLUSTER).first() else {
                return Ok(false);
            };
            if sim.leave(leader, &gone).is_err() {
                return Ok(false);
            }
        }
        Fault::OneWay if n >= 2 => {
            let (from, to) = two_of(rng, n);
            sim.cut_link(from, to);
        }
        Fault::Bridge if n >= 3 => {
            let bridge = rng.index(n);
            let (mut left, mut right) = (Vec::new(), Vec::new());
            for node in (0..n).filter(|&i| i != bridge) {
                if rng.chance(0.5) {
                    left.push(node);
                } else {
                    right.push(node);
                }
            }
            for &a in &left {
                for &b in &right {
                    sim.cut_link(a, b);
                    sim.cut_link(b, a);
                }
            }
        }
        Fault::LossyLink if n >= 2 => {
            let (from, to) = two_of(rng, n);
            let loss = rng.range(10, 90) as f64 / 100.0;
            sim.lossy_link(from, to, loss);
        }
        Fault::SlowLink if n >= 2 => {
            let (from, to) = two_of(rng, n);
            let min = u64::from(plan.timings.election_timeout_min_ms) * MS;
            sim.slow_link(from, to, rng.range(MS, min));
        }
        Fault::Pause if !up.is_empty() => {
            let max = u64::from(plan.timings.election_timeout_max_ms) * MS;
            sim.pause(up[rng.index(up.len())], rng.range(max / 4, 3 * max));
        }
        Fault::RefuseDial if up.len() >= 2 => {
            let node = up[rng.index(up.len())];
            let peer = up[rng.index(up.len())];
            // The refusal of a live peer the node still hears from; a
            // refusal under a partition is the case the assumption
            // excludes (see tenure_transport::death).
            if peer == node || !sim.partition.connected(peer, node) {
                return Ok(false);
            }
            sim.refuse_dial(node, peer);
        }
        Fault::Campaign if !up.is_empty() => {
            let node = up[rng.index(up.len())];
            // An operator cannot reach a frozen process.
            if sim.is_paused(node) {
                return Ok(false);
            }
            let _ = sim.campaign(node)?;
        }
        Fault::Transfer => {
            let Some(&leader) = sim.leaders(CLUSTER).first() else {
                return Ok(false);
            };
            if sim.is_paused(leader) {
                return Ok(false);
            }
            let to = sim.id(rng.index(n)).to_string();
            if sim.transfer_leadership(leader, &to).is_err() {
                return Ok(false);
            }
        }
        Fault::StepDown => {
            let Some(&leader) = sim.leaders(CLUSTER).first() else {
                return Ok(false);
            };
            if sim.is_paused(leader) {
                return Ok(false);
            }
            sim.step_down(leader)?;
        }
        Fault::Join => return start_joiners(sim, plan, rng, 1),
        Fault::JoinTwo => return start_joiners(sim, plan, rng, 2),
        Fault::LeaveLive => {
            if sim.wiped_disks() > 0 && plan.nodes.saturating_sub(sim.removals() + 1) < 3 {
                return Ok(false);
            }
            let Some(&leader) = sim.leaders(CLUSTER).first() else {
                return Ok(false);
            };
            let others: Vec<usize> = up.iter().copied().filter(|&i| i != leader).collect();
            let cut_off: Vec<usize> = others
                .iter()
                .copied()
                .filter(|&i| !sim.partition.connected(leader, i))
                .collect();
            let pick = if cut_off.is_empty() {
                &others
            } else {
                &cut_off
            };
            if pick.is_empty() || sim.is_paused(leader) {
                return Ok(false);
            }
            let gone = sim.id(pick[rng.index(pick.len())]).to_string();
            // Refused (nothing changes) for an observer, or while the
            // last change has not settled.
            if sim.leave(leader, &gone).is_err() {
                return Ok(false);
            }
        }
        Fault::WipeDisk => {
            // One lost disk per run, and only while the membership keeps
            // a majority of voters beside it (removals shrink it).
            if sim.wiped_disks() > 0 || plan.nodes.saturating_sub(sim.removals()) < 3 {
                return Ok(false);
            }
            sim.wipe_disk(rng.index(n));
        }
        Fault::DiskFull => {
            // One full disk at a time: the next draw makes room again
            // (and so does every heal).
            if sim.any_disk_full() {
                sim.heal_disks();
            } else {
                sim.fill_disk(rng.index(n));
            }
        }
        Fault::SwapProtocol if !up.is_empty() => {
            let node = up[rng.index(up.len())];
            // An operator cannot reach a frozen process.
            if sim.is_paused(node) {
                return Ok(false);
            }
            // To the same build: the whole state crosses the handover.
            // A refusal leaves the old instance running; the trace says
            // why and the run goes on.
            let component = sim.component().clone();
            if sim.swap_protocol(node, &component).is_err() {
                return Ok(false);
            }
        }
        Fault::SwapPlugin if !up.is_empty() => {
            let Some(plugins) = plan.plugins.as_ref().filter(|p| !p.versions.is_empty()) else {
                return Ok(false);
            };
            let node = up[rng.index(up.len())];
            if sim.is_paused(node) {
                return Ok(false);
            }
            let version = plugins.versions[rng.index(plugins.versions.len())].clone();
            // A refusal (a trapped or oversized snapshot, a new version
            // that refuses its config) leaves the old version running; the
            // trace says why.
            if sim.swap_plugin(node, version).is_err() {
                return Ok(false);
            }
        }
        Fault::ClockRate => {
            let node = rng.index(n);
            let drift = rng.range(0, 20_000) as i32 - 10_000;
            sim.set_clock_drift(node, drift);
        }
        Fault::Crash
        | Fault::Restart
        | Fault::Leave
        | Fault::OneWay
        | Fault::Bridge
        | Fault::SlowLink
        | Fault::LossyLink
        | Fault::Pause
        | Fault::RefuseDial
        | Fault::Campaign
        | Fault::SwapProtocol
        | Fault::SwapPlugin => return Ok(false),
    }
    Ok(true)
}

/// Starts `count` new nodes (`j1`, `j2`, …) at once, as an operator adds
/// them (`protocol.join = true`), each asking a random member of its own;
/// half of them also list phantom peers.
fn start_joiners(
    sim: &mut Simulation,
    plan: &ChaosPlan,
    rng: &mut SimRng,
    count: usize,
) -> anyhow::Result<bool> {
    let n = sim.node_count();
    let joined = (0..n).filter(|&i| sim.id(i).starts_with('j')).count();
    if joined + count > MAX_JOINERS {
        return Ok(false);
    }
    for k in 0..count {
        let through = sim.id(rng.index(n)).to_string();
        let id = format!("j{}", joined + k + 1);
        let mut peers = vec![through.as_str()];
        if rng.chance(0.5) {
            peers.extend(["ghost1", "ghost2"]);
        }
        let mut spec = NodeSpec::new(&id, CLUSTER, &peers);
        spec.timings = plan.timings;
        spec.pre_vote = plan.pre_vote;
        spec.joining = true;
        spec.plugin = plan.plugins.as_ref().map(|p| p.start.clone());
        // It may go down at once (a crash around its first persist): a
        // restart joins again, as its configuration says.
        sim.add_node(spec)?;
    }
    Ok(true)
}

/// Two different nodes of `n`, in a random order.
fn two_of(rng: &mut SimRng, n: usize) -> (usize, usize) {
    let a = rng.index(n);
    let b = (a + 1 + rng.index(n - 1)) % n;
    (a, b)
}
