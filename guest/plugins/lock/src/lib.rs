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
//! The service itself (`service::LockService`) calls the SDK's leader API
//! (`tenure_sdk::node`), which in a native build is the SDK's fake node, so
//! its unit tests run in plain `cargo test`; `Plugin` hands it the SDK's
//! callbacks, and `tenure_sdk::export!` makes the component.

#![forbid(unsafe_code)]

mod config;
mod request;
mod service;
mod snapshot;
mod table;

use tenure_sdk::{Behaviour, Error, Term, WakeupId};

use crate::config::Config;
use crate::service::LockService;

/// The lock service as a behaviour: leader changes, wake-ups, requests
/// and the hot-swap state go to [`LockService`].
struct Plugin {
    service: LockService,
}

impl Default for Plugin {
    fn default() -> Self {
        Plugin {
            service: LockService::new(Config::default()),
        }
    }
}

impl Behaviour for Plugin {
    fn init(&mut self, config: &tenure_sdk::Config) -> Result<(), Error> {
        self.service = LockService::new(Config::parse(config)?);
        self.service.start();
        Ok(())
    }

    fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
        self.service.become_leader(term);
        Ok(())
    }

    fn on_become_follower(&mut self, _leader: Option<&str>, _term: Term) {
        self.service.become_follower();
    }

    fn on_call(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.service.call(request)?)
    }

    fn on_scheduled(&mut self, id: WakeupId, tag: &str) {
        self.service.scheduled(id, tag);
    }

    fn inspect(&mut self) -> Vec<(String, String)> {
        self.service.inspect()
    }

    fn snapshot(&mut self) -> Vec<u8> {
        self.service.snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), Error> {
        Ok(self.service.restore(snapshot)?)
    }
}

tenure_sdk::export!(Plugin);
