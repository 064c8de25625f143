// RunReport: what one load-generator run measured, and its text and JSON
// forms. Both drivers (gRPC and h2c) fill the same report, so a script can
// put egressd and its peers side by side from the JSON alone.
//
// Vocabulary:
//   window      the measured interval [warm-up end, stop): calls whose
//               (intended) start falls inside it are "measured calls".
//   latency     from a measured call's start to its completion. In open loop
//               the start is the *intended* send time of the schedule, not
//               the moment the generator managed to send, so a stall of the
//               server (or of the generator) shows as latency instead of
//               silently lowering the offered rate (coordinated omission).
//   send lag    how late the generator sent a call after its intended time:
//               a large lag means the generator itself could not keep up.
//   throughput  calls completed inside the window, whatever their status,
//               divided by the window's length.
#ifndef EGRESS_BENCH_LOADGEN_REPORT_H_
#define EGRESS_BENCH_LOADGEN_REPORT_H_

#include <cstdint>
#include <map>
#include <string>

#include "bench/loadgen/histogram.h"

namespace egress::bench {

struct RunReport {
  // What was run.
  std::string label;
  std::string protocol;  // "grpc" or "h2c"
  std::string mode;      // "open" or "closed"
  std::string target;    // host:port the generator connected to
  std::string request;   // the Fetch URL (grpc) or :path (h2c)
  double offered_rate = 0;  // open loop: calls/s; 0 in closed loop
  int concurrency = 0;      // closed loop: calls kept outstanding
  int connections = 0;      // gRPC channels or h2c connections
  double window_seconds = 0;

  // What was measured (measured calls only, except completed_in_window).
  int64_t measured_calls = 0;
  int64_t completed_in_window = 0;
  // Every call that ended, warm-up and drain included: what the servers
  // did while the generator ran (CPU per request divides by it).
  int64_t all_calls = 0;
  // Calls that ended without a response, keyed by reason: a gRPC status code
  // name ("UNAVAILABLE"), "RST_STREAM", "CONNECTION_ERROR", ...; an OK gRPC
  // call or a complete HTTP response is counted under "OK".
  std::map<std::string, int64_t> status;
  // HTTP status codes of the responses: FetchResponse.status_code (grpc) or
  // :status (h2c).
  std::map<int, int64_t> http_status;
  int64_t response_body_bytes = 0;
  LatencyHistogram latency_ns;
  LatencyHistogram send_lag_ns;

  double Throughput() const {
    return window_seconds > 0 ? completed_in_window / window_seconds : 0;
  }
  // Calls not counted under "OK".
  int64_t Errors() const;
  // Adds another thread's or connection's counts (not the config fields).
  void Merge(const RunReport& other);
};

// A few human-readable lines.
std::string FormatText(const RunReport& report);
// One JSON object; latencies in microseconds with one decimal.
std::string FormatJson(const RunReport& report);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_LOADGEN_REPORT_H_
