//! The generated bindings: one `bindgen!` per WIT world, and nothing else.
//!
//! Everything else in the host uses the types generated here, so the WIT
//! files in `wit/` stay the single source of truth for the contracts.

/// The `protocol` world: the election component's imports and exports.
pub mod protocol {
    wasmtime::component::bindgen!({
        world: "protocol",
        path: "../wit",
        additional_derives: [PartialEq, Eq],
    });
}

/// The `plugin` world: behaviour plugins' callbacks and the leader API they
/// import (and `wasi:http`, which wasmtime-wasi-http provides). It shares the `types` interface with [`protocol`], so an event
/// from the protocol is passed to a plugin without conversion.
pub mod plugin {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit",
        // Callbacks are called asynchronously, so that a deadline also
        // covers time a plugin spends blocked in a host call (waiting on
        // an HTTP response, say); the leader API answers at once and stays
        // synchronous.
        exports: { default: async },
        with: {
            "tenure:election/types": super::protocol::tenure::election::types,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// The shared vocabulary (`wit/types.wit`): node ids, roles, events, status.
pub use protocol::tenure::election::types;
