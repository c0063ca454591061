//! The host side of `interface host` in `wit/protocol.wit`.
//!
//! Every import only records an [`Effect`] (logs are also written to
//! `tracing` at once); the caller of the export carries the effects out
//! after the call returns. That keeps the component's calls short and
//! side-effect free, and lets the simulator and a real node share this code.

use crate::bindings::protocol::tenure::election::host::Host;
use crate::bindings::types::{self, Event, LogLevel, NodeStatus, PersistedState};

use super::{Effect, ProtocolState};

impl types::Host for ProtocolState {}

impl Host for ProtocolState {
    fn send(&mut self, to: String, payload: Vec<u8>) {
        self.effects.push(Effect::Send { to, payload });
    }

    fn set_timer(&mut self, id: u64, after_ns: u64) {
        self.effects.push(Effect::SetTimer { id, after_ns });
    }

    fn cancel_timer(&mut self, id: u64) {
        self.effects.push(Effect::CancelTimer { id });
    }

    fn emit(&mut self, event: Event) {
        self.effects.push(Effect::Emit(event));
    }

    fn persist(&mut self, state: PersistedState) {
        self.effects.push(Effect::Persist(state));
    }

    fn now(&mut self) -> u64 {
        self.env.now_ns()
    }

    fn random(&mut self) -> u64 {
        self.env.random_u64()
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let node = self.node.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(node, "{message}"),
            LogLevel::Debug => tracing::debug!(node, "{message}"),
            LogLevel::Info => tracing::info!(node, "{message}"),
            LogLevel::Warn => tracing::warn!(node, "{message}"),
            LogLevel::Error => tracing::error!(node, "{message}"),
        }
        self.effects.push(Effect::Log { level, message });
    }

    fn status_changed(&mut self, status: NodeStatus) {
        self.status = status;
        self.effects.push(Effect::StatusChanged);
    }
}
