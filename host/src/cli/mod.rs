//! The `tenure` subcommands, one module per command group.

pub mod demo;
pub mod plugin;
pub mod run;
pub mod sim;
pub mod status;
