// The gRPC driver: egress.v1.Fetcher/Fetch calls through gRPC's asynchronous
// completion-queue client API, the view of a real gRPC caller.
//
// Threads: the caller's thread runs the open-loop schedule (it only starts
// calls); `threads` completion-queue threads record completions and, in
// closed loop, start the next call. Each thread keeps its own counts, merged
// after they are joined, so nothing on the hot path takes a lock.
#ifndef EGRESS_BENCH_LOADGEN_GRPC_DRIVER_H_
#define EGRESS_BENCH_LOADGEN_GRPC_DRIVER_H_

#include <string>

#include "absl/status/statusor.h"
#include "bench/loadgen/load_options.h"
#include "bench/loadgen/report.h"

namespace egress::bench {

struct GrpcFetchOptions {
  // FetchRequest.url and .method of every call.
  std::string url;
  std::string method = "GET";
  // Completion-queue threads.
  int threads = 1;
};

// Runs the load to the end of the window, waits for every call still
// outstanding (each has the per-call deadline, so the wait is bounded), and
// returns what was measured. kUnavailable when a channel does not connect
// within 5 s. Should gRPC fail to end a call 5 s past its deadline, the
// process exits with status 1 (its threads cannot be joined).
absl::StatusOr<RunReport> RunGrpcLoad(const LoadOptions& options,
                                      const GrpcFetchOptions& fetch);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_LOADGEN_GRPC_DRIVER_H_
