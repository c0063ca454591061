//! The election component built into the `tenure` binary (see `build.rs`).

/// The election component's bytes, if the binary was built after the
/// component (`scripts/build-guests.sh` then `cargo build`).
#[cfg(tenure_builtin_election)]
pub const ELECTION: Option<&[u8]> = Some(include_bytes!(env!("TENURE_BUILTIN_ELECTION")));

/// The election component's bytes, if the binary was built after the
/// component (`scripts/build-guests.sh` then `cargo build`).
#[cfg(not(tenure_builtin_election))]
pub const ELECTION: Option<&[u8]> = None;
