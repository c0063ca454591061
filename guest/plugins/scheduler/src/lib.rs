//! A Tenure behaviour plugin that runs a periodic job on the leader only.
//!
//! When the node becomes leader the plugin schedules a `tick` wake-up every
//! `period-ms`; each tick that finds the node still leading, with its lease
//! (a majority confirmed it lately), counts a run and logs `run N of JOB by
//! NODE in term TERM`. A leader without a lease — frozen or cut off, a
//! newer leader possibly elected — skips the run and tries next period. Stepping down cancels the
//! pending tick. The run count survives a hot swap, and a restored
//! scheduler on a leading node re-arms its tick, so a swap never stops
//! leader duties. `on-call` with `runs` answers the run count.
//!
//! Build it with
//!
//! ```text
//! cargo build -p tenure-plugin-scheduler --target wasm32-wasip2 --release
//! ```
//!
//! which writes `target/wasm32-wasip2/release/tenure_plugin_scheduler.wasm`.
//!
//! The scheduler itself (`scheduler::Scheduler`) calls the SDK's leader
//! API (`tenure_sdk::node`), which in a native build is the SDK's fake
//! node, so its unit tests run in plain `cargo test`; `Plugin` hands it
//! the SDK's callbacks, and `tenure_sdk::export!` makes the component.

#![forbid(unsafe_code)]

mod config;
mod scheduler;
mod snapshot;

use tenure_sdk::{Behaviour, Error, Term, WakeupId};

use crate::config::Config;
use crate::scheduler::Scheduler;

/// The scheduler as a behaviour: leader changes, ticks, calls and the
/// hot-swap state go to [`Scheduler`].
struct Plugin {
    scheduler: Scheduler,
}

impl Default for Plugin {
    fn default() -> Self {
        Plugin {
            scheduler: Scheduler::new(Config::default()),
        }
    }
}

impl Behaviour for Plugin {
    fn init(&mut self, config: &tenure_sdk::Config) -> Result<(), Error> {
        self.scheduler = Scheduler::new(Config::parse(config)?);
        self.scheduler.start();
        Ok(())
    }

    fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
        self.scheduler.become_leader(term);
        Ok(())
    }

    fn on_become_follower(&mut self, _leader: Option<&str>, _term: Term) {
        self.scheduler.become_follower();
    }

    fn on_call(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.scheduler.call(request)?)
    }

    fn on_scheduled(&mut self, id: WakeupId, tag: &str) {
        self.scheduler.scheduled(id, tag);
    }

    fn inspect(&mut self) -> Vec<(String, String)> {
        self.scheduler.inspect()
    }

    fn snapshot(&mut self) -> Vec<u8> {
        self.scheduler.snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Error> {
        Ok(self.scheduler.restore(snapshot)?)
    }
}

tenure_sdk::export!(Plugin);
