//! The host side of `interface leader-api` in `wit/behaviour.wit`.
//!
//! Questions are answered from the shared [`super::LeaderView`], which the
//! node task keeps current; requests (send, broadcast, schedule) are
//! recorded as [`PluginEffect`]s and carried out by the plugin runner after
//! the callback returns.

use std::sync::atomic::Ordering;

use crate::bindings::plugin::tenure::election::leader_api::Host;
use crate::bindings::types::{self, LogLevel, Role};

use super::{LeaderView, PluginEffect, PluginState};

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
        self.effects.push(PluginEffect::Send { peer, payload });
    }

    fn broadcast(&mut self, payload: Vec<u8>) {
        self.effects.push(PluginEffect::Broadcast { payload });
    }

    fn schedule(&mut self, after_ms: u64, tag: String) -> u64 {
        let id = self.next_schedule_id.fetch_add(1, Ordering::Relaxed);
        self.effects
            .push(PluginEffect::Schedule { id, after_ms, tag });
        id
    }

    fn cancel_schedule(&mut self, id: u64) {
        self.effects.push(PluginEffect::CancelSchedule { id });
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let node = self.view().node_id;
        super::log_line(&self.name, &node, level, &message);
        self.effects.push(PluginEffect::Log { level, message });
    }
}
