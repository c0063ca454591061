//! Embeds the election component in the `tenure` binary when it has been
//! built (`scripts/build-guests.sh` builds it before the host), so `tenure
//! run` needs no separate `.wasm` file.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tenure_builtin_election)");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"));
    let wasm = target.join("wasm32-wasip2/release/tenure_election.wasm");
    println!("cargo::rerun-if-changed={}", wasm.display());
    if wasm.is_file() {
        println!("cargo::rustc-cfg=tenure_builtin_election");
        println!(
            "cargo::rustc-env=TENURE_BUILTIN_ELECTION={}",
            wasm.display()
        );
    } else {
        println!(
            "cargo::warning=election component not built ({}); run scripts/build-guests.sh \
             first to embed it in tenure",
            wasm.display()
        );
    }
}
