#!/usr/bin/env bash
# Watch a cluster elect a leader, lose it, split and heal: five nodes running
# the compiled election component in the deterministic simulator. Installs
# what is missing and builds the component first. Arguments go to
# `tenure sim demo` (try --nodes 7, --seed 3, --verbose).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
cargo run --locked -q -p tenure-host -- sim demo "$@"
