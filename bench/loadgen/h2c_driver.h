// The h2c driver: plain HTTP/2 (prior knowledge, no TLS) requests over a few
// connections, with nghttp2 on one thread (epoll + a timerfd for the
// open-loop schedule).
//
// Why it exists beside the gRPC driver: latency at a fixed rate must come
// from the same client for egressd and its peers (nginx, haproxy, the origin
// itself), or the comparison measures two clients. h2load has no usable
// fixed-rate latency, so this driver sends either a GET to a proxy or the
// origin, or egressd's gRPC Fetch as a pre-encoded POST (content-type
// application/grpc, te: trailers), whose outcome it reads from the
// grpc-status trailer.
//
// Requests beyond a connection's SETTINGS_MAX_CONCURRENT_STREAMS wait in
// nghttp2's queue; in open loop that wait counts as latency.
#ifndef EGRESS_BENCH_LOADGEN_H2C_DRIVER_H_
#define EGRESS_BENCH_LOADGEN_H2C_DRIVER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/loadgen/load_options.h"
#include "bench/loadgen/report.h"

namespace egress::bench {

struct H2cRequest {
  std::string method = "GET";
  std::string path = "/";
  // :authority; empty means LoadOptions.target.
  std::string authority;
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent as DATA when non-empty.
  std::string body;
  // A gRPC call: "OK" needs grpc-status 0 in the trailers.
  bool grpc = false;
};

// Runs the load to the end of the window, then lets outstanding requests
// finish until the per-call timeout; requests still open then are counted
// as "UNFINISHED". kUnavailable when a connection cannot be made.
absl::StatusOr<RunReport> RunH2cLoad(const LoadOptions& options,
                                     const H2cRequest& request);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_LOADGEN_H2C_DRIVER_H_
