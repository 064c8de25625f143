#!/usr/bin/env bash
# bench/run.sh: egressd beside nginx and haproxy, measured in one run on this
# machine. Called by `./dev bench`; see docs/benchmarks.md for what it
# measures and how to read the results.
#
# Starts, all on 127.0.0.1 with their PIDs tracked (the EXIT trap stops every
# process this script started, whatever way it ends):
#   origin   nginx, one worker, HTTP/1.1 keep-alive (and an h2c port for the
#            direct-to-origin runs), files /1k and /64k
#   egressd  -c opt, one event loop and one completion queue
#   nginx    pooled egress proxy: h2c front, upstream keepalive 256
#   haproxy  pooled egress proxy: h2c front, http-reuse always, one thread
#   noop_fetcher  the gRPC floor: a Fetcher on egressd's gRPC API shape, one
#            completion queue, that answers 1 KiB at once without HTTP
# then runs, each phase bounded by PHASE_SECONDS:
#   1. saturation: the same h2load command against origin, nginx, haproxy,
#      egressd and the gRPC floor (a pre-encoded gRPC Fetch body for these);
#   2. latency at fixed rates (LATENCY_RATES) with the loadgen's h2c driver
#      for every target (one client for all) and its gRPC driver for egressd;
#   3. CPU per request at CPU_RATE for egressd, nginx, haproxy and the gRPC
#      floor, from
#      /proc/PID/stat utime+stime of each process tree (also recorded in
#      every other phase).
# Results: bench/results/latest.json, latest.md and two PNG plots (gnuplot);
# raw outputs in bench/results/raw/.
#
# Environment:
#   PHASE_SECONDS   measured seconds per phase (default 10)
#   LATENCY_RATES   space-separated requests/s (default "1000 5000")
#   CPU_RATE        requests/s of the CPU phase (default 20000)
#   EGRESSD_FLAGS   extra egressd flags (loopback origins are allowed with
#                   --allow_cidr=127.0.0.0/8 already)
#   BENCH_NICE      niceness of every server and load generator (default
#                   -10 as root, else 0): the same for all, so that other
#                   work on a shared machine disturbs the run less
#   BENCH_KEEP_WORK set: keep the configs and logs in /tmp/egress-bench.*
#   EGRESSD_BIN     an egressd binary to measure instead of building one
#                   (e.g. to compare two commits)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PHASE_SECONDS=${PHASE_SECONDS:-10}
LATENCY_RATES=${LATENCY_RATES:-"1000 5000"}
CPU_RATE=${CPU_RATE:-20000}
EGRESSD_FLAGS=${EGRESSD_FLAGS:-}
if [ "$(id -u)" -eq 0 ]; then BENCH_NICE=${BENCH_NICE:--10}; else BENCH_NICE=${BENCH_NICE:-0}; fi
NICE=(nice -n "$BENCH_NICE")
# h2load's load shape, the same for every target (issue 9).
H2LOAD_SHAPE=(-t1 -c16 -m8)

