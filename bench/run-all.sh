#!/usr/bin/env bash
# Runs every benchmark behind BENCHMARKS.md and writes the figures to
# bench-results.txt (or the file named as the first argument). Takes about
# half an hour on 2 cores. Release builds throughout; installs etcd from
# Debian if it is missing (as root, with apt-get).
#
# Set TRIALS to change the number of failover trials (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-results.txt}"
trials="${TRIALS:-30}"
target="${CARGO_TARGET_DIR:-target}"

bench/install-etcd.sh
scripts/build-guests.sh >/dev/null
cargo build --locked --release -p tenure-host -p tenure-bench
bench="$target/release/tenure-bench"
plugin="$target/wasm32-wasip2/release/tenure_plugin_scheduler.wasm"

run() {
    echo "\$ tenure-bench $*" | tee -a "$out"
    "$bench" "$@" 2>&1 | tee -a "$out"
    echo | tee -a "$out"
}

{
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
    echo "# $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(rustc --version)"
    echo "# $(etcd --version | head -1)"
    echo
} | tee "$out"

# 1. Failover of Tenure alone: 3, 5, 7 nodes; kill with fast failover on and
#    off, and freeze; default and fast timings.
for timings in 150,300,50 50,100,15; do
    for nodes in 3 5 7; do
        run failover --trials "$trials" --nodes "$nodes" --timings "$timings" --fault kill
        run failover --trials "$trials" --nodes "$nodes" --timings "$timings" --fault kill --fast-failover off
        run failover --trials "$trials" --nodes "$nodes" --timings "$timings" --fault stop
    done
done

# 2. Tenure against etcd, 3 members, trials interleaved; etcd pre-vote on
#    and off; Tenure with and without fast failover.
for timings in 150,300,50 50,100,15; do
    for pv in on off; do
        run failover --system both --trials "$trials" --timings "$timings" --etcd-pre-vote "$pv"
        run failover --system both --trials "$trials" --timings "$timings" --etcd-pre-vote "$pv" --fast-failover off
    done
done

# 2b. The side-by-side table: Tenure and etcd, kill and stop, 3/5/7 nodes.
bench/failover-table.sh "$trials" 2>/dev/null | tee -a "$out"
echo | tee -a "$out"

# 3. and 4. Idle cost (30 s) and start-up.
run idle --system both --seconds 30
run idle --seconds 30 --plugin "$plugin"
run startup --runs 5
run startup --runs 5 --plugin "$plugin"

# 5. Micro-benchmarks (criterion).
{
    cargo bench --locked -p tenure-election-core --bench dispatch -- --warm-up-time 1 --measurement-time 5
    cargo bench --locked -p tenure-host --bench dispatch --bench plugin --bench sim -- --warm-up-time 1 --measurement-time 5
} 2>&1 | grep -E '^[a-z].*|time:|thrpt:' | grep -v -E '^(Benchmarking|Found|Gnuplot|WARNING|Compiling|Finished|Running)' | tee -a "$out"
echo "figures in $out"
