//! Tenure's native host: runs the election protocol component with
//! wasmtime, and simulates whole clusters of it deterministically.
//!
//! # Layout
//!
//! - [`bindings`]: the generated WIT bindings, one `bindgen!` per world.
//! - [`protocol`]: compiling the election component
//!   ([`ElectionComponent`]) and calling one node's instance
//!   ([`ProtocolInstance`]); the host imports live in `protocol/imports.rs`.
//! - [`sim`]: the deterministic simulator: virtual time, a seeded faulty
//!   network, crashes and restarts, invariant checks, and the randomized
//!   chaos scenario.
//! - [`component_path`]: where the built election component is found.

pub mod bindings;
pub mod component_path;
pub mod protocol;
pub mod sim;

pub use bindings::types;
pub use protocol::{Effect, ElectionComponent, Environment, InvalidOptions, ProtocolInstance};
