#!/usr/bin/env bash
# The side-by-side failover table in one command: Tenure and etcd, kill -9
# and SIGSTOP, 3, 5 and 7 nodes, trials of the two systems interleaved
# (`tenure-bench failover --system both`), each row with the load average
# when it started. Prints a markdown table for BENCHMARKS.md; the full
# output of every run goes to stderr.
#
#   bench/failover-table.sh [TRIALS]        # default 100 (about 2 s a trial)
#   FAULTS=kill NODES="3 5" bench/failover-table.sh 30
#   KEEP_ALIVE=on bench/failover-table.sh    # reuse one connection per member
#
# Release builds; installs etcd from Debian if it is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-${TRIALS:-100}}"
keep_alive="${KEEP_ALIVE:-off}"
target="${CARGO_TARGET_DIR:-target}"

bench/install-etcd.sh
scripts/build-guests.sh >/dev/null
cargo build --locked --release -p tenure-host -p tenure-bench >&2
bench="$target/release/tenure-bench"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(etcd --version | head -1), $trials trials per row, etcd pre-vote on, polling every 1 ms (keep-alive $keep_alive)"
echo
echo "| fault | nodes | system | median | p90 | p99 | max | second rounds / failed | load | from the logs: median / p99 |"
echo "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|"
for fault in ${FAULTS:-kill stop}; do
    for nodes in ${NODES:-3 5 7}; do
        load="$(cut -d' ' -f1 /proc/loadavg)"
        if ! "$bench" failover --system both --fault "$fault" --nodes "$nodes" \
            --trials "$trials" --etcd-pre-vote on --poll-ms 1 --keep-alive "$keep_alive" >"$log" 2>&1; then
            echo "| $fault | $nodes | (run failed: see stderr) | | | | | | $load |"
        fi
        cat "$log" >&2
        # Each system's block: a label line ending in ':', then
        # "signal to agreed new leader, N trials: min … median … p90 …";
        # Tenure's also has the exact times from the nodes' event logs
        # ("every survivor knew it: min … median …"), unrounded by the poll.
        awk -v fault="$fault" -v nodes="$nodes" -v load="$load" '
            /^[^ ].*:$/ { sys = $1; exact = "—" }
            /every survivor knew it/ {
                for (i = 1; i <= NF; i++) {
                    if ($i == "median") em = $(i + 1)
                    if ($i == "p99") e99 = $(i + 1)
                }
                exact = em " / " e99
            }
            /signal to agreed new leader/ {
                for (i = 1; i <= NF; i++) {
                    if ($i == "median") median = $(i + 1)
                    if ($i == "p90") p90 = $(i + 1)
                    if ($i == "p99") p99 = $(i + 1)
                    if ($i == "max") max = $(i + 1)
                }
            }
            /more than one election round/ {
                split($0, parts, ": ")
                rounds = parts[2]; sub(/;.*/, "", rounds)
                failed = parts[3]
                printf "| %s | %s | %s | %s ms | %s | %s | %s | %s / %s | %s | %s |\n",
                    fault, nodes, sys, median, p90, p99, max, rounds, failed, load, exact
            }' "$log"
    done
done
