//! The command line: parse, start the clusters, run, print.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::cluster::System as _;
use crate::etcd::{EtcdCluster, EtcdTimings};
use crate::failover::{Fault, Jitter, Scenario, Trial};
use crate::report::{one_trial, print_costs, print_machine, report, summary};
use crate::stats::{etcd_theoretical_failover_ms, randomized_failover_ms, theoretical_failover_ms};
use crate::tenure::{TenureCluster, TenureOptions, Timings};

/// Benchmarks of real Tenure (and etcd) clusters on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "tenure-bench", version)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// On or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

/// Which systems to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Systems {
    Tenure,
    Etcd,
    /// Both clusters at once, trials alternating between them.
    Both,
    /// Two Tenure clusters at once, one on the shared secret and one on
    /// mutual TLS, trials alternating between them.
    TenureTls,
}

/// Where the binaries are and where clusters keep their files.
#[derive(clap::Args, Debug)]
struct Setup {
    /// The `tenure` binary [default: $CARGO_TARGET_DIR/release/tenure, or
    /// target/release/tenure].
    #[arg(long)]
    tenure: Option<PathBuf>,
    /// The `etcd` binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// A behaviour plugin for every Tenure node.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Cluster files go here [default: a temporary folder per run].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Kill or freeze the leader and time until the survivors agree on a
    /// new one, `--trials` times.
    Failover {
        #[command(flatten)]
        setup: Setup,
        #[arg(long, value_enum, default_value = "tenure")]
        system: Systems,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 30)]
        trials: usize,
        /// kill: SIGKILL then restart; stop: SIGSTOP then SIGCONT.
        #[arg(long, value_enum, default_value = "kill")]
        fault: Fault,
        /// Tenure's election timeout range and heartbeat: MIN,MAX,HEARTBEAT ms.
        #[arg(long, default_value = "150,300,50")]
        timings: Timings,
        /// Tenure's fast failover; `off` holds the dead leader's port open
        /// so no reconnect is refused (SIGKILL only).
        #[arg(long, value_enum, default_value = "on")]
        fast_failover: Switch,
        /// Tenure's pre-vote.
        #[arg(long, value_enum, default_value = "on")]
        pre_vote: Switch,
        /// etcd's pre-vote.
        #[arg(long, value_enum, default_value = "on")]
        etcd_pre_vote: Switch,
        /// etcd's HEARTBEAT,ELECTION ms [default: the closest to --timings].
        #[arg(long)]
        etcd_timings: Option<String>,
        /// How often survivors are asked during a failover, ms.
        #[arg(long, default_value_t = 5)]
        poll_ms: u64,
        /// How long a leader must have held before each fault, ms.
        #[arg(long, default_value_t = 500)]
        settle_ms: u64,
        /// Whether probes reuse one connection per member (`on`) or open
        /// one per request (`off`, the default and how every table here
        /// was measured).
        #[arg(long, value_enum, default_value = "off")]
        keep_alive: Switch,
        /// Print every trial.
        #[arg(long)]
        verbose: bool,
    },
    /// CPU and memory of each member of an idle cluster (default timings).
    Idle {
        #[command(flatten)]
        setup: Setup,
        #[arg(long, value_enum, default_value = "tenure")]
        system: Systems,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value = "150,300,50")]
        timings: Timings,
        /// The measured window, seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// One durable save of the protocol state: the node's two-slot state
    /// file against the temp-file + rename way it replaced, interleaved.
    Persist {
        /// Saves of each kind.
        #[arg(long, default_value_t = 1000)]
        saves: usize,
        /// Where to write [default: a temporary folder per run]; put it
        /// on the disk your data directories live on.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Failover of the protocol alone, in virtual time: the real election
    /// component in the seeded simulator (loopback delays), the leader
    /// frozen or killed at a random phase of its heartbeat cycle.
    SimFailover {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 1000)]
        trials: u64,
        /// stop: frozen; kill: crashed, seen dead `--detect-ms` later.
        #[arg(long, value_enum, default_value = "stop")]
        fault: Fault,
        #[arg(long, default_value_t = 1)]
        detect_ms: u64,
        /// With `--fault kill`: each survivor sees the death up to this
        /// much later again, drawn per survivor (real survivors on two
        /// cores: 0.2–3.3 ms apart at 7 nodes).
        #[arg(long, default_value_t = 0.0)]
        detect_spread_ms: f64,
        /// The election component [default: the built-in one].
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// One cluster of many voters and observers: each node's idle cost,
    /// heartbeat and ack sizes, and the voters' failover.
    Scale {
        #[command(flatten)]
        setup: Setup,
        #[arg(long, default_value_t = 9)]
        voters: usize,
        /// Nodes with `[protocol] observer = true`.
        #[arg(long, default_value_t = 100)]
        observers: usize,
        #[arg(long, default_value = "150,300,50")]
        timings: Timings,
        /// Nodes spawned at once; each batch answers before the next.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// How long every node must have followed one leader before the
        /// idle window, seconds.
        #[arg(long, default_value_t = 5)]
        settle: u64,
        /// The idle window, seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 10)]
        trials: usize,
        /// kill: SIGKILL then restart; stop: SIGSTOP then SIGCONT.
        #[arg(long, value_enum, default_value = "kill")]
        fault: Fault,
        /// How often surviving voters are asked during a failover, ms.
        #[arg(long, default_value_t = 5)]
        poll_ms: u64,
        /// Print every batch and trial.
        #[arg(long)]
        verbose: bool,
    },
    /// One node's start-up, with a cold and then a warm compile cache.
    Startup {
        #[command(flatten)]
        setup: Setup,
        /// Starts of each kind.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<()> {
    print_machine();
    match args.command {
        Command::Failover {
            setup,
            system,
            nodes,
            trials,
            fault,
            timings,
            fast_failover,
            pre_vote,
            etcd_pre_vote,
            etcd_timings,
            poll_ms,
            settle_ms,
            keep_alive,
            verbose,
        } => {
            crate::keep_alive::set_enabled(keep_alive.on());
            if fault == Fault::Stop && !fast_failover.on() {
                bail!("--fast-failover off only applies to --fault kill");
            }
            let etcd_timings = match etcd_timings {
                Some(s) => parse_etcd_timings(&s)?,
                None => EtcdTimings::closest_to(timings),
            };
            let scenario = Scenario {
                fault,
                hold_port: !fast_failover.on(),
                poll: Duration::from_millis(poll_ms),
                settle: Duration::from_millis(settle_ms),
                heartbeat: Duration::from_millis(timings.heartbeat_ms.into()),
                bound: Duration::from_secs(30),
            };
            // Holding the dead leader's port is about Tenure's fast
            // failover; etcd has none, so its trials never hold it.
            let etcd_scenario = Scenario {
                hold_port: false,
                ..scenario
            };
            let dir = setup.dir(&format!("failover-{nodes}"));
            let mut tenure = match system {
                Systems::Etcd => None,
                _ => Some(start_tenure(&setup, &dir, nodes, timings, pre_vote.on(), false).await?),
            };
            let mut tenure_tls = match system {
                Systems::TenureTls => Some(
                    start_tenure(
                        &setup,
                        &dir.join("tls"),
                        nodes,
                        timings,
                        pre_vote.on(),
                        true,
                    )
                    .await?,
                ),
                _ => None,
            };
            let mut etcd = match system {
                Systems::Tenure | Systems::TenureTls => None,
                _ => Some(EtcdCluster::start(
                    &setup.etcd,
                    &dir.join("etcd"),
                    nodes,
                    etcd_timings,
                    etcd_pre_vote.on(),
                )?),
            };
            println!(
                "fault {fault:?}, fast failover {}, {trials} trials, polling every {poll_ms} ms{}",
                if fast_failover.on() {
                    "on"
                } else {
                    "off (port held)"
                },
                if keep_alive.on() {
                    " on kept-alive connections"
                } else {
                    ", a new connection per request"
                },
            );
            let mut results: [Vec<Trial>; 3] = [Vec::new(), Vec::new(), Vec::new()];
            let mut failures = [0usize; 3];
            let mut jitter = Jitter::new();
            for i in 0..trials {
                if let Some(t) = tenure.as_mut() {
                    one_trial(
                        t,
                        &scenario,
                        &mut jitter,
                        i,
                        verbose,
                        &mut results[0],
                        &mut failures[0],
                    )
                    .await?;
                }
                if let Some(t) = tenure_tls.as_mut() {
                    one_trial(
                        t,
                        &scenario,
                        &mut jitter,
                        i,
                        verbose,
                        &mut results[2],
                        &mut failures[2],
                    )
                    .await?;
                }
                if let Some(e) = etcd.as_mut() {
                    one_trial(
                        e,
                        &etcd_scenario,
                        &mut jitter,
                        i,
                        verbose,
                        &mut results[1],
                        &mut failures[1],
                    )
                    .await?;
                }
            }
            let mut medians = Vec::new();
            if let Some(t) = &tenure {
                let theory =
                    theoretical_failover_ms(timings.min_ms.into(), timings.heartbeat_ms.into());
                medians.push(report(t, &results[0], failures[0], theory));
                println!(
                    "  (with Raft's randomized timers instead of turns: {:.1} ms)",
                    randomized_failover_ms(
                        timings.min_ms.into(),
                        timings.max_ms.into(),
                        timings.heartbeat_ms.into(),
                        nodes - 1,
                    )
                );
                if let Some(tls) = &tenure_tls {
                    let tls_median = report(tls, &results[2], failures[2], theory);
                    if let (Some(secret), Some(tls)) = (medians[0], tls_median) {
                        println!(
                            "median with mutual TLS minus with the secret: {:+.1} ms",
                            tls - secret
                        );
                    }
                }
            }
            if let Some(e) = &etcd {
                let theory = etcd_theoretical_failover_ms(
                    etcd_timings.heartbeat_ms.into(),
                    etcd_timings.election_ms.into(),
                    nodes - 1,
                );
                medians.push(report(e, &results[1], failures[1], theory));
            }
            if let [Some(t), Some(e)] = medians[..] {
                println!("ratio of medians tenure / etcd: {:.2}", t / e);
            }
            Ok(())
        }
        Command::Idle {
            setup,
            system,
            nodes,
            timings,
            seconds,
        } => {
            let dir = setup.dir("idle");
            let window = Duration::from_secs(seconds);
            let settle = Duration::from_secs(2);
            if system != Systems::Etcd {
                let mut t = start_tenure(&setup, &dir, nodes, timings, true, false).await?;
                print_costs(
                    &t.label(),
                    &crate::idle::measure(&mut t, settle, window).await?,
                );
            }
            if system != Systems::Tenure {
                let etcd_timings = EtcdTimings::closest_to(timings);
                let mut e =
                    EtcdCluster::start(&setup.etcd, &dir.join("etcd"), nodes, etcd_timings, true)?;
                print_costs(
                    &e.label(),
                    &crate::idle::measure(&mut e, settle, window).await?,
                );
            }
            Ok(())
        }
        Command::Persist { saves, dir } => {
            let temporary = dir.is_none();
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("tenure-bench-persist-{}", std::process::id()))
            });
            crate::persist::run(&dir, saves.max(1))?;
            if temporary {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(())
        }
        Command::SimFailover {
            nodes,
            trials,
            fault,
            detect_ms,
            detect_spread_ms,
            component,
        } => {
            anyhow::ensure!(
                detect_spread_ms.is_finite() && detect_spread_ms >= 0.0,
                "--detect-spread-ms must be a number of ms, 0 or more (got {detect_spread_ms})"
            );
            let component = tenure_host::component_path::load_election(component)?;
            let fault = match fault {
                Fault::Stop => crate::sim_failover::SimFault::Stop,
                Fault::Kill => crate::sim_failover::SimFault::Kill {
                    detect_ms,
                    spread_us: (detect_spread_ms * 1_000.0).round() as u64,
                },
            };
            let report = crate::sim_failover::run(&component, nodes.max(2), trials.max(1), fault)?;
            crate::sim_failover::print(nodes, fault, &report);
            Ok(())
        }
        Command::Scale {
            setup,
            voters,
            observers,
            timings,
            batch,
            settle,
            seconds,
            trials,
            fault,
            poll_ms,
            verbose,
        } => {
            let options = crate::scale::ScaleOptions {
                binary: setup.tenure_binary()?,
                dir: setup.dir(&format!("scale-{voters}-{observers}")),
                remove_dir: setup.dir.is_none(),
                voters,
                observers,
                timings,
                plugin: setup.plugin.clone(),
                batch,
                settle: Duration::from_secs(settle),
                window: Duration::from_secs(seconds),
                trials,
                fault,
                poll: Duration::from_millis(poll_ms),
                verbose,
            };
            crate::scale::run(options).await
        }
        Command::Startup { setup, runs } => {
            let dir = setup.dir("startup");
            let mut t = start_tenure(
                &setup,
                &dir,
                1,
                "150,300,50".parse().map_err(anyhow::Error::msg)?,
                true,
                false,
            )
            .await?;
            for cold in [true, false] {
                let mut ready = Vec::new();
                let mut election = Vec::new();
                let mut plugin = Vec::new();
                for _ in 0..runs {
                    let s = crate::startup::start_once(&mut t, cold).await?;
                    ready.push(s.ready_ms);
                    election.extend(s.election_ms);
                    plugin.extend(s.plugin_ms);
                }
                let kind = if cold { "cold cache" } else { "warm cache" };
                println!("{kind}, {runs} starts:");
                println!("  spawn to admin answering: {}", summary(&ready));
                println!("  election component load:  {}", summary(&election));
                if !plugin.is_empty() {
                    println!("  plugin load:              {}", summary(&plugin));
                }
            }
            Ok(())
        }
    }
}

