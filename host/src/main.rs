//! The `tenure` command. Parses the command line and calls the library;
//! each subcommand lives in `host/src/cli/`.

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tenure_host::admin_client::Credentials;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Tenure: leader election for clusters, with the protocol and the leader
/// logic as WebAssembly components.
#[derive(Parser)]
#[command(name = "tenure", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// For commands that talk to a node: a file holding its admin token
    /// (the token alone, or `NAME TOKEN`). Default: the file named by
    /// TENURE_ADMIN_TOKEN_FILE, else the token in TENURE_ADMIN_TOKEN.
    #[arg(long, global = true, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// For a node with `[admin-tls]`: speak HTTPS, trusting this CA
    /// certificate (the node's must name its admin IP).
    #[arg(long, global = true, value_name = "PATH")]
    ca: Option<PathBuf>,
    /// With --ca: show this admin client certificate (`tenure certs
    /// --admin NAME`), which a node with `client-ca` takes instead of a
    /// token.
    #[arg(long, global = true, value_name = "PATH", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key.
    #[arg(long, global = true, value_name = "PATH", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// How log lines are written to stderr: `text` for people, `json` (one
    /// object per line, the fields — node, term, peer, event — as keys) for
    /// log pipelines. Filter with RUST_LOG (`RUST_LOG=info,tenure_transport=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TENURE_LOG_FORMAT")]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node until Ctrl-C or SIGTERM; with `-- CMD ARGS…`, also run
    /// CMD whenever this node leads, stopped before its lease can lapse.
    Run {
        /// The node's TOML configuration (see the README for every key).
        #[arg(long)]
        config: PathBuf,
        /// Set a config key over the file and the environment, e.g.
        /// `--set node-id=n2` or `--set timings.heartbeat-interval-ms=40`
        /// (any key; TABLE.KEY for a key in a table). Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// A command to run while this node leads (after `--`).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Follow a node's leadership: one line per change (`GET /watch`),
    /// the current state first.
    Watch {
        /// The node's admin address.
        #[arg(long)]
        admin: SocketAddr,
        /// Print each event's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a node's configuration file without starting the node.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show a running node's status.
    Status {
        /// The node's admin address (its `admin` key; also in
        /// DATA-DIR/admin.addr).
        #[arg(long)]
        admin: SocketAddr,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a 3-node cluster on loopback with the scheduler plugin and watch
    /// leadership (and fail it over).
    Demo {
        /// First peer port (nodes use PORT..PORT+2, admin PORT+100..).
        #[arg(long, default_value_t = 7101)]
        base_port: u16,
        /// The behaviour plugin every node runs (default: the workspace's
        /// release build of the scheduler example).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// A `[plugin.config]` entry for every node, KEY=VALUE; repeatable
        /// (default, for the scheduler only: period-ms=1000, job=report).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        plugin_config: Vec<String>,
        /// Stop after this many seconds (default: at Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
        /// Kill the leader by itself after this many seconds.
        #[arg(long)]
        kill_leader_after: Option<u64>,
    },
    /// Run the election component in the deterministic simulator.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Make a running node give up leadership (or a candidacy).
    StepDown {
        /// The node's admin address.
        #[arg(long)]
        admin: SocketAddr,
    },
    /// Make a running node start an election now (a pre-vote first).
    Campaign {
        /// The node's admin address.
        #[arg(long)]
        admin: SocketAddr,
    },
    /// Make the leader hand leadership to another node.
    Transfer {
        /// The leader's admin address.
        #[arg(long)]
        admin: SocketAddr,
        /// The node to lead next.
        #[arg(long)]
        to: String,
    },
    /// Remove a member for good, so the quorum shrinks: only a node that is
    /// stopped (or the node itself, which then stops voting).
    Leave {
        /// The admin address of any member (the leader spreads it fastest).
        #[arg(long)]
        admin: SocketAddr,
        /// The member to remove.
        #[arg(long)]
        node: String,
    },
    /// Manage a running node's behaviour plugin.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage a running node's protocol component.
    #[command(subcommand)]
    Protocol(ProtocolCommand),
    /// Make a cluster CA and a certificate for each node, for `[tls]`
    /// (mutual TLS between nodes); again with the same --out, new node
    /// certificates from the same CA (then SIGHUP the nodes).
    Certs {
        /// The cluster id the certificates name (the nodes' `cluster-id`).
        #[arg(long)]
        cluster: String,
        /// Where to write ca.pem, ca.key and NODE.pem / NODE.key.
        #[arg(long)]
        out: PathBuf,
        /// Extra DNS or IP names for a node's certificate:
        /// NODE=NAME[,NAME…]; repeatable.
        #[arg(long = "san", value_name = "NODE=NAMES")]
        sans: Vec<String>,
        /// How long node certificates are valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Also an admin client certificate for NAME (for `[admin-tls]
        /// client-ca`), as NAME-admin.pem / .key; repeatable.
        #[arg(long = "admin", value_name = "NAME")]
        admins: Vec<String>,
        /// The node ids to issue certificates for.
        nodes: Vec<String>,
    },
    /// Write a ready-to-build behaviour plugin project in Rust, Python or
    /// JavaScript: a build script, the behaviour, its native unit test and
    /// a scenario file for `tenure test`.
    NewPlugin {
        /// The plugin's name: lowercase letters, digits, `-`, `_`.
        name: String,
        /// Where to write it (default: ./NAME); must be absent or empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The language to write it in.
        #[arg(long, value_enum, default_value_t = cli::new_plugin::Lang::Rust)]
        lang: cli::new_plugin::Lang,
    },
    /// Run scenario files: a plugin's .wasm on a simulated cluster, driven
    /// through the file's steps in virtual time, its expectations and the
    /// protocol's invariants checked. Exits 1 if any failed.
    Test {
        /// The scenario files (TOML; see docs/testing-behaviours.md).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Run each scenario over N seeds (from its `cluster.seed` on)
        /// instead of what the file says.
        #[arg(long, conflicts_with = "seed")]
        seeds: Option<u64>,
        /// Run exactly this seed: the replay a failure prints.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write the results as JUnit XML, for CI systems.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Where compiled plugins are cached between runs (default
        /// ~/.cache/tenure/artifacts).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProtocolCommand {
    /// Swap the protocol for another build: term, vote, role, membership
    /// and armed timers move into it; if it refuses, the old one keeps
    /// running.
    Swap {
        /// The node's admin address.
        #[arg(long)]
        admin: SocketAddr,
        /// The other build of the election component.
        path: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Hot-swap the plugin: the new version takes over the old one's state;
    /// if anything fails, the old version keeps running. With several
    /// --admin, a rolling swap: compile on every node first, then swap the
    /// followers and the leader last.
    Swap {
        /// The node's admin address; repeat it for a rolling swap.
        #[arg(long, required = true)]
        admin: Vec<SocketAddr>,
        /// The new plugin component.
        path: PathBuf,
    },
    /// Compile the plugin into each node's artifact cache without swapping
    /// it in, so a later swap of it takes milliseconds.
    Compile {
        /// A node's admin address; repeatable.
        #[arg(long, required = true)]
        admin: Vec<SocketAddr>,
        /// The plugin component.
        path: PathBuf,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Watch a simulated cluster elect, lose its leader, split and heal.
    Demo {
        /// Cluster size.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Seed for every random choice; the same seed replays the same run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print every event, not only leadership changes.
        #[arg(long)]
        verbose: bool,
        /// The election component (default: the workspace's release build).
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// Run the randomized fault scenario: one seed with its trace, or many.
    Chaos {
        /// Run only this seed.
        #[arg(long, conflicts_with_all = ["seeds", "from"])]
        seed: Option<u64>,
        /// How many seeds to run.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// The first seed of the batch.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Worker threads (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print the trace of a single seed.
        #[arg(long)]
        trace: bool,
        /// A behaviour plugin every node runs (repeat for more versions):
        /// nodes start with the first, and operators hot-swap nodes to any
        /// of them in the middle of the faults.
        #[arg(long = "plugin", value_name = "PATH")]
        plugins: Vec<PathBuf>,
        /// The election component (default: the workspace's release build).
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// Measure how many simulated seconds pass per wall-clock second.
    Bench {
        /// Cluster size.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Virtual seconds to simulate.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The election component (default: the workspace's release build).
        #[arg(long)]
        component: Option<PathBuf>,
    },
}

/// `tenure config …`.
#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate FILE as `tenure run --config FILE` would read it (keys,
    /// ranges, the files it names, secrets, certificates), start nothing;
    /// exit 1 naming the key and the problem.
    Check {
        /// The node's TOML configuration.
        file: PathBuf,
        /// Config keys over the file and the environment, as `run --set`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

fn main() -> ExitCode {
    // `--version` (or `-V`, wherever clap takes it: first, or after global
    // options) names the protocol build too, which takes compiling it:
    // only when asked, so clap's own short answer is replaced here.
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            print!("{}", cli::version::long_version());
            return ExitCode::SUCCESS;
        }
        Err(e) => e.exit(),
    };
    // The simulator reports the protocol's warnings and errors in its own
    // trace (`--trace`), and chaos makes errors on purpose (a node that
    // lost its disk says so); its log output is for debugging
    // (`RUST_LOG=info`).
    let default_filter = match args.command {
        Command::Sim(_) | Command::Test { .. } => "off",
        Command::Run { .. } => "info",
        Command::Status { .. } | Command::Watch { .. } | Command::Config(_) => "warn",
        Command::Demo { .. } | Command::NewPlugin { .. } | Command::Certs { .. } => "warn",
        Command::Plugin(_)
        | Command::Protocol(_)
        | Command::StepDown { .. }
        | Command::Campaign { .. }
        | Command::Transfer { .. }
        | Command::Leave { .. } => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // A node's lines go through a writer thread, so a stalled stderr
    // cannot freeze its runtime thread (see tenure_host::logging). The
    // guard lives to the end of `main`, which writes out what is queued.
    // Other commands write inline: their lines stay in order with what
    // they print.
    let (writer, log_guard) = match args.command {
        Command::Run { .. } => {
            let (writer, guard) = tenure_host::logging::stderr_writer();
            (BoxMakeWriter::new(writer), Some(guard))
        }
        _ => (BoxMakeWriter::new(std::io::stderr), None),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    if log_guard.is_some() {
        tenure_host::logging::warn_if_test_buffer();
    }
    let credentials = || {
        let credentials = match &args.token_file {
            Some(path) => Credentials::from_file(path)?,
            None => Credentials::from_env()?,
        };
        let client = args.client_cert.as_deref().zip(args.client_key.as_deref());
        match &args.ca {
            Some(ca) => credentials.with_tls(ca, client),
            None if client.is_some() => anyhow::bail!("--client-cert needs --ca"),
            None => Ok(credentials),
        }
    };
    let result = match args.command {
        Command::Run {
            config,
            sets,
            command,
        } => block_on(cli::run::run(&config, &sets, command)),
        Command::NewPlugin { name, dir, lang } => cli::new_plugin::new_plugin(&name, dir, lang),
        Command::Test {
            files,
            seeds,
            seed,
            junit,
            cache_dir,
        } => cli::test::test(&cli::test::TestRequest {
            files,
            seeds,
            seed,
            junit,
            cache_dir,
        }),
        Command::Config(ConfigCommand::Check { file, sets }) => {
            cli::config_check::check(&file, &sets).map(|()| ExitCode::SUCCESS)
        }
        Command::Certs {
            cluster,
            out,
            sans,
            days,
            admins,
            nodes,
        } => cli::certs::certs(cli::certs::CertsRequest {
            cluster,
            out,
            nodes,
            sans,
            days,
            admins,
        }),
        Command::Status { admin, json } => {
            credentials().and_then(|c| block_on(cli::status::status(admin, &c, json)))
        }
        Command::Watch { admin, json } => {
            credentials().and_then(|c| block_on(cli::watch::watch(admin, &c, json)))
        }
        Command::Plugin(PluginCommand::Swap { admin, path }) => match admin.as_slice() {
            [one] => credentials().and_then(|c| block_on(cli::actions::swap(*one, &c, &path))),
            many => credentials().and_then(|c| block_on(cli::rolling::swap(many, &c, &path))),
        },
        Command::Plugin(PluginCommand::Compile { admin, path }) => {
            credentials().and_then(|c| block_on(cli::rolling::compile(&admin, &c, &path)))
        }
        Command::StepDown { admin } => credentials()
            .and_then(|c| block_on(cli::actions::admin_action(admin, &c, "/step-down"))),
        Command::Campaign { admin } => {
            credentials().and_then(|c| block_on(cli::actions::admin_action(admin, &c, "/campaign")))
        }
        Command::Leave { admin, node } => {
            let node: String = node
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                .collect();
            credentials().and_then(|c| {
                block_on(cli::actions::admin_action(
                    admin,
                    &c,
                    &format!("/leave?node={node}"),
                ))
            })
        }
        Command::Transfer { admin, to } => {
            let to: String = to
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                .collect();
            credentials().and_then(|c| {
                block_on(cli::actions::admin_action(
                    admin,
                    &c,
                    &format!("/transfer?to={to}"),
                ))
            })
        }
        Command::Protocol(ProtocolCommand::Swap { admin, path }) => {
            credentials().and_then(|c| block_on(cli::actions::swap_protocol(admin, &c, &path)))
        }
        Command::Demo {
            base_port,
            plugin,
            plugin_config,
            seconds,
            kill_leader_after,
        } => block_on(cli::demo::demo(cli::demo::DemoOptions {
            plugin_config,
            base_port,
            plugin,
            duration: seconds.map(std::time::Duration::from_secs),
            kill_leader_after: kill_leader_after.map(std::time::Duration::from_secs),
        })),
        Command::Sim(SimCommand::Demo {
            nodes,
            seed,
            verbose,
            component,
        }) => cli::sim::demo(component, nodes, seed, verbose),
        Command::Sim(SimCommand::Chaos {
            seed,
            seeds,
            from,
            jobs,
            trace,
            plugins,
            component,
        }) => cli::sim::chaos(
            component,
            &plugins,
            seed,
            from..from.saturating_add(seeds),
            jobs,
            trace,
        ),
        Command::Sim(SimCommand::Bench {
            nodes,
            seconds,
            seed,
            component,
        }) => cli::sim::bench(component, nodes, seconds, seed),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `future` on a tokio runtime made for it.
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    runtime.block_on(future)
}
