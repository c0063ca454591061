//! The cost of an idle cluster: CPU and memory of each member over a
//! window in which nothing happens but heartbeats.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::cluster::{System, views};
use crate::failover::wait_for_leader;
use crate::procfs::{cpu_seconds, rss_kib};

/// One member's cost over the window.
#[derive(Clone, Debug)]
pub struct Cost {
    /// The member's identity and whether it led.
    pub who: String,
    pub leader: bool,
    /// CPU over the window, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory at the end of the window, KiB.
    pub rss_kib: u64,
    /// Peak resident memory over the process's life, KiB.
    pub peak_kib: u64,
}

/// Waits for a leader, lets the cluster settle for `settle`, then measures
/// every member over `window`.
pub async fn measure(
    system: &mut impl System,
    settle: Duration,
    window: Duration,
) -> anyhow::Result<Vec<Cost>> {
    let all: Vec<usize> = (0..system.size()).collect();
    wait_for_leader(
        system,
        &all,
        Duration::from_secs(30),
        Duration::from_millis(50),
    )
    .await?;
    tokio::time::sleep(settle).await;
    measure_window(system, window).await
}

/// Measures every member over `window`, from now; nothing is asked of
/// the members until it ends. The costs are in member order.
pub async fn measure_window(
    system: &mut impl System,
    window: Duration,
) -> anyhow::Result<Vec<Cost>> {
    let all: Vec<usize> = (0..system.size()).collect();
    let mut pids = Vec::new();
    for &m in &all {
        let pid = system.process(m).pid().context("a member is not running")?;
        pids.push(pid);
    }
    let before: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<Result<_, _>>()?;
    let elapsed = started.elapsed().as_secs_f64();
    let seen = views(system, &all).await;
    let mut costs = Vec::new();
    for (i, &pid) in pids.iter().enumerate() {
        let (rss_kib, peak_kib) = rss_kib(pid)?;
        let view = seen.get(i).and_then(|(_, v)| v.clone());
        costs.push(Cost {
            who: view
                .as_ref()
                .map_or_else(|| format!("member {i}"), |v| v.me.clone()),
            leader: view.is_some_and(|v| v.leader.as_ref() == Some(&v.me)),
            cpu_percent: (after[i] - before[i]) / elapsed * 100.0,
            rss_kib,
            peak_kib,
        });
    }
    Ok(costs)
}
