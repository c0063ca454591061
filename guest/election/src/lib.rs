//! The election protocol component: exports the `tenure-election-core`
//! state machine through the `protocol` world of `wit/protocol.wit`.
//!
//! This crate is glue only. Each export reads time and randomness from the
//! host imports (through `HostEnv`), calls the state machine, then carries
//! out the actions it queued, in order, with the host imports. Build it with
//!
//! ```text
//! cargo build -p tenure-election --target wasm32-wasip2 --release
//! ```
//!
//! which writes `target/wasm32-wasip2/release/tenure_election.wasm`.

// The glue below needs no unsafe; only the bindings wit-bindgen
// generates (and the exports it emits) do, in `bindings`.
#![deny(unsafe_code)]

/// The generated bindings of the `protocol` world, and the component's
/// exports (which wit-bindgen emits as `unsafe extern "C"` functions).
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "protocol",
        path: "../../wit",
    });

    use super::component::Component;
    export!(Component with_types_in self);
}

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use tenure_election_core as core;

    use crate::bindings::exports::tenure::election::election::Guest;
    use crate::bindings::tenure::election::host;
    use crate::bindings::tenure::election::types as wit;

    thread_local! {
        /// The one election of this instance; `None` until `start`.
        static ELECTION: RefCell<Option<core::Election>> = const { RefCell::new(None) };
    }

    /// Time and randomness from the host, so the simulator controls both.
    struct HostEnv;

    impl core::Environment for HostEnv {
        fn now_ns(&mut self) -> u64 {
            host::now()
        }
        fn random_u64(&mut self) -> u64 {
            host::random()
        }
    }

    /// Runs `f` on the started election and performs the actions it queued.
    /// Calls before `start` are a host bug: logged and otherwise ignored,
    /// because a trap would poison the host's store.
    fn with_election(what: &str, f: impl FnOnce(&mut core::Election, &mut HostEnv)) {
        ELECTION.with_borrow_mut(|slot| match slot {
            Some(election) => {
                f(election, &mut HostEnv);
                perform_and_report(election);
            }
            None => host::log(
                wit::LogLevel::Error,
                &format!("{what} called before start; ignored"),
            ),
        });
    }

    /// Performs the queued actions, then reports the status if it changed
    /// (`host.status-changed`): the end of every call that can change it.
    fn perform_and_report(election: &mut core::Election) {
        perform(election.take_actions());
        if let Some(status) = election.status_change() {
            host::status_changed(&status_to_wit(status));
        }
    }

    fn perform(actions: Vec<core::Action>) {
        for action in actions {
            match action {
                core::Action::Send { to, payload } => host::send(&to, &payload),
                core::Action::SetTimer { id, after_ns } => host::set_timer(id, after_ns),
                core::Action::CancelTimer { id } => host::cancel_timer(id),
                core::Action::Emit(event) => host::emit(&event_to_wit(event)),
                core::Action::Persist(state) => host::persist(&state_to_wit(state)),
                core::Action::Log { level, message } => host::log(level_to_wit(level), &message),
            }
        }
    }

    /// This build's version: the crate version, or `TENURE_PROTOCOL_VERSION`
    /// at build time (how the tests make a second, distinguishable build).
    const VERSION: &str = match option_env!("TENURE_PROTOCOL_VERSION") {
        Some(v) => v,
        None => env!("CARGO_PKG_VERSION"),
    };

    fn options_from_wit(options: wit::Options) -> core::Options {
        core::Options {
            node_id: options.node_id,
            cluster_id: options.cluster_id,
            bootstrap: options.bootstrap,
            timings: core::Timings {
                election_timeout_min_ms: options.timings.election_timeout_min_ms,
                election_timeout_max_ms: options.timings.election_timeout_max_ms,
                heartbeat_interval_ms: options.timings.heartbeat_interval_ms,
                peer_timeout_heartbeats: options.timings.peer_timeout_heartbeats,
                lease_drift_margin_ms: options.timings.lease_drift_margin_ms,
                stability_window_ms: options.timings.stability_window_ms,
            },
            pre_vote: options.pre_vote,
            priority: options.priority,
            voter: options.voter,
            joining: options.joining,
        }
    }

    /// The component: each export of the `election` interface.
    pub(crate) struct Component;

    impl Guest for Component {
        fn start(
            options: wit::Options,
            state: Option<wit::PersistedState>,
        ) -> Result<(), wit::OptionsError> {
            let options = options_from_wit(options);
            let state = state.map(|s| core::PersistedState {
                term: s.term,
                voted_for: s.voted_for,
                members: s.members,
                epoch: s.epoch,
                epoch_term: s.epoch_term,
                removed: s.removed,
                data_id: s.data_id,
                known_ids: s.known_ids,
                confirmed_by: s.confirmed_by,
                abstain: s.abstain,
            });
            let mut election =
                core::Election::start(options, state, &mut HostEnv).map_err(|e| {
                    wit::OptionsError {
                        field: e.field,
                        reason: e.reason,
                    }
                })?;
            perform_and_report(&mut election);
            ELECTION.with_borrow_mut(|slot| *slot = Some(election));
            Ok(())
        }

        fn version() -> String {
            VERSION.to_string()
        }

        fn export_state() -> Vec<u8> {
            ELECTION.with_borrow(|slot| slot.as_ref().map(|e| e.export_state()).unwrap_or_default())
        }

        fn import_state(options: wit::Options, state: Vec<u8>) -> Result<(), String> {
            let mut election =
                core::Election::import_state(options_from_wit(options), &state, &mut HostEnv)?;
            perform_and_report(&mut election);
            ELECTION.with_borrow_mut(|slot| *slot = Some(election));
            Ok(())
        }

        fn on_message(sender: String, payload: Vec<u8>) {
            with_election("on-message", |e, env| e.on_message(&sender, &payload, env));
        }

        fn on_timer(id: u64) {
            with_election("on-timer", |e, env| e.on_timer(id, env));
        }

        fn join(peer: String) {
            with_election("join", |e, env| e.join(&peer, env));
        }

        fn peer_unreachable(peer: String) {
            with_election("peer-unreachable", |e, env| e.peer_unreachable(&peer, env));
        }

        fn transfer_leadership(to: String) -> Result<(), wit::ChangeRefusal> {
            ELECTION.with_borrow_mut(|slot| match slot {
                Some(election) => {
                    let result = election.transfer_leadership(&to, &mut HostEnv);
                    perform_and_report(election);
                    result.map_err(change_refusal_to_wit)
                }
                None => Err(wit::ChangeRefusal::NotStarted),
            })
        }

        fn leave(node: String) -> Result<(), wit::ChangeRefusal> {
            ELECTION.with_borrow_mut(|slot| match slot {
                Some(election) => {
                    let result = election.leave(&node, &mut HostEnv);
                    perform_and_report(election);
                    result.map_err(change_refusal_to_wit)
                }
                None => Err(wit::ChangeRefusal::NotStarted),
            })
        }

        fn campaign() -> Result<(), wit::CampaignRefusal> {
            ELECTION.with_borrow_mut(|slot| match slot {
                Some(election) => {
                    let result = election.campaign(&mut HostEnv);
                    perform_and_report(election);
                    result.map_err(refusal_to_wit)
                }
                None => Err(wit::CampaignRefusal::NotStarted),
            })
        }

        fn step_down() {
            with_election("step-down", |e, env| e.step_down(env));
        }

        fn stand_aside(hold_ms: u64) {
            with_election("stand-aside", |e, env| e.stand_aside(hold_ms, env));
        }

        fn status() -> wit::NodeStatus {
            ELECTION.with_borrow(|slot| match slot {
                Some(e) => status_to_wit(e.status()),
                None => wit::NodeStatus {
                    node_id: String::new(),
                    cluster_id: String::new(),
                    role: wit::Role::Follower,
                    term: 0,
                    leader: None,
                    voted_for: None,
                    members: Vec::new(),
                    epoch: 0,
                    alive_peers: Vec::new(),
                    quorum: 0,
                    ignored_messages: 0,
                    lease_expires_ns: None,
                    data_id: 0,
                    abstaining: false,
                    confirmed: false,
                },
            })
        }
    }

    fn role_to_wit(role: core::Role) -> wit::Role {
        match role {
            core::Role::Follower => wit::Role::Follower,
            core::Role::Candidate => wit::Role::Candidate,
            core::Role::Leader => wit::Role::Leader,
        }
    }

    fn level_to_wit(level: core::LogLevel) -> wit::LogLevel {
        match level {
            core::LogLevel::Trace => wit::LogLevel::Trace,
            core::LogLevel::Debug => wit::LogLevel::Debug,
            core::LogLevel::Info => wit::LogLevel::Info,
            core::LogLevel::Warn => wit::LogLevel::Warn,
            core::LogLevel::Error => wit::LogLevel::Error,
        }
    }

    fn event_to_wit(event: core::Event) -> wit::Event {
        match event {
            core::Event::BecameLeader(term) => wit::Event::BecameLeader(term),
            core::Event::BecameFollower { leader, term } => {
                wit::Event::BecameFollower(wit::FollowerChange { leader, term })
            }
            core::Event::TermChanged { old, new } => {
                wit::Event::TermChanged(wit::TermChange { old, new })
            }
            core::Event::PeerJoined(peer) => wit::Event::PeerJoined(peer),
            core::Event::PeerLeft(peer) => wit::Event::PeerLeft(peer),
        }
    }

    fn refusal_to_wit(refusal: core::Refusal) -> wit::CampaignRefusal {
        match refusal {
            core::Refusal::Leading { term } => wit::CampaignRefusal::Leading(term),
            core::Refusal::Observer => wit::CampaignRefusal::Observer,
            core::Refusal::Removed => wit::CampaignRefusal::Removed,
            core::Refusal::NotAdmitted => wit::CampaignRefusal::NotAdmitted,
            core::Refusal::Loyal { leader, for_ms } => {
                wit::CampaignRefusal::Loyal(wit::Loyalty { leader, for_ms })
            }
            core::Refusal::TermCeiling { term } => wit::CampaignRefusal::TermCeiling(term),
            core::Refusal::StandingAside { for_ms } => wit::CampaignRefusal::StandingAside(for_ms),
            core::Refusal::LostState => wit::CampaignRefusal::LostState,
            core::Refusal::Unconfirmed { have, need } => {
                wit::CampaignRefusal::Unconfirmed(wit::Confirmations { have, need })
            }
        }
    }

    fn change_refusal_to_wit(refusal: core::ChangeRefusal) -> wit::ChangeRefusal {
        use core::ChangeRefusal as C;
        match refusal {
            C::NotLeader { leader, .. } => wit::ChangeRefusal::NotLeader(leader),
            C::UnknownNode { node } => wit::ChangeRefusal::UnknownNode(node),
            C::AlreadyLeads { .. } => wit::ChangeRefusal::AlreadyLeads,
            C::NotHeardLately { node } => wit::ChangeRefusal::NotHeardLately(node),
            C::TransferUnderWay { to, for_ms } => {
                wit::ChangeRefusal::TransferUnderWay(wit::TransferUnderWay { to, for_ms })
            }
            C::LeaderMustTransfer { .. } => wit::ChangeRefusal::LeaderMustTransfer,
            C::ChangePending { .. } => wit::ChangeRefusal::ChangePending,
        }
    }

    fn state_to_wit(state: core::PersistedState) -> wit::PersistedState {
        wit::PersistedState {
            term: state.term,
            voted_for: state.voted_for,
            members: state.members,
            epoch: state.epoch,
            epoch_term: state.epoch_term,
            removed: state.removed,
            data_id: state.data_id,
            known_ids: state.known_ids,
            confirmed_by: state.confirmed_by,
            abstain: state.abstain,
        }
    }

    fn status_to_wit(s: core::Status) -> wit::NodeStatus {
        wit::NodeStatus {
            node_id: s.node_id,
            cluster_id: s.cluster_id,
            role: role_to_wit(s.role),
            term: s.term,
            leader: s.leader,
            voted_for: s.voted_for,
            members: s.members,
            epoch: s.epoch,
            alive_peers: s.alive_peers,
            quorum: s.quorum,
            ignored_messages: s.ignored_messages,
            lease_expires_ns: s.lease_expires_ns,
            data_id: s.data_id,
            abstaining: s.abstaining,
            confirmed: s.confirmed,
        }
    }
}