RESULTS="$ROOT/bench/results"
RAW="$RESULTS/raw"
WORK=$(mktemp -d /tmp/egress-bench.XXXXXX)
LOG_PREFIX=bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
on_failure() {  # the servers' own logs usually say why
  tail -n 5 "$WORK"/*/error.log "$WORK"/*/stdout.log "$WORK"/egressd.err 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ------------------------------------------------------------------
log "building (-c opt)"
BUILD_TARGETS=(//bench/loadgen:loadgen //bench/h2load_fetch:h2load_fetch
  //bench/grpc_floor:noop_fetcher)
[ -z "${EGRESSD_BIN:-}" ] && BUILD_TARGETS+=(//server:egressd)
bazel build -c opt "${BUILD_TARGETS[@]}" >&2
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
# Copies, so that a rebuild by someone else during the run changes nothing.
mkdir -p "$WORK/bin"
cp "$BIN/bench/loadgen/loadgen" "$BIN/bench/h2load_fetch/h2load_fetch" \
  "$BIN/bench/grpc_floor/noop_fetcher" "$WORK/bin/"
# Named egressd whatever EGRESSD_BIN's file is called (egressd-old, ...).
cp "${EGRESSD_BIN:-$BIN/server/egressd}" "$WORK/bin/egressd"
EGRESSD="$WORK/bin/egressd"
LOADGEN="$WORK/bin/loadgen"

rm -rf "$RAW"
mkdir -p "$RAW"
# Other work on the machine skews every figure: recorded beside them.
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
read -r ORIGIN_PORT ORIGIN_H2_PORT NGINX_PORT HAPROXY_PORT < <(free_ports 4)
RUN_USER=""
[ "$(id -u)" -eq 0 ] && RUN_USER="user root root;"

# --- origin: nginx, one worker, keep-alive ------------------------------------
mkdir -p "$WORK/origin/www" "$WORK/origin/tmp"
head -c 1024 /dev/zero | tr '\0' 'a' > "$WORK/origin/www/1k"
head -c 65536 /dev/zero | tr '\0' 'b' > "$WORK/origin/www/64k"
nginx_common() {  # nginx_common DIR: the directives both nginx share
  cat <<EOF
daemon off;
$RUN_USER
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 16384; multi_accept on; }
EOF
}
temp_paths() {
  cat <<EOF
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
EOF
}
{
  nginx_common "$WORK/origin"
  cat <<EOF
http {
  access_log off;
$(temp_paths "$WORK/origin")
  default_type application/octet-stream;
  # sendfile off: nginx 1.22's HTTP/2 with sendfile held 1 KiB responses
  # for ~3 ms here (p50 2.8 ms against 64 us without); it buys nothing
  # for small files, and both ports then serve alike.
  sendfile off;
  tcp_nodelay on;
  open_file_cache max=16;
  keepalive_timeout 300s;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    listen 127.0.0.1:$ORIGIN_H2_PORT http2;
    root $WORK/origin/www;
  }
}
EOF
} > "$WORK/origin/nginx.conf"
"${NICE[@]}" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" \
  > "$WORK/origin/stdout.log" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")

