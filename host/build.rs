//! Embeds the election component in the `tenure` binary, so `tenure run`
//! needs no separate `.wasm` file.
//!
//! `scripts/build-guests.sh` builds the component before the host, and this
//! script embeds that build. Without it (`cargo build --release`, `cargo
//! install --path host` on a fresh clone) the script builds the component
//! itself, into a target directory of its own under `OUT_DIR`; if that is
//! impossible (the `wasm32-wasip2` target is not installed, say) the build
//! fails with the one command that fixes it — a `tenure` that cannot run a
//! node is never produced. `TENURE_NO_BUILTIN_ELECTION=1` builds without
//! one on purpose (every node must then name `[protocol] component`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tenure_builtin_election)");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    println!("cargo::rerun-if-env-changed=TENURE_NO_BUILTIN_ELECTION");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"));
    let built = target.join("wasm32-wasip2/release/tenure_election.wasm");
    println!("cargo::rerun-if-changed={}", built.display());
    if std::env::var_os("TENURE_NO_BUILTIN_ELECTION").is_some() {
        println!("cargo::warning=built without an election component (TENURE_NO_BUILTIN_ELECTION)");
        return;
    }
    let wasm = if built.is_file() {
        built
    } else {
        match build_guest(&manifest) {
            Ok(wasm) => wasm,
            Err(why) => {
                eprintln!(
                    "error: the election component is not built and this build script could \
                     not build it ({why}).\n\
                     Run `scripts/build-guests.sh` (it installs the wasm32-wasip2 target if \
                     missing), or `rustup target add wasm32-wasip2`, then build again."
                );
                std::process::exit(1);
            }
        }
    };
    println!("cargo::rustc-cfg=tenure_builtin_election");
    println!(
        "cargo::rustc-env=TENURE_BUILTIN_ELECTION={}",
        wasm.display()
    );
}

/// Builds `guest/election` for wasm32-wasip2 in release, in a target
/// directory under `OUT_DIR` (never the outer build's, whose lock it
/// holds); returns the component's path.
fn build_guest(manifest: &Path) -> Result<PathBuf, String> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let target_dir = out.join("guest-target");
    let guest = manifest.join("../guest/election");
    println!("cargo::rerun-if-changed={}", guest.display());
    println!(
        "cargo::rerun-if-changed={}",
        manifest.join("../guest/election-core").display()
    );
    println!(
        "cargo::rerun-if-changed={}",
        manifest.join("../wit").display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "tenure-election",
        ])
        .arg("--manifest-path")
        .arg(manifest.join("../Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The host's flags are not the guest's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo build -p tenure-election --target wasm32-wasip2` {status}"
        ));
    }
    let wasm = target_dir.join("wasm32-wasip2/release/tenure_election.wasm");
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(format!("{} is missing after the build", wasm.display()))
    }
}
