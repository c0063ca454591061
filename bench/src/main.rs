//! `tenure-bench`: benchmarks of real clusters on 127.0.0.1.
//!
//! - `failover`: kill (or freeze) the leader, time until the survivors
//!   agree on a new one; Tenure, etcd, or both interleaved.
//! - `idle`: CPU and memory of each member of an idle cluster.
//! - `startup`: one node's start-up with a cold and a warm compile cache.
//! - `persist`: one durable save of the protocol state, two ways.
//! - `sim-failover`: the protocol's failover alone, in virtual time.
//! - `scale`: one cluster of 9 voters and 100 observers: idle cost per
//!   node, heartbeat and ack sizes, the voters' failover.
//!
//! Every figure is printed; nothing here passes or fails on a time. See
//! BENCHMARKS.md for the commands behind the published figures.
//!
//! # Layout
//!
//! - [`cluster`]: the [`cluster::System`] a benchmark drives, and asking
//!   members who leads; [`tenure`] and [`etcd`] implement it.
//! - [`failover`]: one failover trial; [`tarpit`]: switching Tenure's fast
//!   failover off from outside.
//! - [`idle`] and [`procfs`]: idle cost; [`startup`]: start-up time;
//!   [`persist`]: the state file's save; [`sim_failover`]: failover in
//!   the simulator; [`scale`]: a big cluster of voters and observers,
//!   and [`sent`]: the heartbeat and ack counters it reads from
//!   `/metrics`.
//! - [`report`]: what every command prints besides its figures (the
//!   machine, the commit, the command line) and the shared summaries.
//! - [`stats`]: percentiles and the theoretical expectation;
//!   [`ports`]: loopback ports (child processes and Tenure's configs come
//!   from `tenure_host::testing::processes`, as the process tests' do).

mod cli;
mod cluster;
mod etcd;
mod event_times;
mod failover;
mod idle;
mod keep_alive;
mod persist;
mod ports;
mod procfs;
mod report;
mod scale;
mod sent;
mod sim_failover;
mod startup;
mod stats;
mod tarpit;
mod tenure;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
