// PoolOptions: how the ConnectionPool keeps connections. Every field says its
// default and why; egressd's flags and config map onto these.
#ifndef EGRESS_CLIENT_CORE_CONNECTION_POOL_OPTIONS_H_
#define EGRESS_CLIENT_CORE_CONNECTION_POOL_OPTIONS_H_

#include <cstddef>

#include "absl/time/time.h"

namespace egress {

struct PoolOptions {
  // Most idle connections kept over all addresses. When one more goes idle,
  // the least recently used idle connection is closed (reason max_idle).
  // 0 closes every connection as soon as it goes idle. Default 256: OkHttp's
  // 5 suits a phone; a sidecar serving many callers to a few origins wants a
  // warm connection per concurrent caller.
  size_t max_idle_connections = 256;

  // Most idle connections kept for one address (same rule, per address), so
  // one busy origin cannot hold every idle slot. Default 64.
  size_t max_idle_per_address = 64;

  // An idle connection is closed after this long (reason idle_timeout).
  // Default 30 s: below the idle timeouts of common servers and load
  // balancers (nginx 75 s, AWS ALB 60 s), so egressd usually closes first and
  // the keep-alive race (the origin closing a connection as we reuse it) is
  // rare.
  absl::Duration keep_alive = absl::Seconds(30);

  // A connection idle at least this long is health-checked (a non-blocking
  // peek for EOF or stray bytes) before it serves a request. Default 0:
  // always, because the check is one syscall and it catches an origin that
  // closed an idle connection before a non-idempotent request is written to
  // it (which could then not be retried).
  absl::Duration health_check_after_idle = absl::ZeroDuration();
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_POOL_OPTIONS_H_
