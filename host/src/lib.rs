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
//! - [`component_path`]: where the built election component is found;
//!   [`builtin`]: the one embedded in the binary.
//! - [`config`]: the node's TOML configuration.
//! - [`node`]: a running node: the protocol on real time, sockets and disk.
//! - [`admin`]: the admin HTTP endpoint; [`admin_client`]: a client for it.
//! - [`artifact_cache`]: compiled components on disk, for fast restarts
//!   and swaps.
//! - [`plugin`]: behaviour plugins: deadlines, memory caps, their thread.
//! - [`logging`]: a node's log lines, written by a thread of their own so
//!   a stalled stderr cannot freeze it.
//! - [`testing`]: a harness for plugin authors: their `.wasm` on a
//!   simulated cluster, with crashes, partitions and virtual time;
//!   [`scenario`]: the same as TOML scenario files, for `tenure test`.

pub mod admin;
pub mod admin_client;
pub mod artifact_cache;
pub mod background;
pub mod bindings;
pub mod builtin;
pub mod component_path;
pub mod config;
pub mod embed;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod node_core;
pub mod plugin;
pub mod protocol;
pub mod scenario;
pub mod sim;
pub mod supervise;
pub mod testing;

pub use bindings::types;
pub use protocol::{Effect, ElectionComponent, Environment, InvalidOptions, ProtocolInstance};
