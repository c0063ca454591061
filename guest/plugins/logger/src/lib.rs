//! A Tenure behaviour plugin that logs every callback and counts them.
//!
//! Each callback writes one info line through the node's logger, named
//! after the WIT callback and followed by its arguments
//! (`on-become-leader term=3`), and bumps that callback's counter.
//! `inspect` shows the counters, `snapshot`/`restore` carry them across a
//! hot swap, and `on-call` echoes the request. Any config is accepted.
//!
//! Build it with
//!
//! ```text
//! cargo build -p tenure-plugin-logger --target wasm32-wasip2 --release
//! ```
//!
//! which writes `target/wasm32-wasip2/release/tenure_plugin_logger.wasm`.
//!
//! The logic (counters, their snapshot format, how arguments are printed)
//! lives in plain modules that also build for native unit tests; only the
//! `component` module, which binds them to the WIT world, is wasm-only.

#[cfg(any(target_arch = "wasm32", test))]
mod counts;
#[cfg(any(target_arch = "wasm32", test))]
mod describe;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;

    use crate::counts::{Callback, Counts};
    use crate::describe;

    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit",
    });

    use exports::tenure::election::behaviour::Guest;
    use tenure::election::leader_api;
    use tenure::election::types::LogLevel;

    thread_local! {
        /// How often each callback has been called, across hot swaps.
        static COUNTS: RefCell<Counts> = RefCell::new(Counts::default());
    }

    /// Counts `callback` and logs `line` (which starts with its name).
    fn note(callback: Callback, line: &str) {
        COUNTS.with_borrow_mut(|counts| counts.record(callback));
        leader_api::log(LogLevel::Info, line);
    }

    struct Component;

    impl Guest for Component {
        fn init(config: Vec<(String, String)>) -> Result<(), String> {
            note(
                Callback::Init,
                &format!("init config={}", describe::config(&config)),
            );
            Ok(())
        }

        fn on_become_leader(term: u64) -> Result<(), String> {
            note(
                Callback::OnBecomeLeader,
                &format!("on-become-leader term={term}"),
            );
            Ok(())
        }

        fn on_become_follower(leader: Option<String>, term: u64) {
            note(
                Callback::OnBecomeFollower,
                &format!(
                    "on-become-follower leader={} term={term}",
                    describe::leader(leader.as_deref())
                ),
            );
        }

        fn on_peer_joined(peer: String) {
            note(
                Callback::OnPeerJoined,
                &format!("on-peer-joined peer={}", describe::text(&peer)),
            );
        }

        fn on_peer_left(peer: String) {
            note(
                Callback::OnPeerLeft,
                &format!("on-peer-left peer={}", describe::text(&peer)),
            );
        }

        fn on_term_changed(old: u64, new: u64) {
            note(
                Callback::OnTermChanged,
                &format!("on-term-changed old={old} new={new}"),
            );
        }

        fn on_message(sender: String, payload: Vec<u8>) {
            note(
                Callback::OnMessage,
                &format!(
                    "on-message sender={} payload={}",
                    describe::text(&sender),
                    describe::bytes(&payload)
                ),
            );
        }

        fn on_call(request: Vec<u8>) -> Result<Vec<u8>, String> {
            note(
                Callback::OnCall,
                &format!("on-call request={}", describe::bytes(&request)),
            );
            Ok(request)
        }

        fn on_scheduled(id: u64, tag: String) {
            note(
                Callback::OnScheduled,
                &format!("on-scheduled id={id} tag={}", describe::text(&tag)),
            );
        }

        fn inspect() -> Vec<(String, String)> {
            note(Callback::Inspect, "inspect");
            COUNTS.with_borrow(Counts::pairs)
        }

        fn snapshot() -> Vec<u8> {
            note(Callback::Snapshot, "snapshot");
            COUNTS.with_borrow(Counts::encode)
        }

        fn restore(snapshot: Vec<u8>) -> Result<(), String> {
            note(
                Callback::Restore,
                &format!("restore snapshot={}", describe::bytes(&snapshot)),
            );
            let previous = Counts::decode(&snapshot).map_err(|reason| {
                leader_api::log(LogLevel::Warn, &format!("restore refused: {reason}"));
                reason
            })?;
            COUNTS.with_borrow_mut(|counts| counts.add(&previous));
            Ok(())
        }
    }

    export!(Component);
}
