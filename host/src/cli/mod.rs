//! The `tenure` subcommands, one module per command group.

pub mod actions;
pub mod certs;
pub mod config_check;
pub mod demo;
pub mod new_plugin;
pub mod run;
pub mod sim;
pub mod status;
pub mod version;
pub mod watch;
