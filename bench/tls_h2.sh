#!/usr/bin/env bash
# bench/tls_h2.sh: issue 4's numbers, measured in one run on this machine.
#
#   1. TLS pooling: 1 KiB GETs over https (HTTP/1.1) through egressd with its
#      pool, through egressd configured never to reuse a connection
#      (--max_idle_connections=0: every call opens a TCP connection and runs
#      a TLS handshake, resumed when it can), and through nginx as a pooled
#      TLS-originating proxy (the peer). Same load generator and load shape
#      for all: closed loop, CONCURRENCY calls outstanding.
#      Reported: requests/s, the pooled/unpooled ratio (issue target >= 10x),
#      and TLS handshakes per 1,000 requests (egressd's PoolStats).
#   2. HTTP/2: H2_CALLS concurrent Fetches (closed loop) to one https origin
#      that speaks h2 (nginx, 128 streams per connection): requests/s and the
#      connections egressd opened (its stream cap is 100 per connection).
#
# Every server is on 127.0.0.1, started here with its own config, stopped by
# PID on exit. Output: a table on stdout and bench/results/tls_h2.md.
#
# Environment: PHASE_SECONDS (default 10), CONCURRENCY (default 16),
# H2_CALLS (default 1000), BENCH_KEEP_WORK (keep /tmp/egress-tls-bench.*).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PHASE_SECONDS=${PHASE_SECONDS:-10}
CONCURRENCY=${CONCURRENCY:-16}
H2_CALLS=${H2_CALLS:-1000}
WORK=$(mktemp -d /tmp/egress-tls-bench.XXXXXX)
LOG_PREFIX=tls_h2
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
on_failure() { tail -n 5 "$WORK"/*/error.log "$WORK"/*.err 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building (-c opt)"
bazel build -c opt //server:egressd //server:egressctl //bench/loadgen:loadgen >&2
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
mkdir -p "$WORK/bin"
cp "$BIN/server/egressd" "$BIN/server/egressctl" "$BIN/bench/loadgen/loadgen" "$WORK/bin/"
EGRESSD="$WORK/bin/egressd"; EGRESSCTL="$WORK/bin/egressctl"; LOADGEN="$WORK/bin/loadgen"
RUN_USER=""
[ "$(id -u)" -eq 0 ] && RUN_USER="user root root;"

# --- certificates: a CA and one leaf for 127.0.0.1 and h1.test ------------------
PKI="$WORK/pki"; mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -subj /CN=bench-ca -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$PKI/leaf.key" -out "$PKI/leaf.csr" -subj /CN=origin 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:h1.test\n' > "$PKI/ext.cnf"
openssl x509 -req -in "$PKI/leaf.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
  -CAcreateserial -days 2 -out "$PKI/leaf.pem" -extfile "$PKI/ext.cnf" 2>/dev/null

read -r TLS_H1_PORT TLS_H2_PORT NGINX_PORT < <(free_ports 3)

# --- origin: nginx, one worker; https/1.1 on one port, https/2 on another -------
mkdir -p "$WORK/origin/www" "$WORK/origin/tmp"
head -c 1024 /dev/zero | tr '\0' 'a' > "$WORK/origin/www/1k"
nginx_conf() {  # nginx_conf DIR HTTP-BLOCK
  cat <<CONF
daemon off;
$RUN_USER
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body; proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi; uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  keepalive_timeout 300s;
  keepalive_requests 10000000;
$2
}
CONF
}
nginx_conf "$WORK/origin" "
  default_type application/octet-stream;
  sendfile off;
  ssl_certificate $PKI/leaf.pem;
  ssl_certificate_key $PKI/leaf.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:bench:10m;
  server {
    listen 127.0.0.1:$TLS_H1_PORT ssl;
    listen 127.0.0.1:$TLS_H2_PORT ssl http2;
    root $WORK/origin/www;
  }" > "$WORK/origin/nginx.conf"
nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" &
PIDS+=($!)

# --- the peer: nginx as a pooled TLS-originating egress proxy --------------------
mkdir -p "$WORK/nginx/tmp"
nginx_conf "$WORK/nginx" "
  upstream origin {
    server 127.0.0.1:$TLS_H1_PORT;
    keepalive 256;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT http2;
    location / {
      proxy_pass https://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_ssl_trusted_certificate $PKI/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name h1.test;
      proxy_ssl_session_reuse on;
    }
  }" > "$WORK/nginx/nginx.conf"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
PIDS+=($!)
wait_port "$TLS_H1_PORT"; wait_port "$TLS_H2_PORT"; wait_port "$NGINX_PORT"

# --- egressd, pooled and never reusing -------------------------------------------
printf 'tls:\n  default:\n    ca_file: %s\n' "$PKI/ca.pem" > "$WORK/egressd.yaml"
start_egressd() {  # start_egressd NAME EXTRA-FLAGS...: sets NAME_PORT NAME_ADMIN
  local name=$1; shift
  "$EGRESSD" --listen=127.0.0.1:0 --admin_listen=127.0.0.1:0 --metrics_listen=off \
    --event_loops=1 --completion_queues=1 --allow_cidr=127.0.0.0/8 \
    --config="$WORK/egressd.yaml" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  local ports
  ports=$(ready_port "$WORK/$name.out" "$pid" listen admin_listen) || {
    log "egressd ($name) did not start"; cat "$WORK/$name.err" >&2; exit 1; }
  read -r "${name}_PORT" "${name}_ADMIN" <<< "$ports"
}
start_egressd pooled --max_idle_connections=1024 --max_idle_per_address=256
start_egressd unpooled --max_idle_connections=0

handshakes() {  # handshakes ADMIN-PORT: TLS handshakes, connections opened, resumed
  "$EGRESSCTL" --admin="127.0.0.1:$1" --json pool | python3 -c '
import json, sys
s = json.load(sys.stdin)
t = s.get("tls", {})
print(int(t.get("handshakes", 0)), int(s.get("connectionsOpened", 0)),
      int(t.get("resumed", 0)))'
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

run_grpc() {  # run_grpc LABEL PORT URL CONCURRENCY
  "$LOADGEN" --target="127.0.0.1:$2" --url="$3" --mode=closed \
    --concurrency="$4" --duration="${PHASE_SECONDS}s" --warmup=1s \
    --json_out="$WORK/$1.json" > "$WORK/$1.txt"
}

URL_H1="https://127.0.0.1:$TLS_H1_PORT/1k"
URL_H2="https://127.0.0.1:$TLS_H2_PORT/1k"
results=()
for name in pooled unpooled; do
  admin_var="${name}_ADMIN"; port_var="${name}_PORT"
  read -r hs0 _ res0 < <(handshakes "${!admin_var}")
  log "phase: $name, $CONCURRENCY outstanding, ${PHASE_SECONDS}s"
  run_grpc "$name" "${!port_var}" "$URL_H1" "$CONCURRENCY"
  read -r hs1 _ res1 < <(handshakes "${!admin_var}")
  calls=$(field "$WORK/$name.json" all_calls)
  rps=$(field "$WORK/$name.json" throughput_rps)
  errors=$(field "$WORK/$name.json" errors)
  per_k=$(python3 -c "print(f'{1000*($hs1-$hs0)/max(1,$calls):.1f}')")
  resumed=$(python3 -c "print(f'{100*($res1-$res0)/max(1,$hs1-$hs0):.0f}%')")
  results+=("$name $rps $per_k $errors $calls $resumed")
done
log "phase: nginx (peer), $CONCURRENCY outstanding"
"$LOADGEN" --protocol=h2c --target="127.0.0.1:$NGINX_PORT" --path=/1k --mode=closed \
  --concurrency="$CONCURRENCY" --duration="${PHASE_SECONDS}s" --warmup=1s \
  --json_out="$WORK/nginx.json" > "$WORK/nginx.txt"
NGINX_RPS=$(field "$WORK/nginx.json" throughput_rps)
NGINX_ERR=$(field "$WORK/nginx.json" errors)

log "phase: h2, $H2_CALLS outstanding"
read -r _ open0 _ < <(handshakes "$pooled_ADMIN")
run_grpc h2 "$pooled_PORT" "$URL_H2" "$H2_CALLS"
read -r _ open1 _ < <(handshakes "$pooled_ADMIN")
H2_RPS=$(field "$WORK/h2.json" throughput_rps)
H2_ERR=$(field "$WORK/h2.json" errors)
H2_CONNS=$((open1 - open0))
H2_P99=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['latency_us']['p99'])" "$WORK/h2.json" 2>/dev/null || echo "?")

read -r _ P_RPS P_HS P_ERR P_CALLS P_RES <<< "${results[0]}"
read -r _ U_RPS U_HS U_ERR U_CALLS U_RES <<< "${results[1]}"
RATIO=$(python3 -c "print(f'{$P_RPS/max(1e-9,$U_RPS):.1f}')")
PEER_RATIO=$(python3 -c "print(f'{$P_RPS/max(1e-9,$NGINX_RPS):.2f}')")
{
  echo "# TLS pooling and HTTP/2 (bench/tls_h2.sh)"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
  echo "PHASE_SECONDS=$PHASE_SECONDS CONCURRENCY=$CONCURRENCY H2_CALLS=$H2_CALLS"
  echo
  echo "| run | requests/s | TLS handshakes per 1,000 requests | of which resumed | errors |"
  echo "|---|---:|---:|---:|---:|"
  echo "| egressd, pooled | $P_RPS | $P_HS | $P_RES | $P_ERR |"
  echo "| egressd, never reusing (max_idle_connections=0) | $U_RPS | $U_HS | $U_RES | $U_ERR |"
  echo "| nginx, pooled TLS upstream (peer) | $NGINX_RPS | - | - | $NGINX_ERR |"
  echo
  echo "pooled / never reusing: ${RATIO}x; egressd pooled / nginx pooled: ${PEER_RATIO}x"
  echo
  echo "HTTP/2: $H2_CALLS concurrent Fetches to one h2 origin: $H2_RPS requests/s, p99 ${H2_P99} us, $H2_CONNS connections opened, $H2_ERR errors"
} | tee "$ROOT/bench/results/tls_h2.md"
