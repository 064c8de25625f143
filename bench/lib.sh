# shellcheck shell=bash
# bench/lib.sh: helpers shared by the benchmark scripts (run.sh, tls_h2.sh,
# inflight.sh). Sourced, never run: it defines functions and PIDS, and
# starts nothing.
#
# The sourcing script sets, before any helper runs:
#   LOG_PREFIX  the name log() puts before each message ("bench", ...)
#   WORK        its scratch directory (cleanup removes it)
# appends the PID of every process it starts in the background to PIDS,
# may redefine on_failure() to show its servers' logs, and installs
#   trap cleanup EXIT
#   trap 'exit 130' INT TERM
# so that every process it started is stopped, however the script ends.

PIDS=()

log() { echo "${LOG_PREFIX:-bench}: $*" >&2; }

# Every process in the trees rooted at the given PIDs (roots included).
descendants() {
  ps -e -o pid= -o ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { parent[$1] = $2 }
    END {
      changed = 1
      while (changed) {
        changed = 0
        for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
      }
      for (p in keep) print p
    }'
}

# utime + stime, in clock ticks, summed over the process trees of the PIDs.
cpu_ticks() {
  local total=0 pid stat rest
  for pid in $(descendants "$@"); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    rest=${stat##*) }  # the fields after "(comm)", which may hold spaces
    # rest starts at field 3 (state): utime is field 14, stime field 15.
    read -r -a f <<< "$rest"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

stop_tree() {  # stop_tree PID: SIGTERM the tree, then SIGKILL what is left
  local pid=$1 tree p _
  tree=$(descendants "$pid")
  # shellcheck disable=SC2086
  kill -TERM $tree 2>/dev/null || true
  for _ in $(seq 1 50); do  # at most 5 s
    local alive=0
    for p in $tree; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $tree 2>/dev/null || true
}

# Called by cleanup when the script fails: scripts redefine it to print the
# end of their servers' logs, which usually say why.
on_failure() { :; }

# The EXIT trap: stops every process tree in PIDS, removes WORK (unless
# BENCH_KEEP_WORK is set) and exits with the script's status.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do stop_tree "$pid"; done
  wait 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then on_failure >&2 || true; fi
  if [ -n "${BENCH_KEEP_WORK:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}

# Waits (at most 10 s) until something accepts on 127.0.0.1:$1.
wait_port() {
  local _
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "nothing listens on 127.0.0.1:$1 after 10 s"
  return 1
}

# N free loopback ports (the kernel picks them; a race with another program
# binding the same port in between is possible, and fails loudly).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# ready_port FILE PID [KEY...]: waits (at most 20 s, and only while PID
# lives) for a "NAME_READY listen=HOST:PORT [KEY=HOST:PORT ...]" line in
# FILE, then prints the port of each KEY (default: listen), separated by
# spaces, in the order asked; a KEY whose value has no port (e.g.
# "metrics_listen=off") prints as its value. Keys may come in any order.
ready_port() {
  local file=$1 pid=$2 line key value _
  local -a out
  shift 2
  [ $# -eq 0 ] && set -- listen
  for _ in $(seq 1 200); do
    line=$(grep -m1 '_READY ' "$file" 2>/dev/null || true)
    if [ -n "$line" ]; then
      out=()
      for key in "$@"; do
        # " KEY=" with the space, so that "listen" never matches
        # "admin_listen=".
        value=$(grep -oE " $key=[^ ]*" <<< " $line" | head -n1 | cut -d= -f2-)
        if [ -z "$value" ]; then
          log "no $key= in: $line"
          return 1
        fi
        [[ "$value" =~ :([0-9]+)$ ]] && value=${BASH_REMATCH[1]}
        out+=("$value")
      done
      echo "${out[*]}"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}
