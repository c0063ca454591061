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

cargo build --locked --release --target wasm32-wasip2 -p tenure-election
echo "Built target/wasm32-wasip2/release/tenure_election.wasm" \
    "($(wc -c < target/wasm32-wasip2/release/tenure_election.wasm) bytes)"
