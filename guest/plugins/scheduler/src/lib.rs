//! A Tenure behaviour plugin that runs a periodic job on the leader only.
//!
//! When the node becomes leader the plugin schedules a `tick` wake-up every
//! `period-ms`; each tick that finds the node still leading counts a run
//! and logs `run N of JOB by NODE in term TERM`. Stepping down cancels the
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
//! The scheduler itself (`scheduler::Scheduler`) is written against the
//! small `host::Host` trait, so it runs in native unit tests against a
//! fake node; only the `component` module, which binds it to the WIT world
//! and the real `leader-api`, is wasm-only.

#[cfg(any(target_arch = "wasm32", test))]
mod config;
#[cfg(any(target_arch = "wasm32", test))]
mod host;
#[cfg(any(target_arch = "wasm32", test))]
mod scheduler;
#[cfg(any(target_arch = "wasm32", test))]
mod snapshot;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use crate::config::Config;
    use crate::host::{Host, Level};
    use crate::scheduler::Scheduler;

    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit",
    });

    use exports::tenure::election::behaviour::Guest;
    use tenure::election::leader_api;
    use tenure::election::types::LogLevel;

    thread_local! {
        /// The scheduler; `None` until `init` accepts a config.
        static SCHEDULER: RefCell<Option<Scheduler>> = const { RefCell::new(None) };
    }

    /// The node, through the imported `leader-api`.
    struct LeaderApi;

    impl Host for LeaderApi {
        fn is_leader(&self) -> bool {
            leader_api::is_leader()
        }
        fn current_term(&self) -> u64 {
            leader_api::current_term()
        }
        fn this_node(&self) -> String {
            leader_api::this_node()
        }
        fn schedule(&mut self, after_ms: u64, tag: &str) -> u64 {
            leader_api::schedule(after_ms, tag)
        }
        fn cancel_schedule(&mut self, id: u64) {
            leader_api::cancel_schedule(id);
        }
        fn log(&mut self, level: Level, message: &str) {
            let level = match level {
                Level::Debug => LogLevel::Debug,
                Level::Info => LogLevel::Info,
            };
            leader_api::log(level, message);
        }
    }

    /// Runs `f` on the scheduler. Callbacks before a successful `init` are
    /// a host bug: logged and otherwise ignored (a trap would only get the
    /// instance replaced), with `default` as the answer.
    fn with_scheduler<T>(
        what: &str,
        default: T,
        f: impl FnOnce(&mut Scheduler, &mut LeaderApi) -> T,
    ) -> T {
        SCHEDULER.with_borrow_mut(|slot| match slot {
            Some(scheduler) => f(scheduler, &mut LeaderApi),
            None => {
                leader_api::log(
                    LogLevel::Warn,
                    &format!("{what} called before init; ignored"),
                );
                default
            }
        })
    }

    struct Component;

    impl Guest for Component {
        fn init(config: Vec<(String, String)>) -> Result<(), String> {
            let config = Config::parse(&config)?;
            let mut scheduler = Scheduler::new(config);
            scheduler.start(&mut LeaderApi);
            SCHEDULER.with_borrow_mut(|slot| *slot = Some(scheduler));
            Ok(())
        }

        fn on_become_leader(term: u64) -> Result<(), String> {
            with_scheduler("on-become-leader", Ok(()), |s, host| {
                s.become_leader(host, term);
                Ok(())
            })
        }

        fn on_become_follower(_leader: Option<String>, _term: u64) {
            with_scheduler("on-become-follower", (), Scheduler::become_follower);
        }

        fn on_peer_joined(_peer: String) {}

        fn on_peer_left(_peer: String) {}

        fn on_term_changed(_old: u64, _new: u64) {}

        fn on_message(_sender: String, _payload: Vec<u8>) {}

        fn on_call(request: Vec<u8>) -> Result<Vec<u8>, String> {
            with_scheduler(
                "on-call",
                Err("scheduler not initialised".to_string()),
                |s, _| s.call(&request),
            )
        }

        fn on_scheduled(id: u64, tag: String) {
            with_scheduler("on-scheduled", (), |s, host| s.scheduled(host, id, &tag));
        }

        fn inspect() -> Vec<(String, String)> {
            with_scheduler("inspect", Vec::new(), |s, _| s.inspect())
        }

        fn snapshot() -> Vec<u8> {
            with_scheduler("snapshot", Vec::new(), |s, _| s.snapshot())
        }

        fn restore(snapshot: Vec<u8>) -> Result<(), String> {
            with_scheduler(
                "restore",
                Err("scheduler not initialised".to_string()),
                |s, host| s.restore(host, &snapshot),
            )
        }
    }

    export!(Component);
}
