// The pool's state as Prometheus metrics: what /metrics serves.
//
// Every metric is named egressd_<what>[_<unit>][_total] (Prometheus
// naming); the full list with meanings is in docs/configuration.md
// ("Metrics"). Label values come from fixed lists (states, close reasons,
// limits, protocols, status classes, status codes) and every value of a
// list is written, zeros included, so a rate() sees a series from its
// first scrape. Per-address series (label `address`) are written only with
// PoolMetricsOptions::per_address, because their number grows with the
// number of origins.
//
// Pure functions of a PoolState; thread-compatible.
#ifndef EGRESS_SERVER_METRICS_POOL_METRICS_H_
#define EGRESS_SERVER_METRICS_POOL_METRICS_H_

#include <cstdint>
#include <string>

#include "client_core/call/http_client.h"
#include "client_core/connection/pool.h"
#include "client_core/connection/pool_options.h"
#include "server/metrics/call_metrics.h"
#include "server/metrics/prometheus_text.h"

namespace egress::metrics {

// What the metrics are rendered from, read at one scrape.
struct PoolState {
  PoolSnapshot pool;
  PoolOptions options;
  CallTotals calls;
  uint64_t leaks_total = 0;
  ResilienceTotals resilience;
  CallMetrics::Reading call_metrics;
};

struct PoolMetricsOptions {
  // Also write per-address gauges and counters (egressd_address_*),
  // labelled by address ("http://host:port"). Off by default: one series
  // set per origin can be many.
  bool per_address = false;
};

// Reads `client`'s pool, totals and leaks, and `call_metrics`. Takes the
// pool's lock once (Snapshot), for as long as copying its counters takes.
PoolState ReadPoolState(HttpClient& client, const CallMetrics& call_metrics);

// Writes every egressd_ family into `writer`.
void WritePoolMetrics(const PoolState& state, const PoolMetricsOptions& options,
                      ExpositionWriter* writer);

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_POOL_METRICS_H_
