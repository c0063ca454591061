//! Start-up time of one node, with a cold and a warm compile cache.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tenure_host::admin_client::fetch_status;

use crate::cluster::System;
use crate::tenure::TenureCluster;

/// One start: wall time until the admin endpoint answered, and what the
/// node's own log says loading the components took.
#[derive(Clone, Debug)]
pub struct Start {
    pub ready_ms: f64,
    pub election_ms: Option<f64>,
    pub plugin_ms: Option<f64>,
}

/// Restarts node 0 of `cluster` (a one-node cluster), first emptying its
/// compile cache if `cold`, and times it.
pub async fn start_once(cluster: &mut TenureCluster, cold: bool) -> anyhow::Result<Start> {
    cluster.process(0).kill()?;
    let cache = cluster.data_dir(0).join("cache");
    if cold {
        match std::fs::remove_dir_all(&cache) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("emptying {}", cache.display())),
        }
    }
    let log = cluster.process(0).log().to_path_buf();
    let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
    let started = Instant::now();
    cluster.restart(0)?;
    let admin = cluster.admin(0);
    loop {
        if fetch_status(admin, Duration::from_secs(2)).await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the node did not answer within 60 s (see {})",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready_ms = started.elapsed().as_secs_f64() * 1e3;
    let text = read_from(&log, log_start)?;
    Ok(Start {
        ready_ms,
        election_ms: logged_ms(&text, "election component loaded"),
        plugin_ms: logged_ms(&text, "plugin loaded"),
    })
}

fn read_from(path: &Path, offset: u64) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[start..]).into_owned())
}

/// The `ms=` field of the first log line containing `message`.
fn logged_ms(log: &str, message: &str) -> Option<f64> {
    let line = log.lines().find(|l| l.contains(message))?;
    let value = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ms="))?;
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_logged_time() {
        let log = "2026 INFO tenure::cli::run: election component loaded cache=Hit ms=5.43\n\
                   2026 INFO tenure::cli::run: plugin loaded cache=Miss ms=259.1\n";
        assert_eq!(logged_ms(log, "election component loaded"), Some(5.43));
        assert_eq!(logged_ms(log, "plugin loaded"), Some(259.1));
        assert_eq!(logged_ms(log, "nothing"), None);
    }
}
