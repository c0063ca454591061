#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, builds
# the guest components, checks formatting, then runs every test (native unit
# tests of the protocol, the simulator's own tests, and the component-level
# tests that run the compiled .wasm in the simulator, 200 chaos seeds
# included), then `cargo clippy -- -D warnings`. Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
scripts/build-polyglot.sh
cargo fmt --all -- --check
cargo test --locked "$@"
# Lints last, on what the tests just built (about a minute on 2 cores).
if ! cargo clippy --version >/dev/null 2>&1; then
    echo "Installing clippy..."
    rustup component add clippy
fi
cargo clippy --locked --all-targets -- -D warnings
