//! The `tenure` command. Parses the command line and calls the library;
//! each subcommand lives in `host/src/cli/`.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tenure: leader election for clusters, with the protocol and the leader
/// logic as WebAssembly components.
#[derive(Parser)]
#[command(name = "tenure", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the election component in the deterministic simulator.
    #[command(subcommand)]
    Sim(SimCommand),
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

fn main() -> ExitCode {
    let args = Args::parse();
    // The simulator reports protocol warnings in its own trace; its log
    // output is for debugging (`RUST_LOG=info`).
    let default_filter = match args.command {
        Command::Sim(_) => "error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match args.command {
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
            component,
        }) => cli::sim::chaos(
            component,
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
