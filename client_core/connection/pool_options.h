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

  // A connection older than this takes no new exchanges and is closed when
  // its last one ends (reason max_lifetime); the next connection resolves
  // DNS again. 0: no limit. Set it when origins sit behind DNS-switched
  // deployments (blue/green) or load balancers that rebalance only new
  // connections (OkHttp #3520, #9218).
  absl::Duration max_connection_lifetime = absl::ZeroDuration();

  // Open and connecting connections, over all addresses. 0: no limit.
  // Default 16384: well below a sidecar's usual file-descriptor limit.
  size_t max_connections = 16384;

  // Open and connecting connections to one address. 0: no limit. Default
  // 1024, Envoy's default max_connections circuit breaker.
  size_t max_connections_per_address = 1024;

  // Calls in flight (waiting for, or holding, a connection) over all
  // addresses; one more fails at once with RESOURCE_EXHAUSTED. 0: no limit.
  // Default 65536.
  size_t max_requests_in_flight = 65536;

  // Calls in flight to one address; 0: no limit (the default).
  size_t max_requests_in_flight_per_address = 0;

  // Calls waiting for a connection of one address while its connection
  // limit is reached; one more fails at once with RESOURCE_EXHAUSTED.
  // Default 16384.
  size_t max_pending_per_address = 16384;

  // How long a call may wait in the pending queue before it fails with
  // RESOURCE_EXHAUSTED (the call's deadline may end it sooner). Default 10 s.
  absl::Duration pending_timeout = absl::Seconds(10);
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_POOL_OPTIONS_H_
