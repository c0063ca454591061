#!/usr/bin/env bash
# Builds every guest component for wasm32-wasip2, installing the target first
# if it is missing. Output: target/wasm32-wasip2/release/*.wasm
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "Installing the wasm32-wasip2 target..."
    rustup target add wasm32-wasip2
fi

# The election component and the behaviour plugins, in one cargo invocation.
out="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release"

# A second build of the protocol with another version string, for the
# protocol hot-swap tests and the rolling-upgrade recipe.
TENURE_PROTOCOL_VERSION=0.1.0-next cargo build --locked --release \
    --target wasm32-wasip2 -p tenure-election
cp "$out/tenure_election.wasm" "$out/tenure_election_next.wasm"
# ... and of the scheduler plugin, whose runs say "(v2)": swap it into the
# demo to watch a new behaviour take over without an election.
TENURE_PLUGIN_LABEL=v2 cargo build --locked --release \
    --target wasm32-wasip2 -p tenure-plugin-scheduler
cp "$out/tenure_plugin_scheduler.wasm" "$out/tenure_plugin_scheduler_v2.wasm"

# Hostile protocol builds, one per misbehaviour, for the upload tests.
for mode in loop allocate panic; do
    TENURE_HOSTILE=$mode cargo build --locked --release \
        --target wasm32-wasip2 -p tenure-hostile-protocol
    cp "$out/tenure_hostile_protocol.wasm" "$out/tenure_hostile_$mode.wasm"
done

cargo build --locked --release --target wasm32-wasip2 \
    -p tenure-election \
    -p tenure-plugin-logger \
    -p tenure-plugin-scheduler \
    -p tenure-plugin-lock \
    -p tenure-plugin-misbehave \
    -p tenure-plugin-webhook
for name in tenure_election tenure_election_next tenure_plugin_logger tenure_plugin_scheduler \
    tenure_plugin_scheduler_v2 \
    tenure_plugin_lock tenure_plugin_misbehave tenure_plugin_webhook \
    tenure_hostile_loop tenure_hostile_allocate tenure_hostile_panic; do
    echo "Built $out/$name.wasm ($(wc -c < "$out/$name.wasm") bytes)"
done
