#!/usr/bin/env bash
# bench/all.sh: every scenario of issue 9 in one run, one after the other on
# this machine (`./dev bench`). Each script starts and stops its own
# processes; results land in bench/results/ and docs/benchmarks.md quotes
# them.
#
#   run      scenarios 1-3: saturation, latency at fixed rates, CPU per
#            request; egressd beside nginx, haproxy and the gRPC floor
#            (bench/run.sh -> results/latest.{json,md}, plots)
#   tls_h2   scenario 4: TLS upstream pooled vs never reused vs nginx, and
#            HTTP/2 (bench/tls_h2.sh -> results/tls_h2.md)
#   inflight scenarios 5 and 7: 10,000 Fetches in flight, RSS at idle and
#            per 1,000 idle connections (bench/inflight.sh ->
#            results/inflight.md)
#   pool     scenario 6: the pool microbenchmark and memory per idle
#            connection (//bench:pool_bench, //bench:idle_memory ->
#            results/pool_latest.txt)
#
# Environment: BENCH_ONLY (space-separated names above, default all); each
# script's own variables (PHASE_SECONDS, CALLS, ...) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_ONLY=${BENCH_ONLY:-"run tls_h2 inflight pool"}
log() { echo "bench/all: $*" >&2; }
wants() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }
failed=()
step() {  # step NAME command...: runs it; a failure is reported, not fatal
  local name=$1; shift
  log "=== $name ($(date -u +%H:%M:%S) UTC) ==="
  "$@" || { failed+=("$name"); log "$name failed"; }
}
wants run && step run bench/run.sh "$@"
wants tls_h2 && step tls_h2 bench/tls_h2.sh
wants inflight && step inflight bench/inflight.sh
if wants pool; then
  pool() {
    bazel build -c opt //bench:pool_bench //bench:idle_memory >&2
    local bin
    bin=$(bazel info -c opt bazel-bin 2>/dev/null)
    {
      echo "# pool microbenchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
      "$bin/bench/pool_bench" \
        --benchmark_filter='BM_AcquireRelease/(random|round_robin)_(short|long)_hosts/idle:(10|100000)$' \
        --benchmark_repetitions=5 --benchmark_report_aggregates_only=true 2>&1
      echo
      echo "# memory per idle connection"
      "$bin/bench/idle_memory" 2>&1
    } > bench/results/pool_latest.txt
    tail -n 20 bench/results/pool_latest.txt
  }
  step pool pool
fi
if [ "${#failed[@]}" -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
log "done: $BENCH_ONLY"
