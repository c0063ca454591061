//! The leader-api through the generated bindings (only in `wasm32`
//! builds); `crate::node` wraps these in the SDK's own types.

use crate::__bindings::tenure::election::leader_api as api;
use crate::__bindings::tenure::election::types::{LogLevel, Role as WitRole};
use crate::node::{Level, Role, Term};

pub(crate) fn is_leader() -> bool {
    api::is_leader()
}

pub(crate) fn leader() -> Option<String> {
    api::leader()
}

pub(crate) fn role() -> Role {
    match api::current_role() {
        WitRole::Follower => Role::Follower,
        WitRole::Candidate => Role::Candidate,
        WitRole::Leader => Role::Leader,
    }
}

pub(crate) fn term() -> Term {
    api::current_term()
}

pub(crate) fn lease_remaining_ns() -> Option<u64> {
    api::lease_remaining_ns()
}

pub(crate) fn fencing_token() -> Option<Term> {
    api::fencing_token()
}

pub(crate) fn transfer_leadership(to: &str) -> Result<(), String> {
    api::transfer_leadership(to)
}

pub(crate) fn this_node() -> String {
    api::this_node()
}

pub(crate) fn cluster_id() -> String {
    api::cluster_id()
}

pub(crate) fn peers() -> Vec<String> {
    api::peers()
}

pub(crate) fn send(peer: &str, payload: &[u8]) {
    api::send(peer, payload);
}

pub(crate) fn broadcast(payload: &[u8]) {
    api::broadcast(payload);
}

pub(crate) fn schedule(after_ms: u64, tag: &str) -> u64 {
    api::schedule(after_ms, tag)
}

pub(crate) fn cancel_schedule(id: u64) {
    api::cancel_schedule(id);
}

pub(crate) fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    api::log(level, message);
}
