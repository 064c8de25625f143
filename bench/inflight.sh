#!/usr/bin/env bash
# bench/inflight.sh: issue 9's scenarios 5 and 7, measured in one run on
# this machine.
#
#   Scenario 5: CALLS (10,000) Fetches in flight at once against an origin
#   that answers ~1 KiB after 1 s. The loadgen runs closed loop with
#   --concurrency=CALLS, --warmup=0 and a measured window shorter than the
#   origin's 1 s: each slot starts one call at once and, as no call ends
#   inside the window, none starts another (a call that fails at once would,
#   and shows as measured calls > CALLS). Three phases, each with a fresh
#   egressd so that its RSS figures are its own:
#     a. HTTP/1.1, default limits (max_connections_per_address=1024: calls
#        beyond it queue), except pending_timeout=30s (default 10 s would
#        fail the calls queued for ~10 rounds of 1 s);
#     b. HTTP/1.1, max_connections_per_address=CALLS: every call its own
#        connection;
#     c. HTTP/2 with prior knowledge (tls.default.protocol: h2c) to an h2c
#        origin allowing 128 streams; egressd's cap is 100 streams per
#        connection, so ~CALLS/100 connections.
#   Reported per phase: calls, successes, errors by status, latency p50/p99/
#   max, wall time, egressd RSS (VmRSS sampled every 100 ms, and VmHWM),
#   connections opened (PoolStats) and the most open at once (sampled).
#
#   Scenario 7: egressd's RSS at idle after start, then with N idle pooled
#   HTTP/1.1 connections (N in IDLE_COUNTS): N concurrent one-shot calls to
#   the 1 s origin open N connections, which stay idle in the pool
#   (max_idle_* >= N, keep_alive 600s). A fresh egressd per N. RSS per
#   1,000 idle connections = (RSS with N idle - RSS at idle) / N * 1000;
#   the kernel's socket buffers are not in RSS.
#
# Origin: Debian's nginx, one worker, with the echo module
# (libnginx-mod-http-echo): /slow answers 1 KiB after `echo_sleep 1`, over
# HTTP/1.1 keep-alive on one port and h2c on another. Every process is on
# 127.0.0.1, started here, and stopped by PID on exit; every wait is bounded.
# Needs `ulimit -n` (raised here up to the hard limit) >= CALLS + 512, for
# egressd and nginx each.
#
# Output: a table on stdout and bench/results/inflight.md.
#
# Environment: CALLS (default 10000), PHASES (scenario 5's phases, default
# "a b c"), IDLE_COUNTS (default "1000 5000"; empty skips scenario 7),
# CHANNELS (loadgen gRPC channels, default 4), EGRESSD_BIN (an egressd
# binary to measure instead of building one, e.g. for an A/B),
# BENCH_KEEP_WORK (keep /tmp/egress-inflight.*).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CALLS=${CALLS:-10000}
IDLE_COUNTS=${IDLE_COUNTS-"1000 5000"}
PHASES=${PHASES:-"a b c"}
CHANNELS=${CHANNELS:-4}
WORK=$(mktemp -d /tmp/egress-inflight.XXXXXX)
LOG_PREFIX=inflight
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
on_failure() { tail -n 5 "$WORK"/origin/error.log "$WORK"/*.err 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- file descriptors ---------------------------------------------------------
NEEDED_FDS=$((CALLS + 512))
for n in $IDLE_COUNTS; do
  [ $((n + 512)) -gt "$NEEDED_FDS" ] && NEEDED_FDS=$((n + 512))
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt "$NEEDED_FDS" ]; then
  log "ulimit -n is $NOFILE (hard limit $(ulimit -Hn)); egressd and nginx" \
    "each need >= $NEEDED_FDS open files for CALLS=$CALLS: raise the hard" \
    "limit (e.g. ulimit -Hn 65536 as root) or lower CALLS"
  exit 1
fi
[ "$NOFILE" = unlimited ] && NOFILE=1048576

log "building (-c opt)"
bazel build -c opt //server:egressd //server:egressctl //bench/loadgen:loadgen >&2
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
# Copies, so that a rebuild by someone else during the run changes nothing.
mkdir -p "$WORK/bin"
cp "${EGRESSD_BIN:-$BIN/server/egressd}" "$WORK/bin/egressd"
cp "$BIN/server/egressctl" "$BIN/bench/loadgen/loadgen" "$WORK/bin/"
EGRESSD="$WORK/bin/egressd"; EGRESSCTL="$WORK/bin/egressctl"; LOADGEN="$WORK/bin/loadgen"
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
if [ ! -f "$ECHO_MODULE" ]; then
  log "$ECHO_MODULE is missing: apt-get install libnginx-mod-http-echo"; exit 1
fi
RUN_USER=""
[ "$(id -u)" -eq 0 ] && RUN_USER="user root root;"

# --- origin: nginx, one worker, /slow = 1 KiB after 1 s -------------------------
read -r H1_PORT H2C_PORT < <(free_ports 2)
mkdir -p "$WORK/origin/tmp"
BODY_LINE=$(head -c 1023 /dev/zero | tr '\0' 'a')  # echo adds "\n": 1,024 bytes
O="$WORK/origin"
cat > "$O/nginx.conf" <<EOF
load_module $ECHO_MODULE;
daemon off;
$RUN_USER
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $O/nginx.pid;
error_log $O/error.log warn;
events { worker_connections $((NEEDED_FDS + 1024)); multi_accept on; }
http {
  access_log off;
  client_body_temp_path $O/tmp/body; proxy_temp_path $O/tmp/proxy;
  fastcgi_temp_path $O/tmp/fastcgi; uwsgi_temp_path $O/tmp/uwsgi;
  scgi_temp_path $O/tmp/scgi;
  default_type text/plain;
  # Idle pooled connections must outlive scenario 7's measurement.
  keepalive_timeout 600s;
  keepalive_requests 10000000;
  http2_max_concurrent_streams 128;
  server {
    # The kernel caps the backlog at net.core.somaxconn.
    listen 127.0.0.1:$H1_PORT backlog=$CALLS;
    listen 127.0.0.1:$H2C_PORT http2 backlog=$CALLS;
    location /slow { echo_sleep 1; echo "$BODY_LINE"; }
  }
}
EOF
nginx -p "$O" -c "$O/nginx.conf" -e "$O/error.log" > "$O/stdout.log" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
wait_port "$H1_PORT"; wait_port "$H2C_PORT"
URL_H1="http://127.0.0.1:$H1_PORT/slow"
URL_H2C="http://127.0.0.1:$H2C_PORT/slow"
printf 'tls:\n  default:\n    protocol: h2c\n' > "$WORK/h2c.yaml"

# --- helpers --------------------------------------------------------------------
EG_COMMON=(--listen=127.0.0.1:0 --admin_listen=127.0.0.1:0
  --metrics_listen=127.0.0.1:0 --allow_cidr=127.0.0.0/8 --event_loops=1
  --completion_queues=1 --noaccess_log)

forget_pid() {  # forget_pid PID: stop its tree and drop it from PIDS
  local pid=$1 p kept=()
  stop_tree "$pid"
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

# start_egressd NAME FLAGS...: sets EG_PID, EG_PORT, EG_ADMIN.
start_egressd() {
  local name=$1; shift
  "$EGRESSD" "${EG_COMMON[@]}" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  EG_PID=$!
  PIDS+=("$EG_PID")
  local ports
  ports=$(ready_port "$WORK/$name.out" "$EG_PID" listen admin_listen) || {
    log "egressd ($name) did not start"; cat "$WORK/$name.err" >&2; exit 1; }
  read -r EG_PORT EG_ADMIN <<< "$ports"
  echo "egressd ${EG_COMMON[*]} $*" > "$WORK/$name.cmd"
}

status_kib() {  # status_kib PID FIELD: VmRSS or VmHWM in KiB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

pool_json() {  # pool_json FILE: egressctl pool --json into FILE
  "$EGRESSCTL" --admin="127.0.0.1:$EG_ADMIN" --timeout=10 --json pool > "$1"
}

# sample PID ADMIN OUT: every 100 ms VmRSS/VmHWM of PID, every 500 ms the
# pool's open and pending counts, into OUT (one line each); at most 300 s.
start_sampler() {
  python3 - "$1" "$2" "$3" "$EGRESSCTL" <<'PY' &
import subprocess, sys, threading, time
pid, admin, out, ctl = sys.argv[1:5]
end = time.monotonic() + 300
lock = threading.Lock()
f = open(out, "w", buffering=1)

def pool():
    import json
    while time.monotonic() < end:
        try:
            r = subprocess.run([ctl, f"--admin=127.0.0.1:{admin}", "--timeout=2",
                                "--json", "pool"], capture_output=True,
                               timeout=5, text=True)
            s = json.loads(r.stdout)
            with lock:
                f.write(f"pool {time.monotonic():.3f} {int(s.get('connectionCount', 0))}"
                        f" {int(s.get('pendingCount', 0))}"
                        f" {int(s.get('requestsInFlight', 0))}\n")
        except Exception:
            pass
        time.sleep(0.5)

threading.Thread(target=pool, daemon=True).start()
while time.monotonic() < end:
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        break
    v = {l.split(":")[0]: l.split()[1] for l in status.splitlines()
         if l.startswith(("VmRSS:", "VmHWM:"))}
    with lock:
        f.write(f"rss {time.monotonic():.3f} {v.get('VmRSS', 0)} {v.get('VmHWM', 0)}\n")
    time.sleep(0.1)
PY
  SAMPLER_PID=$!
  PIDS+=("$SAMPLER_PID")
}

mib() { python3 -c "print(f'{$1/1024:.1f}')"; }

RESULTS_TSV="$WORK/scenario5.tsv"
: > "$RESULTS_TSV"
COMMANDS=()

# phase NAME LABEL URL EGRESSD-FLAGS...: one scenario 5 phase.
phase() {
  local name=$1 label=$2 url=$3; shift 3
  log "phase $name: $label"
  start_egressd "$name" "$@"
  sleep 1  # let it settle before the "at start" figure
  local rss0 t0 t1 rc=0
  rss0=$(status_kib "$EG_PID" VmRSS)
  pool_json "$WORK/$name.pool0.json"
  start_sampler "$EG_PID" "$EG_ADMIN" "$WORK/$name.samples"
  local lg=("$LOADGEN" --target="127.0.0.1:$EG_PORT" --url="$url" --mode=closed
    --concurrency="$CALLS" --connections="$CHANNELS" --warmup=0 --duration=0.9s
    --timeout=60s --label="$label" --json_out="$WORK/$name.json")
  t0=$(date +%s.%N)
  "${lg[@]}" > "$WORK/$name.txt" 2> "$WORK/$name.lg.err" || rc=$?
  t1=$(date +%s.%N)
  # loadgen exits 3 when some calls failed: the report counts them.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    log "loadgen failed (exit $rc):"; cat "$WORK/$name.lg.err" >&2; exit 1
  fi
  sleep 0.3  # one more RSS sample after the last call
  forget_pid "$SAMPLER_PID"
  pool_json "$WORK/$name.pool1.json"
  local hwm
  hwm=$(status_kib "$EG_PID" VmHWM)
  forget_pid "$EG_PID"
  COMMANDS+=("$name: $(cat "$WORK/$name.cmd")" "$name: loadgen ${lg[*]:1}")
  python3 - "$WORK/$name" "$label" "$rss0" "$hwm" "$t0" "$t1" >> "$RESULTS_TSV" <<'PY'
import json, sys
base, label, rss0, hwm, t0, t1 = sys.argv[1:7]
r = json.load(open(base + ".json"))
p0 = json.load(open(base + ".pool0.json"))
p1 = json.load(open(base + ".pool1.json"))
rss_peak, open_peak, pending_peak = 0, 0, 0
for line in open(base + ".samples"):
    f = line.split()
    if f[0] == "rss":
        rss_peak = max(rss_peak, int(f[2]))
    elif f[0] == "pool":
        open_peak = max(open_peak, int(f[2])); pending_peak = max(pending_peak, int(f[3]))
errors = {k: v for k, v in r["status"].items() if k != "OK"}
rejected = {k: v for k, v in p1.get("rejectedByLimit", {}).items() if int(v)}
lat = r["latency_us"]
opened = int(p1.get("connectionsOpened", 0)) - int(p0.get("connectionsOpened", 0))
ms = lambda us: f"{us / 1000:.0f}"
def total_s(pool, field):  # a CallTotals duration sum, "12.5s" in JSON
    return float(pool.get("callTotals", {}).get(field, "0s").rstrip("s") or 0)
ok_calls = max(1, int(p1.get("callTotals", {}).get("succeeded", 0))
               - int(p0.get("callTotals", {}).get("succeeded", 0)))
mean_ms = lambda field: f"{(total_s(p1, field) - total_s(p0, field)) / ok_calls * 1000:.0f}"
print("\t".join([
    label, str(r["measured_calls"]), str(r["all_calls"]), str(r["status"].get("OK", 0)),
    ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none",
    ms(lat["p50"]), ms(lat["p99"]), ms(lat["max"]),
    f"{float(t1) - float(t0):.1f}",
    f"{int(rss0) / 1024:.1f}", f"{rss_peak / 1024:.1f}", f"{int(hwm) / 1024:.1f}",
    f"{(int(hwm) - int(rss0)) / max(1, r['measured_calls']):.1f}",
    str(opened), str(open_peak), str(pending_peak),
    mean_ms("queueWait"), mean_ms("connect"),
    ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "none",
    ", ".join(f"{k}: {v}" for k, v in sorted(r["http_status"].items())) or "-",
]))
PY
}

# --- scenario 5 -------------------------------------------------------------------
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
wants() { [[ " $PHASES " == *" $1 "* ]]; }
wants a && phase a "HTTP/1.1, max_connections_per_address=1024" "$URL_H1" \
  --max_connections_per_address=1024 --pending_timeout=30s
wants b && phase b "HTTP/1.1, max_connections_per_address=$CALLS" "$URL_H1" \
  --max_connections_per_address="$CALLS" --pending_timeout=30s
wants c && phase c "HTTP/2 (h2c), 100 streams per connection" "$URL_H2C" \
  --config="$WORK/h2c.yaml" --pending_timeout=30s

# --- scenario 7 -------------------------------------------------------------------
# idle_run NAME N FLAGS...: a fresh egressd; its VmRSS 1 s after start
# (RSS_IDLE); N concurrent one-shot calls to the 1 s origin; then the
# connections left idle in the pool (IDLE, waited for at most 10 s), VmRSS
# 1 s after the calls ended (RSS_AFTER), VmRSS after `egressctl evict`
# (RSS_EVICTED), VmHWM (HWM) and the calls that succeeded (OK).
idle_run() {
  local name=$1 n=$2; shift 2
  start_egressd "$name" --max_connections_per_address="$n" --keep_alive=600s \
    --pending_timeout=30s "$@"
  sleep 1  # let it settle before the "at idle" figure
  RSS_IDLE=$(status_kib "$EG_PID" VmRSS)
  local lg=("$LOADGEN" --target="127.0.0.1:$EG_PORT" --url="$URL_H1" --mode=closed
    --concurrency="$n" --connections="$CHANNELS" --warmup=0 --duration=0.9s
    --timeout=60s --label="$name" --json_out="$WORK/$name.json")
  local rc=0
  "${lg[@]}" > "$WORK/$name.txt" 2> "$WORK/$name.lg.err" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    log "loadgen failed (exit $rc):"; cat "$WORK/$name.lg.err" >&2; exit 1
  fi
  # A connection goes idle (or closes) when its call ends; wait for the
  # pool to show no call in flight and, with a pool, all N idle.
  local want=$n
  [[ " $* " == *" --max_idle_connections=0 "* ]] && want=0
  IDLE=0
  local busy=1
  for _ in $(seq 1 20); do
    pool_json "$WORK/$name.pool.json"
    read -r IDLE busy < <(python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
print(int(s.get('idleCount', 0)), int(s.get('inUseCount', 0)) + int(s.get('requestsInFlight', 0)))" \
      "$WORK/$name.pool.json")
    [ "$busy" -eq 0 ] && [ "$IDLE" -ge "$want" ] && break
    sleep 0.5
  done
  sleep 1  # settle: the loadgen's gRPC connections are closed by now
  RSS_AFTER=$(status_kib "$EG_PID" VmRSS)
  "$EGRESSCTL" --admin="127.0.0.1:$EG_ADMIN" --timeout=10 evict > /dev/null
  sleep 1
  RSS_EVICTED=$(status_kib "$EG_PID" VmRSS)
  HWM=$(status_kib "$EG_PID" VmHWM)
  OK=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['status'].get('OK', 0))" "$WORK/$name.json")
  forget_pid "$EG_PID"
  COMMANDS+=("$name: $(cat "$WORK/$name.cmd")" "$name: loadgen ${lg[*]:1}")
}

IDLE_TSV="$WORK/scenario7.tsv"
: > "$IDLE_TSV"
for n in $IDLE_COUNTS; do
  log "scenario 7: $n idle pooled connections"
  idle_run "idle$n" "$n" --max_idle_connections="$n" --max_idle_per_address="$n"
  row=("$n" "$OK" "$IDLE" "$(mib "$RSS_IDLE")" "$(mib "$RSS_AFTER")"
    "$(python3 -c "print(f'{($RSS_AFTER - $RSS_IDLE) / $n * 1000 / 1024:.1f}')")"
    "$(mib "$RSS_EVICTED")" "$(mib "$HWM")")
  pooled_after=$RSS_AFTER
  # Control: the same calls with no pool (every connection closes when its
  # call ends): what RSS keeps of the burst itself.
  log "scenario 7: control, $n calls with max_idle_connections=0"
  idle_run "nopool$n" "$n" --max_idle_connections=0
  row+=("$(mib "$RSS_IDLE")" "$(mib "$RSS_AFTER")"
    "$(python3 -c "print(f'{($pooled_after - $RSS_AFTER) / $n * 1000 / 1024:.1f}')")")
  (IFS=$'\t'; echo "${row[*]}") >> "$IDLE_TSV"
done

# --- report -----------------------------------------------------------------------
{
  echo "# In-flight calls and idle connections (bench/inflight.sh)"
  echo
  echo "Issue 9, scenarios 5 and 7. $(date -u +%Y-%m-%dT%H:%MZ);" \
    "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'));" \
    "kernel $(uname -r); load $LOADAVG_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end."
  echo "egressd ${EGRESSD_BIN:+prebuilt $EGRESSD_BIN, tree }$(git rev-parse --short HEAD 2>/dev/null || echo ?)$(git diff --quiet HEAD -- client_core server proto third_party 2>/dev/null || echo '+local changes') (-c opt);" \
    "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') with echo module" \
    "$(dpkg-query -W -f='${Version}' libnginx-mod-http-echo 2>/dev/null || echo ?);" \
    "gRPC $(dpkg-query -W -f='${Version}' libgrpc++-dev 2>/dev/null || echo ?);" \
    "ulimit -n $NOFILE; net.core.somaxconn $(cat /proc/sys/net/core/somaxconn)."
  echo
  echo "## Scenario 5: $CALLS concurrent Fetches, origin answers 1 KiB after 1 s"
  echo
  echo "loadgen: closed loop, --concurrency=$CALLS --warmup=0 --duration=0.9s" \
    "--timeout=60s over $CHANNELS gRPC channels: every slot issues one call. egressd:" \
    "one event loop, one completion queue, pending_timeout 30 s (default 10 s)," \
    "other limits at their defaults unless the row says otherwise; a fresh process per row." \
    "RSS at start: 1 s after it is ready; peak: the largest VmRSS sampled every 100 ms;" \
    "VmHWM: the kernel's high-water mark. Connections: opened during the run" \
    "(PoolStats), and the most open at once (sampled every 500 ms); most pending: calls" \
    "waiting for a connection (sampled); mean queue wait and connect: PoolStats call" \
    "totals over the successful calls."
  echo
  echo "| run | calls | OK (HTTP status) | errors | p50 ms | p99 ms | max ms | wall s | RSS at start MiB | peak RSS MiB | VmHWM MiB | (VmHWM - start) per call KiB | connections opened | most open | most pending | mean queue wait ms | mean connect ms | rejected by limit |"
  echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  while IFS=$'\t' read -r label measured all okc errs p50 p99 pmax wall r0 rpk hw percall opened openpk pendpk qwait conn rej http; do
    calls=$measured
    [ "$all" != "$measured" ] && calls="$measured ($all ended)"
    echo "| $label | $calls | $okc ($http) | $errs | $p50 | $p99 | $pmax | $wall | $r0 | $rpk | $hw | $percall | $opened | $openpk | $pendpk | $qwait | $conn | $rej |"
  done < "$RESULTS_TSV"
  echo
  echo "## Scenario 7: egressd RSS at idle and per 1,000 idle pooled connections"
  echo
  echo "A fresh egressd per run (max_idle_connections = max_idle_per_address =" \
    "max_connections_per_address = N, keep_alive 600 s); N concurrent one-shot calls" \
    "to the 1 s origin leave N idle HTTP/1.1 connections in the pool (checked with" \
    "egressctl pool). RSS is VmRSS 1 s after start (at idle) or 1 s after the calls" \
    "ended; the kernel's socket memory is not in it. After evict: \`egressctl evict\`" \
    "closed the N connections. Control: another fresh egressd, the same N calls with" \
    "max_idle_connections=0 (each connection closes when its call ends), so that" \
    "pooled - control is what keeping the N connections adds to RSS, and the rest of" \
    "the increase is memory of the burst of N concurrent calls that malloc kept."
  echo
  echo "| N | calls OK | idle in pool | RSS at idle MiB | RSS with N idle MiB | per 1,000 idle MiB | after evict MiB | VmHWM MiB | control: RSS at idle MiB | control: RSS after the calls MiB | (pooled - control) per 1,000 MiB |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  while IFS=$'\t' read -r n okc idle r0 rn per rev hw c0 cn cper; do
    echo "| $n | $okc | $idle | $r0 | $rn | $per | $rev | $hw | $c0 | $cn | $cper |"
  done < "$IDLE_TSV"
  echo
  echo "Commands (ports picked at run time):"
  echo
  echo '```'
  echo "origin: nginx one worker, echo module; location /slow { echo_sleep 1; echo <1023 bytes>; }"
  echo "        HTTP/1.1 keep-alive :$H1_PORT, h2c :$H2C_PORT, http2_max_concurrent_streams 128"
  echo "phase c config ($WORK/h2c.yaml): tls: {default: {protocol: h2c}}"
  printf '%s\n' "${COMMANDS[@]}" | sed "s#$WORK/bin/##g"
  echo '```'
} | tee "$ROOT/bench/results/inflight.md"
