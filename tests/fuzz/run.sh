#!/usr/bin/env bash
# Builds egressd's libFuzzer targets with Debian's clang and runs each one.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target, default 60. TARGETs default to all of:
#   response_parser   client_core/http1/response_parser (hostile origins)
#   url               client_core/url/url (caller-supplied URLs)
#   egress_policy     client_core/policy (CIDR config, address classification)
#   content_decoder   client_core/http/content_decoder (encoded bodies: gzip,
#                     deflate, br, decompression bombs)
#   redirect          client_core/call/redirect (Location values)
#
# Exits non-zero if any target crashes, breaks an invariant (FUZZ_CHECK),
# leaks, hits UB, runs out of memory, or takes longer than 10 s on one input.
# Reproducers land in $FUZZ_OUT/artifacts/<target>/; replay one with
#   $FUZZ_OUT/bin/<target> <file>
# Inputs the fuzzer found go to $FUZZ_OUT/corpus/<target>/ (kept between runs,
# never into the repository; to grow the seed corpus, minimise first:
#   $FUZZ_OUT/bin/<target> -merge=1 tests/fuzz/corpus/<target> $FUZZ_OUT/corpus/<target>)
#
# Bazel's toolchain here is g++, which has no libFuzzer, so this script
# compiles the client_core sources it needs directly with clang++
# (-fsanitize=fuzzer,address,undefined) against libstdc++ and Debian's
# Abseil, with the link flags of //third_party:absl. The same targets run in
# the ordinary Bazel suite as corpus replay tests (tests/fuzz/BUILD.bazel).
#
# Environment: FUZZ_OUT (default ${TMPDIR:-/tmp}/egressd-fuzz), CLANGXX
# (default clang++), FUZZ_JOBS (parallel compiles, default nproc).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "run.sh: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(response_parser url egress_policy content_decoder redirect)

out="${FUZZ_OUT:-${TMPDIR:-/tmp}/egressd-fuzz}"
cxx="${CLANGXX:-clang++}"
jobs="${FUZZ_JOBS:-$(nproc)}"

# The client_core sources each target links.
sources_of() {
  case "$1" in
    response_parser)
      echo client_core/http1/response_parser.cc client_core/http/header.cc ;;
    url)
      echo client_core/url/url.cc ;;
    egress_policy)
      echo client_core/policy/cidr.cc client_core/policy/address_class.cc \
        client_core/policy/egress_policy.cc ;;
    content_decoder)
      echo client_core/http/content_decoder.cc client_core/http/header.cc ;;
    redirect)
      echo client_core/call/redirect.cc client_core/url/url.cc \
        client_core/http/header.cc ;;
    *)
      echo "run.sh: unknown target '$1' (response_parser, url, egress_policy, content_decoder, redirect)" >&2
      return 1 ;;
  esac
}

# System libraries a target links besides Abseil (as //third_party wraps
# them).
libs_of() {
  case "$1" in
    content_decoder) echo -lz -lbrotlidec ;;
    *) ;;
  esac
}

if ! command -v "$cxx" >/dev/null; then
  echo "run.sh: $cxx not found; install Debian's clang and libclang-rt-14-dev" >&2
  exit 2
fi

# Same flags for the library code and the targets, so UBSan and ASan see
# both; -fno-sanitize-recover turns UB into a crash libFuzzer reports.
common=(-std=c++20 -O1 -g -fno-omit-frame-pointer
        -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -I. -DASIO_STANDALONE -DASIO_NO_DEPRECATED
        -Wall -Wno-sign-compare)
# //third_party:absl's link flags, read from its BUILD file so the two agree.
mapfile -t absl_libs < <(grep -o '"-labsl_[a-z0-9_]*"' third_party/BUILD.bazel | tr -d '"')
if [ ${#absl_libs[@]} -eq 0 ]; then
  echo "run.sh: found no -labsl_* flags in third_party/BUILD.bazel" >&2
  exit 2
fi

mkdir -p "$out/obj" "$out/bin" "$out/logs"

# --- build -------------------------------------------------------------------
objects_for() {
  local src
  for src in "$@"; do
    echo "$out/obj/$(echo "$src" | tr '/' '_' | sed 's/\.cc$/.o/')"
  done
}

declare -A wanted_sources=()
for t in "${targets[@]}"; do
  for src in $(sources_of "$t"); do wanted_sources["$src"]=1; done
done

echo "=== fuzz: building ${targets[*]} with $cxx into $out" >&2
build_failed=0
pids=()
for src in "${!wanted_sources[@]}"; do
  obj=$(objects_for "$src")
  "$cxx" "${common[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || build_failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || build_failed=1; done
if [ "$build_failed" -ne 0 ]; then
  echo "run.sh: compiling client_core sources failed" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  # shellcheck disable=SC2046
  "$cxx" "${common[@]}" -fsanitize=fuzzer "tests/fuzz/${t}_fuzzer.cc" \
    $(objects_for $(sources_of "$t")) \
    -Wl,--as-needed "${absl_libs[@]}" $(libs_of "$t") -pthread -o "$out/bin/$t"
done

# --- run ---------------------------------------------------------------------
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for t in "${targets[@]}"; do
  work="$out/corpus/$t"
  artifacts="$out/artifacts/$t"
  log="$out/logs/$t.log"
  mkdir -p "$work" "$artifacts"
  echo "=== fuzz: $t for ${seconds}s (log: $log)" >&2
  rc=0
  # The first corpus directory receives new inputs; the seed corpus is only
  # read. -timeout: one input taking longer is a failure (a hang or a
  # quadratic path); -rss_limit_mb: so is blowing up memory.
  "$out/bin/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -print_final_stats=1 \
    -dict="tests/fuzz/dict/$t.dict" \
    -artifact_prefix="$artifacts/" \
    "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "--- $t FAILED (exit $rc); last lines of $log:" >&2
    tail -n 60 "$log" >&2
    ls -1 "$artifacts" >&2 || true
  else
    echo "--- $t OK: ${runs:-?} inputs, ${cov:-cov ?}, no crash, leak or timeout" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "=== fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "=== fuzz: all targets passed (${targets[*]}, ${seconds}s each)" >&2
