// loadgen: load generator for egressd's Fetch and, for side-by-side runs,
// for HTTP/2 proxies and origins.
//
//   # gRPC client (completion-queue API), open loop at 1,000 calls/s:
//   loadgen --target=127.0.0.1:7070 --url=http://127.0.0.1:8080/1k
//       --mode=open --rate=1000 --duration=10s --json_out=egressd.json
//   # the same Fetch as a pre-encoded gRPC POST over plain HTTP/2:
//   loadgen --protocol=h2c --target=127.0.0.1:7070
//       --grpc_fetch_url=http://127.0.0.1:8080/1k --mode=open --rate=1000
//   # a GET through an h2c proxy (nginx, haproxy) or to the origin:
//   loadgen --protocol=h2c --target=127.0.0.1:8081 --path=/1k --mode=open
//   # closed loop: 128 calls kept outstanding
//   loadgen --target=127.0.0.1:7070 --url=... --mode=closed --concurrency=128
//
// Every run is bounded: warm-up + duration, then at most the per-call
// timeout to drain. Only loopback targets and URLs are accepted. Exit
// status: 0 when every measured call was OK, 3 when some failed (the report
// says which), 2 for bad flags, 1 when the run could not be made.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "bench/h2load_fetch/fetch_body.h"
#include "bench/loadgen/grpc_driver.h"
#include "bench/loadgen/h2c_driver.h"
#include "bench/loadgen/load_options.h"
#include "bench/loadgen/loopback.h"
#include "bench/loadgen/report.h"

ABSL_FLAG(std::string, protocol, "grpc",
          "grpc: Fetch through the gRPC client library; h2c: plain HTTP/2 "
          "requests (a GET of --path, or a pre-encoded Fetch with "
          "--grpc_fetch_url).");
ABSL_FLAG(std::string, target, "", "HOST:PORT to load (loopback only).");
ABSL_FLAG(std::string, mode, "closed",
          "open: a fixed --rate, latency from each intended send time; "
          "closed: --concurrency calls outstanding.");
ABSL_FLAG(double, rate, 1000, "Open loop: calls per second.");
ABSL_FLAG(int, concurrency, 64, "Closed loop: calls kept outstanding.");
ABSL_FLAG(int, connections, 4, "gRPC channels / h2c connections.");
ABSL_FLAG(int, threads, 1, "grpc: completion-queue threads.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured window.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1),
          "Unmeasured load before the window.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5),
          "Per-call deadline; also bounds the drain after the window.");
ABSL_FLAG(int, max_outstanding, 20000,
          "Open loop: most calls outstanding; past it the schedule waits "
          "(and the wait counts as latency).");
ABSL_FLAG(std::string, url, "", "grpc: FetchRequest.url (loopback only).");
ABSL_FLAG(std::string, method, "GET",
          "FetchRequest.method (grpc, --grpc_fetch_url) or the h2c :method.");
ABSL_FLAG(std::string, path, "/", "h2c: :path of a plain request.");
ABSL_FLAG(std::string, grpc_fetch_url, "",
          "h2c: send a pre-encoded Fetch of this URL (loopback only) instead "
          "of a plain request.");
ABSL_FLAG(std::vector<std::string>, header, {},
          "h2c: extra request headers, NAME=VALUE, comma-separated.");
ABSL_FLAG(std::string, label, "", "Name of the run in the report.");
ABSL_FLAG(std::string, json_out, "", "Also write the report as JSON here.");

namespace egress::bench {
namespace {

int BadFlag(const std::string& message) {
  std::fprintf(stderr, "loadgen: %s\n", message.c_str());
  return 2;
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "loadgen --target=127.0.0.1:PORT (--url=URL | --protocol=h2c "
      "[--path=P | --grpc_fetch_url=URL]) [--mode=open --rate=N | "
      "--mode=closed --concurrency=N] [--duration=10s] [--json_out=FILE]");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) return BadFlag("unexpected positional argument");

