//! A hostile protocol build, for the tests that upload one to a running
//! node (`tests/security.rs`): it fits the `protocol` world, and misbehaves
//! as soon as it is run — in `import-state` (a swap's first call) and in
//! `start`. How, is fixed when it is built, by `TENURE_HOSTILE`:
//!
//! - `loop`: spins forever;
//! - `allocate`: grows its memory without bound;
//! - `panic`: panics (which writes the message to stderr first).
//!
//! `scripts/build-guests.sh` builds one of each, as
//! `tenure_hostile_{loop,allocate,panic}.wasm`. Nothing here is a protocol.

#![deny(unsafe_code)]

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "protocol",
        path: "../../wit",
    });

    use super::component::Hostile;
    export!(Hostile with_types_in self);
}

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::bindings::exports::tenure::election::election::Guest;
    use crate::bindings::tenure::election::types as wit;

    /// The misbehaviour this build was made with.
    const MODE: &str = match option_env!("TENURE_HOSTILE") {
        Some(mode) => mode,
        None => "loop",
    };

    /// Does what [`MODE`] says, and never returns normally.
    fn misbehave() -> ! {
        match MODE {
            "allocate" => {
                // Reserve (memory.grow) rather than fill: the memory cap,
                // not the instruction budget, is what stops it.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = Vec::with_capacity(16 << 20);
                    chunk.push(1u8);
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "panic" => panic!("a hostile protocol build panics on purpose"),
            _ => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
        }
    }

    pub struct Hostile;

    impl Guest for Hostile {
        fn start(
            _options: wit::Options,
            _state: Option<wit::PersistedState>,
        ) -> Result<(), wit::OptionsError> {
            misbehave()
        }
        fn on_message(_sender: wit::NodeId, _payload: Vec<u8>) {}
        fn on_timer(_id: u64) {}
        fn join(_peer: wit::NodeId) {}
        fn step_down() {}
        fn stand_aside(_hold_ms: u64) {}
        fn peer_unreachable(_peer: wit::NodeId) {}
        fn transfer_leadership(_to: wit::NodeId) -> Result<(), wit::ChangeRefusal> {
            Ok(())
        }
        fn leave(_node: wit::NodeId) -> Result<(), wit::ChangeRefusal> {
            Ok(())
        }
        fn campaign() -> Result<(), wit::CampaignRefusal> {
            Ok(())
        }
        fn status() -> wit::NodeStatus {
            misbehave()
        }
        fn version() -> String {
            format!("hostile-{MODE}")
        }
        fn export_state() -> Vec<u8> {
            Vec::new()
        }
        fn import_state(_options: wit::Options, _state: Vec<u8>) -> Result<(), String> {
            misbehave()
        }
    }
}
