//! Write Tenure behaviour plugins in Rust.
//!
//! A behaviour plugin is the application's leader logic: what to do when
//! this node is elected, when it follows, when peers come and go. It is a
//! WebAssembly component of the `plugin` world (`wit/behaviour.wit`) that
//! the `tenure` node loads beside the election protocol and can hot-swap
//! while the node keeps its place in the cluster. This crate hides the
//! component plumbing: implement [`Behaviour`] (every callback has a
//! default, so override only what you need), talk to the node through
//! [`node`], and name your type once with [`export!`].
//!
//! A leader-only behaviour, complete:
//!
//! ```
//! use std::time::Duration;
//! use tenure_sdk::{Behaviour, Error, Term, WakeupId, info, node};
//!
//! /// Says hello once a second, on the leader only.
//! #[derive(Default)]
//! struct Hello {
//!     tick: Option<WakeupId>,
//! }
//!
//! impl Behaviour for Hello {
//!     fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
//!         info!("{} leads term {term}", node::this_node());
//!         self.tick = Some(node::schedule(Duration::from_secs(1), "hello"));
//!         Ok(())
//!     }
//!
//!     fn on_become_follower(&mut self, _leader: Option<&str>, _term: Term) {
//!         if let Some(id) = self.tick.take() {
//!             node::cancel(id);
//!         }
//!     }
//!
//!     fn on_scheduled(&mut self, id: WakeupId, _tag: &str) {
//!         if self.tick == Some(id) && node::is_leader() {
//!             info!("hello from the leader of term {}", node::term());
//!             self.tick = Some(node::schedule(Duration::from_secs(1), "hello"));
//!         }
//!     }
//! }
//!
//! tenure_sdk::export!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (the crate
//! must be a `cdylib`); `tenure new-plugin NAME` writes a project that
//! does exactly this. The guide, `docs/writing-a-behaviour.md` in the
//! Tenure repository, walks through the contract, fencing, hot swap and
//! testing in the simulator.
//!
//! # Layout
//!
//! - [`Behaviour`]: the callbacks, with their defaults and what happens
//!   when one fails.
//! - [`node`]: the leader API (is-leader, term, lease and fencing token,
//!   peers, send, broadcast, schedule, log, transfer-leadership).
//! - [`http`]: outgoing HTTP through the node, allowlisted and fenced;
//! - [`Config`]: the plugin's config with typed getters;
//!   [`Error`]: what a callback refuses with.
//! - [`export!`]: makes the component; the [`info!`] family: logging.
//! - `fake` (native builds only): the pretend node the [`node`] functions
//!   use under `cargo test`, for unit tests of a behaviour's logic.

// Nothing here needs unsafe; only the bindings wit-bindgen generates do.
#![deny(unsafe_code)]

mod behaviour;
mod config;
mod error;
#[doc(hidden)]
pub mod export;
pub mod http;
mod log;
pub mod node;

#[cfg(not(target_arch = "wasm32"))]
pub mod fake;
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
mod wasm_http;

pub use behaviour::Behaviour;
pub use config::{Config, ConfigError};
pub use error::Error;
pub use node::{Level, Role, Term, WakeupId};

/// What [`export!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{Exported, assert_behaviour};
}

/// The generated WIT bindings (wasm builds only); not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(unsafe_code)] // the generated canonical-ABI glue
pub mod __bindings {
    wit_bindgen::generate!({
        world: "plugin",
        // Relative to this crate's own manifest, wherever the plugin that
        // depends on it lives.
        path: "../wit",
        // wasi:http and what it uses, for `crate::http`.
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "tenure_sdk::__bindings",
    });
}
