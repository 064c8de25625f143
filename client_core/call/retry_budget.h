// RetryBudget: bounds the retries in flight relative to the calls in flight,
// so that retries cannot multiply the load on an origin that is already
// failing (Envoy's retry budget, envoy.config.cluster.v3.CircuitBreakers
// .Thresholds.RetryBudget).
//
// A retry may start while
//   retries in flight < max(min_retry_concurrency,
//                           budget_percent% of the calls in flight)
// A retry is *in flight* from TryAcquire until Release (HttpClient holds one
// across a retry's backoff and its connect). With the defaults (20%, at
// least 3) a quiet client may always retry a few calls, and during an outage
// at most one call in five is a retry.
//
// Thread-safe and lock-free: one atomic counter.
#ifndef EGRESS_CLIENT_CORE_CALL_RETRY_BUDGET_H_
#define EGRESS_CLIENT_CORE_CALL_RETRY_BUDGET_H_

#include <atomic>
#include <cstdint>

namespace egress {

struct RetryBudgetOptions {
  // Share of the calls in flight that may be retries, 0..100. Default 20
  // (Envoy's default).
  double budget_percent = 20.0;
  // Retries allowed whatever the share. Default 3 (Envoy's default).
  uint32_t min_retry_concurrency = 3;
};

class RetryBudget {
 public:
  explicit RetryBudget(const RetryBudgetOptions& options) : options_(options) {}

  RetryBudget(const RetryBudget&) = delete;
  RetryBudget& operator=(const RetryBudget&) = delete;

  // Retries that may be in flight with `active_calls` calls in flight.
  int64_t Allowed(int64_t active_calls) const;

  // Takes a retry slot when the budget has one for `active_calls`; counts
  // the grant or the denial. A granted slot must be Released.
  bool TryAcquire(int64_t active_calls);
  void Release() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }

  int64_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }
  // Since construction.
  uint64_t granted() const { return granted_.load(std::memory_order_relaxed); }
  uint64_t denied() const { return denied_.load(std::memory_order_relaxed); }
  const RetryBudgetOptions& options() const { return options_; }

 private:
  const RetryBudgetOptions options_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> granted_{0};
  std::atomic<uint64_t> denied_{0};
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_RETRY_BUDGET_H_
