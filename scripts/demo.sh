#!/usr/bin/env bash
# The main job: a 3-node Tenure cluster on 127.0.0.1 (real processes, real
# sockets), each node running the scheduler plugin, with a live view of who
# leads. Press Enter to kill the leader and watch the failover; Ctrl-C stops
# everything. Installs what is missing and builds the components first.
# Arguments go to `tenure demo` (e.g. --base-port 7301, --seconds 30,
# --kill-leader-after 5). `tenure sim demo` shows the same story in the
# deterministic simulator.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
cargo build --locked -q -p tenure-host
exec target/debug/tenure demo "$@"
