//! The `tenure` subcommands, one module per command group.

pub mod sim;
