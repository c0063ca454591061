//! Every call into a protocol instance runs here, within its limits.

use std::cell::Cell;
use std::sync::Once;

use wasmtime::Store;

use super::{ProtocolInstance, ProtocolState};
use crate::bindings::protocol::exports::tenure::election::election::Guest;

thread_local! {
    /// Whether this thread is inside a guarded protocol call.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per process, a panic hook that keeps a panic inside a
/// guarded protocol call to one line (no backtrace: symbolizing one would
/// hold the node's task for up to seconds) and passes every other panic
/// to the hook that was there before.
fn quiet_panics_in_calls() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(Cell::get) {
                tracing::warn!(panic = %info, "a protocol call made the host panic; the call fails");
            } else {
                previous(info);
            }
        }));
    });
}

impl ProtocolInstance {
    /// Makes one call into the component within the protocol's limits:
    /// [`CALL_FUEL`](super::CALL_FUEL) on a metering engine ([`protocol_engine`](super::protocol_engine)), the
    /// store's [`MEMORY_CAP`](super::MEMORY_CAP), and a host panic caught rather than
    /// unwinding through the node. WASI's synchronous I/O (a build writing
    /// to stderr, say) cannot run on the node's async runtime, and panics
    /// there; a protocol gets no I/O anyway, so that call is its failure,
    /// not the node's. Any failure is reported as a trap: the instance is
    /// not used again.
    pub(super) fn guarded<T>(
        &mut self,
        call: &'static str,
        run: impl FnOnce(&Guest, &mut Store<ProtocolState>) -> wasmtime::Result<T>,
    ) -> anyhow::Result<T> {
        quiet_panics_in_calls();
        // Fails only on an engine that does not meter fuel (the
        // simulator's, whose runs are bounded by virtual time anyway).
        let _ = self.store.set_fuel(self.call_fuel);
        let election = self.bindings.tenure_election_election();
        let store = &mut self.store;
        IN_CALL.with(|c| c.set(true));
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(election, store)));
        IN_CALL.with(|c| c.set(false));
        match outcome {
            Ok(result) => result.map_err(|trap| {
                let out_of_fuel = trap
                    .downcast_ref::<wasmtime::Trap>()
                    .is_some_and(|t| *t == wasmtime::Trap::OutOfFuel);
                let error = anyhow::Error::from(trap);
                if out_of_fuel {
                    error.context(format!(
                        "the protocol's `{call}` ran past its budget of {} instructions",
                        self.call_fuel
                    ))
                } else {
                    error.context(format!("the protocol trapped in `{call}`"))
                }
            }),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(anyhow::anyhow!(
                    "the protocol's `{call}` made the host panic ({message}); a protocol gets no \
                     I/O — did it write to stderr or panic?"
                ))
            }
        }
    }
}
