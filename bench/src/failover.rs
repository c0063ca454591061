//! The failover trial: signal the leader, time until every survivor agrees
//! on one new leader, bring the old leader back, repeat.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cluster::{System, View, agreement, views};
use crate::event_times::{self, Moments};
use crate::tarpit::Tarpit;

/// How the leader is taken away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL: the process dies, its kernel closes its sockets.
    Kill,
    /// SIGSTOP: the process freezes with every socket open.
    Stop,
}

/// One trial's setting.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub fault: Fault,
    /// Hold the dead leader's port open (see [`crate::tarpit`]), which
    /// switches Tenure's fast failover off. Only with [`Fault::Kill`].
    pub hold_port: bool,
    /// How often survivors are asked during a failover.
    pub poll: Duration,
    /// How long the cluster must have held one leader before the fault; a
    /// random part of one heartbeat is added so the fault falls at any
    /// point of the heartbeat cycle.
    pub settle: Duration,
    /// One heartbeat interval, for that random part.
    pub heartbeat: Duration,
    /// Give up on a trial (or on stability) after this long.
    pub bound: Duration,
}

/// What one trial measured.
#[derive(Clone, Debug)]
pub struct Trial {
    /// From the signal to the first poll that saw every survivor agree.
    pub ms: f64,
    pub old_term: u64,
    pub new_term: u64,
    pub old_leader: String,
    pub new_leader: String,
    /// The exact moments from the survivors' event logs (Tenure only).
    pub moments: Option<Moments>,
}

impl Trial {
    /// Elections it took: terms are spent one per election round (pre-votes
    /// spend none), so more than one means a split vote or a lost round.
    pub fn rounds(&self) -> u64 {
        self.new_term.saturating_sub(self.old_term)
    }
}

/// A small xorshift generator: the only randomness here is where in the
/// heartbeat cycle a fault falls.
pub struct Jitter(u64);

impl Jitter {
    /// Seeded from the clock.
    pub fn new() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Jitter(seed | 1)
    }

    /// Uniform in `[0, max)`.
    pub fn below(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let fraction = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        max.mul_f64(fraction)
    }
}

/// Waits until all `among` agree on a leader; returns its index and view.
pub async fn wait_for_leader(
    system: &impl System,
    among: &[usize],
    bound: Duration,
    every: Duration,
) -> anyhow::Result<(usize, View)> {
    let deadline = Instant::now() + bound;
    loop {
        let seen = views(system, among).await;
        if let Some(agreed) = agreement(&seen) {
            return Ok(agreed);
        }
        if Instant::now() > deadline {
            bail!(
                "{}: no agreed leader among members {among:?} within {bound:?}: {seen:?}",
                system.label()
            );
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits for a leader that has held for `scenario.settle` (plus jitter).
async fn stable_leader(
    system: &impl System,
    scenario: &Scenario,
    jitter: &mut Jitter,
) -> anyhow::Result<(usize, View)> {
    let all: Vec<usize> = (0..system.size()).collect();
    let every = Duration::from_millis(20);
    let deadline = Instant::now() + scenario.bound;
    loop {
        let (leader, view) = wait_for_leader(system, &all, scenario.bound, every).await?;
        tokio::time::sleep(scenario.settle + jitter.below(scenario.heartbeat)).await;
        let (again, view_again) = wait_for_leader(system, &all, scenario.bound, every).await?;
        if again == leader && view_again.term == view.term {
            return Ok((leader, view_again));
        }
        if Instant::now() > deadline {
            bail!("{}: leadership kept changing", system.label());
        }
    }
}

/// Runs one trial and brings the cluster back to full strength.
pub async fn trial(
    system: &mut impl System,
    scenario: &Scenario,
    jitter: &mut Jitter,
) -> anyhow::Result<Trial> {
    let (leader, before) = stable_leader(system, scenario, jitter).await?;
    let survivors: Vec<usize> = (0..system.size()).filter(|&m| m != leader).collect();
    // Where each survivor's event log ends before the fault.
    let marks: Vec<_> = survivors
        .iter()
        .filter_map(|&m| system.event_log(m))
        .map(|log| {
            let len = std::fs::metadata(&log).map_or(0, |m| m.len());
            (log, len)
        })
        .collect();
    let started = Instant::now();
    let mut tarpit = None;
    match scenario.fault {
        Fault::Kill => {
            system.process(leader).kill()?;
            if scenario.hold_port {
                tarpit = Some(Tarpit::hold(system.peer_addr(leader)).await?);
            }
        }
        Fault::Stop => system.process(leader).signal(libc::SIGSTOP)?,
    }
    let outcome = async {
        loop {
            let seen = views(system, &survivors).await;
            if let Some((member, view)) = agreement(&seen)
                && view.me != before.me
            {
                return Ok((started.elapsed(), member, view));
            }
            if started.elapsed() > scenario.bound {
                bail!(
                    "{}: survivors {survivors:?} did not agree on a new leader within {:?}: {seen:?}",
                    system.label(),
                    scenario.bound
                );
            }
            tokio::time::sleep(scenario.poll).await;
        }
    }
    .await;
    // Bring the old leader back whatever happened.
    if let Some(tarpit) = tarpit {
        tarpit.release().await;
    }
    match scenario.fault {
        Fault::Kill => system
            .restart(leader)
            .context("restarting the old leader")?,
        Fault::Stop => system.process(leader).signal(libc::SIGCONT)?,
    }
    let (elapsed, new_leader, mut after) = outcome?;
    // etcd reports the new term only once the new leader's first entry is
    // applied: ask the new leader again until it shows (not timed).
    let deadline = Instant::now() + Duration::from_secs(2);
    while after.term <= before.term && Instant::now() < deadline {
        tokio::time::sleep(scenario.poll).await;
        if let Some(v) = system.probe(new_leader).view().await {
            after.term = v.term;
        }
    }
    let moments = match (
        &after.leader,
        tenure_host::node::event_log::monotonic_ns_at(started),
    ) {
        (Some(name), Some(fault_ns)) if marks.len() == survivors.len() => {
            moments_from_logs(&marks, fault_ns, before.term, name, after.term).await
        }
        _ => None,
    };
    Ok(Trial {
        ms: elapsed.as_secs_f64() * 1e3,
        moments,
        old_term: before.term,
        new_term: after.term,
        old_leader: before.me,
        new_leader: after.me,
    })
}

/// The trial's exact [`Moments`] from the survivors' event logs, read from
/// where each ended before the fault; a survivor that answered the poll
/// has written its line already, but the logs are read again for up to
/// 200 ms in case one is a moment behind.
async fn moments_from_logs(
    marks: &[(std::path::PathBuf, u64)],
    fault_ns: u64,
    old_term: u64,
    leader: &str,
    term: u64,
) -> Option<Moments> {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        let nodes: Vec<_> = marks
            .iter()
            .map(|(log, from)| event_times::node_moments(log, *from, old_term, leader, term))
            .collect();
        let moments = event_times::trial_moments(fault_ns, &nodes);
        if moments.is_some() || Instant::now() > deadline {
            return moments;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (up to 60 s: a cold start compiles the component) until the admin
/// endpoint at `admin` answers; returns its report.
pub async fn wait_for_admin(
    admin: std::net::SocketAddr,
) -> anyhow::Result<tenure_host::node::NodeReport> {
    let started = Instant::now();
    loop {
        match tenure_host::admin_client::fetch_status(admin, Duration::from_secs(2)).await {
            Ok(report) => return Ok(report),
            Err(e) if started.elapsed() > Duration::from_secs(60) => {
                return Err(e.context("the node never answered"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
