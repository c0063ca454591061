#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing
# (Chromium and playwright-core too, see scripts/install-browser.sh), builds
# the guest components, checks formatting, then runs every test (native unit
# tests of the protocol, the simulator's own tests, the component-level
# tests that run the compiled .wasm in the simulator, 200 chaos seeds
# included, and the cluster page in a headless Chromium), then `cargo
# clippy -- -D warnings`. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
scripts/build-polyglot.sh
# Chromium and playwright-core for tests/browser.rs; once they are in
# place a missing piece fails that test instead of skipping it.
if scripts/install-browser.sh; then
    export TENURE_REQUIRE_BROWSER=1
fi
cargo fmt --all -- --check
cargo test --locked "$@"
# Lints last, on what the tests just built (about a minute on 2 cores).
if ! cargo clippy --version >/dev/null 2>&1; then
    echo "Installing clippy..."
    rustup component add clippy
fi
cargo clippy --locked --all-targets -- -D warnings
