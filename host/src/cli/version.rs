//! `tenure --version`: the binary's version, and the built-in election
//! component's version and sha256 — what a node runs unless its config
//! names another build.

use sha2::{Digest as _, Sha256};

/// The lines `tenure --version` prints.
pub fn long_version() -> String {
    let mut out = format!("tenure {}\n", env!("CARGO_PKG_VERSION"));
    match tenure_host::builtin::ELECTION {
        None => out.push_str(
            "protocol: none built in (this binary was built before the election component; \
             a node needs [protocol] component)\n",
        ),
        Some(bytes) => {
            let sha256 = hex::encode(Sha256::digest(bytes));
            let engine = wasmtime::Engine::default();
            let version = tenure_host::ElectionComponent::from_bytes(&engine, bytes)
                .and_then(|c| c.build_version())
                .unwrap_or_else(|e| format!("unknown ({e:#})"));
            out.push_str(&format!(
                "protocol: {version} (built in, sha256 {sha256}, {} bytes)\n",
                bytes.len()
            ));
        }
    }
    out
}
