//! A service that embeds a Tenure node and does a job only while it leads:
//! every 200 ms it appends a line to a shared "store" — a file that, like
//! any fenced store, refuses a write whose fencing token is below the
//! highest it has seen — and it stops the moment its leadership guard is
//! lost, which happens before the lease can lapse.
//!
//! Run three of them, one per terminal, with the example cluster's
//! configs, then stop or kill whichever leads and watch another take over:
//!
//! ```sh
//! cargo run -p tenure-host --example embedded -- examples/cluster/n1.toml
//! cargo run -p tenure-host --example embedded -- examples/cluster/n2.toml
//! cargo run -p tenure-host --example embedded -- examples/cluster/n3.toml
//! ```
//!
//! (The cluster's configs name a plugin; the node runs it beside this
//! program's own job. A plugin is optional for embedders.)

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tenure_host::config::NodeConfig;
use tenure_host::embed::EmbeddedNode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let path = std::env::args()
        .nth(1)
        .context("usage: embedded CONFIG.toml")?;
    let config = NodeConfig::load(Path::new(&path))?;
    let store = config.data_dir.join("../fenced-store.txt");
    let node = EmbeddedNode::start(config).await?;
    println!("node started; admin endpoint http://{}", node.admin_addr());
    tokio::select! {
        result = lead_when_elected(&node, &store) => result?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    // Our job has stopped (it runs only inside the select above): hand
    // leadership over and stop the node.
    node.shutdown().await
}

/// Forever: wait to lead, then run the job until the guard is lost.
async fn lead_when_elected(node: &EmbeddedNode, store: &Path) -> anyhow::Result<()> {
    loop {
        let guard = node.leading().await?;
        let token = guard.fencing_token();
        println!("leading term {token}: the job starts");
        tokio::select! {
            _ = guard.lost() => println!("term {token} is over: the job stopped"),
            result = job(store, token) => result?,
        }
    }
}

/// Appends a numbered line with `token` every 200 ms.
async fn job(store: &Path, token: u64) -> anyhow::Result<()> {
    for run in 1.. {
        match write_fenced(store, token, &format!("run {run}"))? {
            true => println!("  run {run} written with token {token}"),
            false => println!("  run {run} refused: the store has seen a newer token"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The store's rule: a write carrying a token below the highest one seen
/// is refused. (A real store does this check atomically on its side.)
fn write_fenced(store: &Path, token: u64, line: &str) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(store).unwrap_or_default();
    let highest = text
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    if token < highest {
        return Ok(false);
    }
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(PathBuf::from(store))
        .with_context(|| format!("opening {}", store.display()))?;
    writeln!(file, "{token} {line}")?;
    Ok(true)
}