  LoadOptions options;
  options.label = absl::GetFlag(FLAGS_label);
  options.target = absl::GetFlag(FLAGS_target);
  options.rate = absl::GetFlag(FLAGS_rate);
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.connections = absl::GetFlag(FLAGS_connections);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const std::string protocol = absl::GetFlag(FLAGS_protocol);

  if (!IsLoopbackTarget(options.target)) {
    return BadFlag("--target must be a loopback HOST:PORT (127.0.0.0/8, "
                   "localhost, [::1])");
  }
  if (mode != "open" && mode != "closed") {
    return BadFlag("--mode must be open or closed");
  }
  options.open_loop = mode == "open";
  if (options.open_loop && !(options.rate > 0 && options.rate <= 1e6)) {
    return BadFlag("--rate must be in (0, 1e6]");
  }
  if (!options.open_loop &&
      (options.concurrency < 1 || options.concurrency > 100000)) {
    return BadFlag("--concurrency must be in [1, 100000]");
  }
  if (options.connections < 1 || options.connections > 1000) {
    return BadFlag("--connections must be in [1, 1000]");
  }
  if (options.duration <= absl::ZeroDuration() ||
      options.duration > absl::Hours(1) || options.warmup < absl::ZeroDuration() ||
      options.timeout <= absl::ZeroDuration()) {
    return BadFlag("--duration must be in (0, 1h], --warmup >= 0, "
                   "--timeout > 0");
  }
  if (options.max_outstanding < 1) return BadFlag("--max_outstanding >= 1");

  absl::StatusOr<RunReport> report;
  if (protocol == "grpc") {
    GrpcFetchOptions fetch;
    fetch.url = absl::GetFlag(FLAGS_url);
    fetch.method = absl::GetFlag(FLAGS_method);
    fetch.threads = absl::GetFlag(FLAGS_threads);
    if (!IsLoopbackUrl(fetch.url)) {
      return BadFlag("--url must be an http(s) URL of a loopback host");
    }
    if (fetch.threads < 1 || fetch.threads > 64) {
      return BadFlag("--threads must be in [1, 64]");
    }
    report = RunGrpcLoad(options, fetch);
  } else if (protocol == "h2c") {
    H2cRequest request;
    request.method = absl::GetFlag(FLAGS_method);
    request.path = absl::GetFlag(FLAGS_path);
    const std::string fetch_url = absl::GetFlag(FLAGS_grpc_fetch_url);
    if (!fetch_url.empty()) {
      if (!IsLoopbackUrl(fetch_url)) {
        return BadFlag("--grpc_fetch_url must name a loopback host");
      }
      v1::FetchRequest fetch;
      fetch.set_method(request.method);
      fetch.set_url(fetch_url);
      request.method = "POST";
      request.path = kFetchPath;
      request.body = EncodeFetchBody(fetch);
      request.grpc = true;
      request.headers = {{"content-type", "application/grpc"},
                         {"te", "trailers"}};
    }
    for (const std::string& h : absl::GetFlag(FLAGS_header)) {
      std::vector<std::string> kv = absl::StrSplit(h, absl::MaxSplits('=', 1));
      if (kv.size() != 2 || kv[0].empty()) {
        return BadFlag("--header wants NAME=VALUE");
      }
      request.headers.emplace_back(kv[0], kv[1]);
    }
    report = RunH2cLoad(options, request);
  } else {
    return BadFlag("--protocol must be grpc or h2c");
  }

  if (!report.ok()) {
    std::fprintf(stderr, "loadgen: %s\n", report.status().ToString().c_str());
    // gRPC may still own calls (see RunGrpcLoad): leave without running
    // destructors.
    std::fflush(stderr);
    std::_Exit(1);
  }
  std::fputs(FormatText(*report).c_str(), stdout);
  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  if (!json_out.empty()) {
    std::ofstream out(json_out, std::ios::trunc);
    out << FormatJson(*report);
    out.close();
    if (!out) {
      std::fprintf(stderr, "loadgen: cannot write %s\n", json_out.c_str());
      return 1;
    }
  }
  return report->Errors() == 0 ? 0 : 3;
}

}  // namespace
}  // namespace egress::bench

int main(int argc, char** argv) { return egress::bench::Run(argc, argv); }
