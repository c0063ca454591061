//! Tenure's election protocol: Raft-style leader election as a pure state
//! machine, compiled to a `wasm32-wasip2` component that implements the
//! `protocol` world of `wit/protocol.wit`.
//!
//! # Layout
//!
//! - [`election`]: the state machine ([`Election`]): roles, terms, votes,
//!   heartbeats, discovery. Start here.
//! - [`failover`]: replacing a leader the host saw die, in turns.
//! - [`handover`]: the whole state, versioned, for swapping the protocol.
//! - [`hints`]: how a node enters the voting membership, and whom a
//!   leader contacts because a follower mentioned it.
//! - [`identity`]: data ids: why a node that lost its disk never votes
//!   twice in one term, and what that assumes. Read it with `election`.
//! - [`quorum`]: majority arithmetic, tested exhaustively.
//! - [`refusal`]: why a node refuses to campaign.
//! - [`tombstones`]: removals other nodes report, taken or undone.
//! - [`terms`]: term arithmetic that cannot wrap, and how far one message
//!   may move a node's term.
//! - [`liveness`]: which peers are alive, for `peer-joined` / `peer-left`.
//! - [`lists`]: why heartbeats carry the membership only when it changed.
//! - [`transfer`]: leadership transfer: whom a loyal voter may elect,
//!   and how a transfer that failed gives the lease back.
//! - [`wire`]: the messages and their versioned encoding.
//! - [`options`]: options, defaults and validation.
//! - [`types`]: the vocabulary shared with the WIT contract.
//! - [`versioned`]: values that count their changes, so work derived
//!   from them is skipped while they did not change.
//!
//! The `tenure-election` crate beside this one exports [`Election`] through
//! the WIT world as a component; keeping the core a separate `no_std` crate
//! means it cannot reach `std::time`, `std::net` or OS entropy even by
//! accident.
//!
//! The state machine reads no clock and draws no randomness of its own:
//! both come through [`Environment`], so native tests and the deterministic
//! simulator control them.

#![no_std]
#![forbid(unsafe_code)]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod election;
pub mod failover;
pub mod handover;
pub mod hints;
pub mod identity;
pub mod lease;
pub mod lists;
pub mod liveness;
pub mod membership;
pub mod options;
pub mod quorum;
pub mod refusal;
pub mod terms;
pub mod tombstones;
pub mod transfer;
pub mod types;
pub mod versioned;
pub mod wire;

#[cfg(test)]
mod tests;

pub use election::Election;
pub use options::{Options, OptionsError, Timings};
pub use refusal::{ChangeRefusal, Refusal};
pub use types::{Action, Environment, Event, LogLevel, NodeId, PersistedState, Role, Status, Term};
