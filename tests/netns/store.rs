//! The fencing store the supervised commands write to
//! (`tests/kit/fencing_store.rs`), and their command. It listens on
//! the hub's control address, which no fault touches, so a deposed or
//! frozen leader's command can always reach it: the worst case for
//! fencing.

use std::net::TcpListener;

use anyhow::Context as _;

pub use super::fencing_store::{Write, Writes, mono_ns};
use super::net::{HUB_CONTROL_IP, STORE_PORT};

/// Starts the store on the hub's control address (the calling thread must
/// be in the hub namespace); its thread runs until the test process ends.
pub fn start() -> anyhow::Result<Writes> {
    let listener = TcpListener::bind((HUB_CONTROL_IP, STORE_PORT))
        .with_context(|| format!("the store binding {HUB_CONTROL_IP}:{STORE_PORT}"))?;
    Ok(super::fencing_store::serve(listener))
}

/// The command each node supervises: writes `W TOKEN NODE` to the store
/// about fifty times a second while its node leads.
pub fn writer_script() -> String {
    format!(
        "trap 'exit 0' TERM; while :; do exec 3<>/dev/tcp/{HUB_CONTROL_IP}/{STORE_PORT} || exit 1; \
         echo \"W $TENURE_FENCING_TOKEN $TENURE_NODE_ID\" >&3; read -r _ <&3; exec 3>&-; \
         sleep 0.02; done"
    )
}
