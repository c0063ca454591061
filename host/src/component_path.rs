//! Where the built election component is found, and loading it with an
//! error that says how to build it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::Engine;

use crate::protocol::ElectionComponent;

/// Environment variable that overrides where the election component is.
pub const ELECTION_WASM_ENV: &str = "TENURE_ELECTION_WASM";

/// The election component's path: `$TENURE_ELECTION_WASM` if set, else
/// where `scripts/build-guests.sh` puts it in this workspace
/// (`target/wasm32-wasip2/release/tenure_election.wasm`, honouring
/// `CARGO_TARGET_DIR`).
pub fn election_wasm() -> PathBuf {
    if let Some(path) = std::env::var_os(ELECTION_WASM_ENV) {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip2/release/tenure_election.wasm")
}

/// Compiles the election component from [`election_wasm`] (or `path`, if
/// given) with a fresh engine.
pub fn load_election(path: Option<PathBuf>) -> anyhow::Result<Arc<ElectionComponent>> {
    let path = path.unwrap_or_else(election_wasm);
    if !path.exists() {
        anyhow::bail!(
            "election component not found at {}: build it with `scripts/build-guests.sh` \
             (or point {ELECTION_WASM_ENV} at a built one)",
            path.display()
        );
    }
    let mut config = wasmtime::Config::new();
    crate::protocol::profile_if_asked(&mut config);
    let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
    let component = ElectionComponent::from_file(&engine, &path)
        .with_context(|| format!("loading {}", path.display()))?;
    Ok(Arc::new(component))
}
