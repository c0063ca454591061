#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing
# (Chromium and playwright-core too, see scripts/install-browser.sh), builds
# the guest components, checks formatting, then runs every test (native unit
# tests of the protocol, the simulator's own tests, the component-level
# tests that run the compiled .wasm in the simulator, 200 chaos seeds
# included, the cluster page in a headless Chromium, and, as root, five
# nodes in network namespaces under a nemesis), then `cargo
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
# nftables (Debian's package) for the one-way partitions of tests/netns.rs,
# which runs only as root: it skips saying why otherwise, and leaves the
# one-way partitions out, saying so, when nft is missing or refused.
if [ "$(id -u)" = 0 ] && ! command -v nft >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "Installing nftables for tests/netns.rs..."
    apt-get install -y nftables >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y nftables >/dev/null 2>&1; } \
        || echo "Could not install nftables: tests/netns.rs will leave one-way partitions out."
fi
cargo fmt --all -- --check
cargo test --locked "$@"
# Lints last, on what the tests just built (about a minute on 2 cores).
if ! cargo clippy --version >/dev/null 2>&1; then
    echo "Installing clippy..."
    rustup component add clippy
fi
cargo clippy --locked --all-targets -- -D warnings
