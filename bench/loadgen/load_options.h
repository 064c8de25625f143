// What a load-generator run should do, shared by the gRPC and h2c drivers,
// and the one clock they measure with.
#ifndef EGRESS_BENCH_LOADGEN_LOAD_OPTIONS_H_
#define EGRESS_BENCH_LOADGEN_LOAD_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace egress::bench {

struct LoadOptions {
  std::string label;
  // host:port of the server under load; loopback only (checked by main).
  std::string target;
  // "open": calls start on a fixed schedule of `rate` per second, whatever
  // the server does; latency counts from each call's intended start.
  // "closed": `concurrency` calls are kept outstanding; each completion
  // starts the next one.
  bool open_loop = false;
  double rate = 1000;
  int concurrency = 64;
  // gRPC channels (each with its own TCP connection) or h2c connections.
  int connections = 4;
  // Measured window = duration; warm-up runs before it, unmeasured.
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(1);
  // Per-call deadline; it also bounds how long the drain after the window
  // may take, so every run ends by itself.
  absl::Duration timeout = absl::Seconds(5);
  // Open loop: the most calls outstanding at once. Past it the schedule
  // waits, and the wait shows as latency (never as a lower offered rate
  // that goes unreported).
  int max_outstanding = 20000;
};

// Monotonic nanoseconds; all intended and actual times use this clock.
inline int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace egress::bench

#endif  // EGRESS_BENCH_LOADGEN_LOAD_OPTIONS_H_
