#include "client_core/call/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace egress {

int64_t RetryBudget::Allowed(int64_t active_calls) const {
  const double share =
      std::floor(static_cast<double>(std::max<int64_t>(active_calls, 0)) *
                 options_.budget_percent / 100.0);
  return std::max<int64_t>(options_.min_retry_concurrency,
                           static_cast<int64_t>(share));
}

bool RetryBudget::TryAcquire(int64_t active_calls) {
  const int64_t allowed = Allowed(active_calls);
  int64_t current = in_flight_.load(std::memory_order_acquire);
  while (current < allowed) {
    if (in_flight_.compare_exchange_weak(current, current + 1,
                                         std::memory_order_acq_rel)) {
      granted_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  denied_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace egress
