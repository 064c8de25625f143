// ExpireAt: arms an Asio steady timer for an absl::Time deadline.
//
// absl::Time is wall-clock based while asio::steady_timer is monotonic; the
// conversion goes through the time left, so a deadline in the past fires at
// once and absl::InfiniteFuture() never fires.
#ifndef EGRESS_CLIENT_CORE_ROUTE_TIMER_DEADLINE_H_
#define EGRESS_CLIENT_CORE_ROUTE_TIMER_DEADLINE_H_

#include "absl/time/time.h"
#include "asio/steady_timer.hpp"

namespace egress {

// Sets `timer` to expire at `deadline`, cancelling its pending waits.
inline void ExpireAt(asio::steady_timer& timer, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    timer.expires_at(asio::steady_timer::time_point::max());
    return;
  }
  absl::Duration left = deadline - absl::Now();
  if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
  // Beyond ~292 years the nanosecond count overflows; no deadline is that far.
  if (left > absl::Hours(24 * 365 * 100)) {
    timer.expires_at(asio::steady_timer::time_point::max());
    return;
  }
  timer.expires_after(absl::ToChronoNanoseconds(left));
}

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_ROUTE_TIMER_DEADLINE_H_