# --- nginx as pooled egress proxy -----------------------------------------------
mkdir -p "$WORK/nginx/tmp"
{
  nginx_common "$WORK/nginx"
  cat <<EOF
http {
  access_log off;
$(temp_paths "$WORK/nginx")
  keepalive_timeout 300s;
  keepalive_requests 10000000;
  upstream origin {
    server 127.0.0.1:$ORIGIN_PORT;
    keepalive 256;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT http2;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} > "$WORK/nginx/nginx.conf"
"${NICE[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
  > "$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

# --- haproxy as pooled egress proxy ---------------------------------------------
mkdir -p "$WORK/haproxy"
cat > "$WORK/haproxy/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 300s
  http-reuse always
frontend egress
  bind 127.0.0.1:$HAPROXY_PORT proto h2
  default_backend origin
backend origin
  http-reuse always
  server origin 127.0.0.1:$ORIGIN_PORT
EOF
"${NICE[@]}" haproxy -db -f "$WORK/haproxy/haproxy.cfg" > "$WORK/haproxy/stdout.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")

# --- egressd -----------------------------------------------------------------------
# The pool may keep as many idle connections per origin as nginx's keepalive,
# so that 128 concurrent streams never churn connections. No access log:
# the peers run with theirs off.
# shellcheck disable=SC2086
"${NICE[@]}" "$EGRESSD" --listen=127.0.0.1:0 --admin_listen=127.0.0.1:0 \
  --event_loops=1 --completion_queues=1 --allow_cidr=127.0.0.0/8 \
  --max_idle_connections=1024 --max_idle_per_address=256 --access_log=false \
  $EGRESSD_FLAGS > "$WORK/egressd.out" 2> "$WORK/egressd.err" &
EGRESSD_PID=$!
PIDS+=("$EGRESSD_PID")
EGRESSD_PORT=$(ready_port "$WORK/egressd.out" "$EGRESSD_PID") || {
  log "egressd did not start:"; cat "$WORK/egressd.err" >&2; exit 1; }

# --- the gRPC floor --------------------------------------------------------------
"${NICE[@]}" "$WORK/bin/noop_fetcher" --listen=127.0.0.1:0 --completion_queues=1 \
  > "$WORK/floor.out" 2> "$WORK/floor.err" &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
FLOOR_PORT=$(ready_port "$WORK/floor.out" "$FLOOR_PID") || {
  log "noop_fetcher did not start:"; cat "$WORK/floor.err" >&2; exit 1; }
for port in "$ORIGIN_PORT" "$ORIGIN_H2_PORT" "$NGINX_PORT" "$HAPROXY_PORT"; do
  wait_port "$port"
done
log "origin :$ORIGIN_PORT (h2c :$ORIGIN_H2_PORT) nginx :$NGINX_PORT" \
  "haproxy :$HAPROXY_PORT egressd :$EGRESSD_PORT gRPC floor :$FLOOR_PORT"

ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT/1k"
BODY="$WORK/fetch-1k.bin"
"$WORK/bin/h2load_fetch" --url="$ORIGIN_URL" --out="$BODY" >&2

# --- sanity: every target answers 200 with 1 KiB ------------------------------------
check() {  # check NAME LOADGEN-ARGS...: one second of light load, all OK
  local name=$1; shift
  if ! "${NICE[@]}" "$LOADGEN" --mode=closed --concurrency=4 --connections=1 \
      --warmup=0 --duration=1s --label="check $name" "$@" \
      > "$RAW/check-$name.txt" 2>&1; then
    log "sanity check of $name failed:"; cat "$RAW/check-$name.txt" >&2; exit 1
  fi
  # 1,024 bytes, or a FetchResponse message carrying them with the headers.
  if ! grep -q 'body bytes/call 1[0-9][0-9][0-9]$' "$RAW/check-$name.txt"; then
    log "$name did not return a 1 KiB body:"; cat "$RAW/check-$name.txt" >&2
    exit 1
  fi
}
check origin --protocol=h2c --target="127.0.0.1:$ORIGIN_H2_PORT" --path=/1k
check nginx --protocol=h2c --target="127.0.0.1:$NGINX_PORT" --path=/1k
check haproxy --protocol=h2c --target="127.0.0.1:$HAPROXY_PORT" --path=/1k
check egressd-grpc --target="127.0.0.1:$EGRESSD_PORT" --url="$ORIGIN_URL"
check egressd-h2c --protocol=h2c --target="127.0.0.1:$EGRESSD_PORT" \
  --grpc_fetch_url="$ORIGIN_URL"
check grpc-floor --target="127.0.0.1:$FLOOR_PORT" --url="$ORIGIN_URL"

# --- phases -------------------------------------------------------------------------
# Each phase records the CPU ticks of every server's process tree around it.
PHASES="$RAW/phases.tsv"
printf 'phase\ttarget\tkind\tfile\tseconds\torigin\tnginx\thaproxy\tegressd\tfloor\n' > "$PHASES"
phase() {  # phase NAME TARGET KIND OUTFILE -- command...
  local name=$1 target=$2 kind=$3 file=$4; shift 5
  local o0 n0 h0 e0 f0 t0 t1 rc=0
  o0=$(cpu_ticks "$ORIGIN_PID"); n0=$(cpu_ticks "$NGINX_PID")
  h0=$(cpu_ticks "$HAPROXY_PID"); e0=$(cpu_ticks "$EGRESSD_PID")
  f0=$(cpu_ticks "$FLOOR_PID")
  t0=$(date +%s.%N)
  "$@" > "$RAW/$file" 2> "$RAW/$file.err" || rc=$?
  t1=$(date +%s.%N)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$target" "$kind" "$file" \
    "$(python3 -c "print(round($t1 - $t0, 3))")" \
    $(($(cpu_ticks "$ORIGIN_PID") - o0)) $(($(cpu_ticks "$NGINX_PID") - n0)) \
    $(($(cpu_ticks "$HAPROXY_PID") - h0)) $(($(cpu_ticks "$EGRESSD_PID") - e0)) \
    $(($(cpu_ticks "$FLOOR_PID") - f0)) >> "$PHASES"
  # loadgen exits 3 when some calls failed: the report counts them.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    log "$name/$target failed (exit $rc):"; cat "$RAW/$file.err" >&2
  fi
  return 0
}

declare -A H2C_TARGET=(
  [origin]="127.0.0.1:$ORIGIN_H2_PORT" [nginx]="127.0.0.1:$NGINX_PORT"
  [haproxy]="127.0.0.1:$HAPROXY_PORT" [egressd]="127.0.0.1:$EGRESSD_PORT"
  [grpc-floor]="127.0.0.1:$FLOOR_PORT")
is_grpc() { [ "$1" = egressd ] || [ "$1" = grpc-floor ]; }
h2c_request() {  # the loadgen's h2c request flags for a target
  if is_grpc "$1"; then echo "--grpc_fetch_url=$ORIGIN_URL"; else echo "--path=/1k"; fi
}

log "1. saturation: h2load ${H2LOAD_SHAPE[*]} for ${PHASE_SECONDS}s each"
for t in origin nginx haproxy egressd grpc-floor; do
  extra=()
  if is_grpc "$t"; then
    url="http://${H2C_TARGET[$t]}/egress.v1.Fetcher/Fetch"
    extra=(-d "$BODY" -H 'content-type: application/grpc' -H 'te: trailers')
  else
    url="http://${H2C_TARGET[$t]}/1k"
  fi
  phase saturation "$t" h2load "saturation-$t.txt" -- \
    "${NICE[@]}" h2load "${H2LOAD_SHAPE[@]}" -D "$PHASE_SECONDS" "${extra[@]}" "$url"
done

log "2. latency at fixed rates: $LATENCY_RATES requests/s"
for rate in $LATENCY_RATES; do
  for t in origin nginx haproxy egressd grpc-floor; do
    # shellcheck disable=SC2046
    phase "latency-$rate" "$t" loadgen "latency-$rate-$t.json.txt" -- \
      "${NICE[@]}" "$LOADGEN" --protocol=h2c --target="${H2C_TARGET[$t]}" $(h2c_request "$t") \
      --mode=open --rate="$rate" --connections=4 --warmup=1s \
      --duration="${PHASE_SECONDS}s" --label="$t" \
      --json_out="$RAW/latency-$rate-$t.json"
  done
  phase "latency-$rate" egressd-grpc loadgen "latency-$rate-egressd-grpc.json.txt" -- \
    "${NICE[@]}" "$LOADGEN" --protocol=grpc --target="${H2C_TARGET[egressd]}" \
    --url="$ORIGIN_URL" --mode=open --rate="$rate" --connections=4 \
    --warmup=1s --duration="${PHASE_SECONDS}s" --label="egressd (gRPC client)" \
    --json_out="$RAW/latency-$rate-egressd-grpc.json"
done

log "3. CPU per request at $CPU_RATE requests/s"
for t in nginx haproxy egressd grpc-floor; do
  # shellcheck disable=SC2046
  phase "cpu-$CPU_RATE" "$t" loadgen "cpu-$CPU_RATE-$t.json.txt" -- \
    "${NICE[@]}" "$LOADGEN" --protocol=h2c --target="${H2C_TARGET[$t]}" $(h2c_request "$t") \
    --mode=open --rate="$CPU_RATE" --connections=16 --warmup=0s \
    --duration="${PHASE_SECONDS}s" --label="$t" \
    --json_out="$RAW/cpu-$CPU_RATE-$t.json"
done

# --- environment and summary -------------------------------------------------------
{
  echo "nproc=$(nproc)"
  echo "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total=$(grep MemTotal /proc/meminfo | awk '{print $2 " kB"}')"
  echo "kernel=$(uname -r)"
  echo "clk_tck=$(getconf CLK_TCK)"
  echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
  echo "haproxy=$(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')"
  echo "h2load=$(h2load --version | awk '{print $2}')"
  echo "grpc=$(dpkg-query -W -f='${Version}' libgrpc++-dev 2>/dev/null)"
  if [ -n "${EGRESSD_BIN:-}" ]; then
    echo "egressd_commit=prebuilt $EGRESSD_BIN"
  else
    echo "egressd_commit=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- client_core server proto 2>/dev/null || echo '+local changes')"
  fi
  echo "egressd_flags=--event_loops=1 --completion_queues=1 --allow_cidr=127.0.0.0/8 --max_idle_connections=1024 --max_idle_per_address=256 --access_log=false $EGRESSD_FLAGS"
  echo "loadavg_start=$LOADAVG_START"
  echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "phase_seconds=$PHASE_SECONDS"
  echo "nice=$BENCH_NICE"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$RAW/env.txt"
python3 "$ROOT/bench/summarize.py" "$RAW" "$RESULTS/latest.json" "$RESULTS/latest.md"
if command -v gnuplot > /dev/null; then
  python3 "$ROOT/bench/plot.py" "$RESULTS/latest.json" "$RESULTS" \
    || log "plots failed (the figures are in latest.json)"
fi
log "wrote bench/results/latest.json, latest.md and the plots" \
  "(copy bench/results/*.png to docs/ with a docs/benchmarks.md update)"
cat "$RESULTS/latest.md"
