//! The failover trial: signal the leader, time until every survivor agrees
//! on one new leader, bring the old leader back, repeat.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cluster::{System, View, agreement, views};
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
    Ok(Trial {
        ms: elapsed.as_secs_f64() * 1e3,
        old_term: before.term,
        new_term: after.term,
        old_leader: before.me,
        new_leader: after.me,
    })
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
