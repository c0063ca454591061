//! The host side of `interface leader-api` in `wit/behaviour.wit`.
//!
//! Questions are answered from the shared [`super::LeaderView`], which the
//! node task keeps current; requests (send, broadcast, schedule) are
//! recorded as [`PluginEffect`]s and carried out by the plugin runner after
//! the callback returns — those the quota ([`super::quota`]) admits: a
//! request over it is dropped (`schedule` returns 0) and counted, so a
//! callback's effects stay bounded whatever it calls in a loop. Of the
//! transfers of leadership a callback asks for, only the last is kept.

use std::sync::atomic::Ordering;

use crate::bindings::plugin::tenure::election::leader_api::Host;
use crate::bindings::types::{self, LogLevel, Role};

use super::quota::PluginUsage;
use super::{LeaderView, PluginEffect, PluginState};

/// The longest tag `schedule` takes.
pub const MAX_TAG_BYTES: usize = 1024;

impl types::Host for PluginState {}

impl PluginState {
    fn view(&self) -> LeaderView {
        match self.view.lock() {
            Ok(view) => view.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Host for PluginState {
    fn is_leader(&mut self) -> bool {
        self.view().role == Role::Leader
    }

    fn leader(&mut self) -> Option<String> {
        self.view().leader
    }

    fn current_role(&mut self) -> Role {
        self.view().role
    }

    fn current_term(&mut self) -> u64 {
        self.view().term
    }

    fn lease_remaining_ns(&mut self) -> Option<u64> {
        self.view().lease_remaining_ns()
    }

    fn fencing_token(&mut self) -> Option<u64> {
        let view = self.view();
        view.lease_remaining_ns().map(|_| view.term)
    }

    fn transfer_leadership(&mut self, to: String) -> Result<(), String> {
        let view = self.view();
        if view.role != Role::Leader {
            return Err(format!("{} is not the leader", view.node_id));
        }
        if to == view.node_id {
            return Err(format!("{to} already leads"));
        }
        if !view.members.contains(&to) {
            return Err(format!("{to} is not a voting member"));
        }
        if !view.peers.contains(&to) {
            return Err(format!("{to} has not been heard from lately"));
        }
        // One transfer per callback, the last asked: a plugin that asks in
        // a loop hands the node one request, not thousands.
        self.effects
            .retain(|e| !matches!(e, PluginEffect::TransferLeadership { .. }));
        self.effects.push(PluginEffect::TransferLeadership { to });
        Ok(())
    }

    fn this_node(&mut self) -> String {
        self.view().node_id
    }

    fn cluster_id(&mut self) -> String {
        self.view().cluster_id
    }

    fn peers(&mut self) -> Vec<String> {
        self.view().peers
    }

    fn send(&mut self, peer: String, payload: Vec<u8>) {
        let node = self.view().node_id;
        if self
            .usage
            .admit_message(&node, &self.name, payload.len(), 1)
        {
            self.effects.push(PluginEffect::Send { peer, payload });
        }
    }

    fn broadcast(&mut self, payload: Vec<u8>) {
        let view = self.view();
        let copies = view.peers.len().max(1);
        if self
            .usage
            .admit_message(&view.node_id, &self.name, payload.len(), copies)
        {
            self.effects.push(PluginEffect::Broadcast { payload });
        }
    }

    fn schedule(&mut self, after_ms: u64, tag: String) -> u64 {
        let asked_now = self
            .effects
            .iter()
            .filter(|e| matches!(e, PluginEffect::Schedule { .. }))
            .count();
        let max = usize::try_from(self.usage.quota().max_wakeups).unwrap_or(usize::MAX);
        if self.wakeups_pending.saturating_add(asked_now) >= max || tag.len() > MAX_TAG_BYTES {
            let refused = PluginUsage::bump(&self.usage.wakeups_refused);
            if refused.is_power_of_two() {
                tracing::warn!(
                    node = %self.view().node_id, plugin = %self.name, refused,
                    "plugin schedule refused: plugin-limits.max-wakeups pending, or a tag over {MAX_TAG_BYTES} bytes"
                );
            }
            return 0;
        }
        let id = self.next_schedule_id.fetch_add(1, Ordering::Relaxed);
        self.effects
            .push(PluginEffect::Schedule { id, after_ms, tag });
        id
    }

    fn cancel_schedule(&mut self, id: u64) {
        // Bounded like the wake-ups: cancelling more than could be
        // pending is a loop, not a request.
        let max = usize::try_from(self.usage.quota().max_wakeups).unwrap_or(usize::MAX);
        if self.effects.len() < max.saturating_mul(4) {
            self.effects.push(PluginEffect::CancelSchedule { id });
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let node = self.view().node_id;
        if let Some(line) = self.usage.admit_log_line(&node, &self.name, &message) {
            super::log_line(&self.name, &node, level, &line);
            self.effects.push(PluginEffect::Log {
                level,
                message: line.into_owned(),
            });
        }
    }
}
