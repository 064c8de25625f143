// CallerLimiter: a cap on the calls one caller may have in flight, so that
// one busy or stuck caller cannot take every slot of the pool's global
// limits (PoolOptions::max_requests_in_flight) from the others.
//
// A *caller* is an identity string chosen by the server (fetch_service.cc:
// the value of a configured gRPC metadata key, else the peer's IP). Callers
// are cooperative: a caller that lies about its identity escapes its own
// limit, not the global one.
//
// Only callers with calls in flight are tracked (an entry goes when its
// count returns to 0), so the memory is bounded by the calls in flight.
// The table is split into shards by hash so that unrelated callers rarely
// share a lock.
//
// Thread-safe.
#ifndef EGRESS_CLIENT_CORE_CALL_CALLER_LIMITS_H_
#define EGRESS_CLIENT_CORE_CALL_CALLER_LIMITS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "client_core/base/sync.h"

namespace egress {

class CallerLimiter {
 public:
  // `max_in_flight_per_caller` 0: no limit (nothing is tracked).
  explicit CallerLimiter(size_t max_in_flight_per_caller)
      : max_(max_in_flight_per_caller) {}

  CallerLimiter(const CallerLimiter&) = delete;
  CallerLimiter& operator=(const CallerLimiter&) = delete;

  bool enabled() const { return max_ > 0; }
  size_t max_in_flight_per_caller() const { return max_; }

  // Counts one more call of `caller`, or fails with kResourceExhausted
  // naming the caller and the limit when it already has the maximum:
  //   caller 'billing' has 8 calls in flight (max_in_flight_per_caller=8)
  // An empty caller is never limited. Each OK must be matched by Release.
  absl::Status Acquire(std::string_view caller);
  void Release(std::string_view caller);

  // Calls refused since construction.
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  // Callers with at least one call in flight now.
  size_t active_callers() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable Mutex mu;
    absl::flat_hash_map<std::string, uint32_t> in_flight ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(std::string_view caller);

  const size_t max_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_CALLER_LIMITS_H_
