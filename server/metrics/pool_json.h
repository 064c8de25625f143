// The pool as JSON for the web page (GET /api/pool, polled by page_html.h).
//
// Not a stable API: the page is its only client (scripts use PoolAdmin or
// egressctl --json). Shape, all times as Unix milliseconds:
//   { "now", "started", "per_address_metrics",
//     "totals": { connections, idle, in_use, connecting, pending,
//                 requests_in_flight, connections_opened, connect_failures,
//                 cleanup_wakeups, leaks, succeeded, failed,
//                 on_new_connection, on_reused_connection },
//     "timing_avg_ms": { queue_wait, dns, connect, tls, first_byte, total },
//     "histograms": { <phase>: { "bounds": [s...], "counts": [n...] } },
//     "closed_by_reason": [ {reason, count} ], "rejected_by_limit": [ ... ],
//     "config": { limits, keep_alive_ms, ... },
//     "addresses": [ {..., http2, exchanges} ], "addresses_total",
//     "connections": [ {..., protocol, tls, allocations,
//                       allocation_limit} ],
//     "connections_total", "connections_listed_all",
//     "leaks": [ {...} ], "events": [ {time, kind, connection_id, address,
//     detail} ] }
// Strings are escaped so the text is safe inside any HTML context too
// (<, >, & as \u escapes); the page still inserts them as text only.
#ifndef EGRESS_SERVER_METRICS_POOL_JSON_H_
#define EGRESS_SERVER_METRICS_POOL_JSON_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/metrics/pool_events.h"
#include "server/metrics/pool_metrics.h"

namespace egress::metrics {

struct PoolPageData {
  absl::Time now;
  absl::Time started;
  bool per_address_metrics = false;
  PoolState state;
  // The look the events were derived from (connections, leaks).
  PoolLook look;
  std::vector<PoolEvent> events;  // newest first
};

// At most this many addresses are listed (those with the most connections
// and calls in flight); "addresses_total" says how many there are.
inline constexpr size_t kMaxAddressesListed = 1000;

std::string RenderPoolJson(const PoolPageData& data);

// `text` as a JSON string literal, quotes included.
std::string JsonString(absl::string_view text);

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_POOL_JSON_H_
