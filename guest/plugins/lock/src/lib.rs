//! A Tenure behaviour plugin: a lock service fenced by the election term.
//!
//! Clients send one-line text requests through the node's admin endpoint
//! (`on-call`): `acquire NAME HOLDER TTL_MS`, `release NAME HOLDER`,
//! `query NAME`. Only the leader answers; a follower names the leader. A
//! grant replies `granted NAME to HOLDER token TERM.SEQ`: the term the
//! leader was elected in, then the grant's number within that term. A store
//! that remembers the highest token it has seen refuses writes carrying a
//! lower one, so a deposed leader's clients cannot overwrite the work of
//! the current leader's. A new leader refuses requests for `grace-ms`
//! first, so grants made by earlier leaders have run out.
//!
//! Build it with
//!
//! ```text
//! cargo build -p tenure-plugin-lock --target wasm32-wasip2 --release
//! ```
//!
//! which writes `target/wasm32-wasip2/release/tenure_plugin_lock.wasm`.
//!
//! The service itself (`service::LockService`) is written against the
//! small `host::Host` trait, so it runs in native unit tests against a
//! fake node; only the `component` module, which binds it to the WIT world
//! and the real `leader-api`, is wasm-only.

#[cfg(any(target_arch = "wasm32", test))]
mod config;
#[cfg(any(target_arch = "wasm32", test))]
mod host;
#[cfg(any(target_arch = "wasm32", test))]
mod request;
#[cfg(any(target_arch = "wasm32", test))]
mod service;
#[cfg(any(target_arch = "wasm32", test))]
mod snapshot;
#[cfg(any(target_arch = "wasm32", test))]
mod table;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use crate::config::Config;
    use crate::host::{Host, Level};
    use crate::service::LockService;

    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit",
    });

    use exports::tenure::election::behaviour::Guest;
    use tenure::election::leader_api;
    use tenure::election::types::LogLevel;

    thread_local! {
        /// The lock service; `None` until `init` accepts a config.
        static SERVICE: RefCell<Option<LockService>> = const { RefCell::new(None) };
    }

    /// The node, through the imported `leader-api`.
    struct LeaderApi;

    impl Host for LeaderApi {
        fn is_leader(&self) -> bool {
            leader_api::is_leader()
        }
        fn leader(&self) -> Option<String> {
            leader_api::leader()
        }
        fn current_term(&self) -> u64 {
            leader_api::current_term()
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

    /// Runs `f` on the service. Callbacks before a successful `init` are a
    /// host bug: logged and otherwise ignored (a trap would only get the
    /// instance replaced), with `default` as the answer.
    fn with_service<T>(
        what: &str,
        default: T,
        f: impl FnOnce(&mut LockService, &mut LeaderApi) -> T,
    ) -> T {
        SERVICE.with_borrow_mut(|slot| match slot {
            Some(service) => f(service, &mut LeaderApi),
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
            let mut service = LockService::new(config);
            service.start(&mut LeaderApi);
            SERVICE.with_borrow_mut(|slot| *slot = Some(service));
            Ok(())
        }

        fn on_become_leader(term: u64) -> Result<(), String> {
            with_service("on-become-leader", Ok(()), |s, host| {
                s.become_leader(host, term);
                Ok(())
            })
        }

        fn on_become_follower(_leader: Option<String>, _term: u64) {
            with_service("on-become-follower", (), LockService::become_follower);
        }

        fn on_peer_joined(_peer: String) {}

        fn on_peer_left(_peer: String) {}

        fn on_term_changed(_old: u64, _new: u64) {}

        fn on_message(_sender: String, _payload: Vec<u8>) {}

        fn on_call(request: Vec<u8>) -> Result<Vec<u8>, String> {
            with_service(
                "on-call",
                Err("lock service not initialised".to_string()),
                |s, host| s.call(host, &request),
            )
        }

        fn on_scheduled(id: u64, tag: String) {
            with_service("on-scheduled", (), |s, host| s.scheduled(host, id, &tag));
        }

        fn inspect() -> Vec<(String, String)> {
            with_service("inspect", Vec::new(), |s, _| s.inspect())
        }

        fn snapshot() -> Vec<u8> {
            with_service("snapshot", Vec::new(), |s, _| s.snapshot())
        }

        fn restore(snapshot: Vec<u8>) -> Result<(), String> {
            with_service(
                "restore",
                Err("lock service not initialised".to_string()),
                |s, host| s.restore(host, &snapshot),
            )
        }
    }

    export!(Component);
}