impl Setup {
    fn dir(&self, what: &str) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("tenure-bench-{what}-{}", std::process::id()))
        })
    }

    fn tenure_binary(&self) -> anyhow::Result<PathBuf> {
        let path = self.tenure.clone().unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
                .join("release/tenure")
        });
        if !path.is_file() {
            bail!(
                "no tenure binary at {}: run scripts/build-guests.sh and \
                 cargo build --release -p tenure-host, or pass --tenure",
                path.display()
            );
        }
        Ok(path)
    }
}

/// Starts a Tenure cluster and says which binary and protocol it runs.
async fn start_tenure(
    setup: &Setup,
    dir: &Path,
    nodes: usize,
    timings: Timings,
    pre_vote: bool,
    tls: bool,
) -> anyhow::Result<TenureCluster> {
    let binary = setup.tenure_binary()?;
    let options = TenureOptions {
        binary: binary.clone(),
        timings,
        pre_vote,
        plugin: setup.plugin.clone(),
        tls,
    };
    let cluster = TenureCluster::start(&dir.join("tenure"), nodes, options)?;
    let report = crate::failover::wait_for_admin(cluster.admin(0)).await?;
    println!(
        "tenure: {} (protocol {} sha256 {}, plugin {})",
        binary.display(),
        report.protocol_version,
        report.protocol_sha256.get(..12).unwrap_or("?"),
        report.plugin.map_or_else(|| "none".to_string(), |p| p.name)
    );
    Ok(cluster)
}

fn parse_etcd_timings(s: &str) -> anyhow::Result<EtcdTimings> {
    let (hb, et) = s
        .split_once(',')
        .context("--etcd-timings: expected HEARTBEAT,ELECTION")?;
    Ok(EtcdTimings {
        heartbeat_ms: hb.trim().parse().context("--etcd-timings heartbeat")?,
        election_ms: et.trim().parse().context("--etcd-timings election")?,
    })
}
