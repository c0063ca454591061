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
/// import. It shares the `types` interface with [`protocol`], so an event
/// from the protocol is passed to a plugin without conversion.
pub mod plugin {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit",
        with: {
            "tenure:election/types": super::protocol::tenure::election::types,
        },
    });
}

/// The shared vocabulary (`wit/types.wit`): node ids, roles, events, status.
pub use protocol::tenure::election::types;
