#include "server/metrics/pool_metrics.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client_core/connection/close_reason.h"

namespace egress::metrics {
namespace {

absl::string_view View(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

uint64_t U64(size_t v) { return static_cast<uint64_t>(v); }

struct PhaseFamily {
  Phase phase;
  const char* name;
  const char* help;
};

constexpr PhaseFamily kPhaseFamilies[] = {
    {Phase::kTotal, "egressd_request_duration_seconds",
     "Duration of succeeded calls, from the call's start to its last "
     "response byte."},
    {Phase::kQueueWait, "egressd_request_queue_wait_seconds",
     "Time succeeded calls waited in the pool's pending queue for a "
     "connection (0 when none was needed)."},
    {Phase::kDns, "egressd_request_dns_seconds",
     "DNS lookup time of calls that opened a new connection."},
    {Phase::kConnect, "egressd_request_connect_seconds",
     "TCP connect time of calls that opened a new connection."},
    {Phase::kTls, "egressd_request_tls_seconds",
     "TLS handshake time of calls that opened a new TLS connection."},
    {Phase::kFirstByte, "egressd_request_first_byte_seconds",
     "Time from a succeeded call's start to the first response byte."},
};

void WritePerAddress(const PoolSnapshot& pool, ExpositionWriter* w) {
  w->Family("egressd_address_connections", MetricType::kGauge,
            "Connections of one address by state (only with "
            "--metrics_per_address).");
  for (const PoolSnapshot::AddressCounts& a : pool.addresses) {
    const std::string address = a.address.ToString();
    w->Sample({{"address", address}, {"state", "idle"}}, U64(a.idle_count));
    w->Sample({{"address", address}, {"state", "in_use"}}, U64(a.in_use_count));
    w->Sample({{"address", address}, {"state", "connecting"}},
              U64(a.connecting_count));
  }
  w->Family("egressd_address_pending_calls", MetricType::kGauge,
            "Calls of one address waiting for a connection (only with "
            "--metrics_per_address).");
  for (const PoolSnapshot::AddressCounts& a : pool.addresses) {
    w->Sample({{"address", a.address.ToString()}}, U64(a.pending_count));
  }
  w->Family("egressd_address_requests_in_flight", MetricType::kGauge,
            "Calls of one address in flight, waiting or holding a connection "
            "(only with --metrics_per_address).");
  for (const PoolSnapshot::AddressCounts& a : pool.addresses) {
    w->Sample({{"address", a.address.ToString()}}, U64(a.requests_in_flight));
  }
  w->Family("egressd_address_requests_served_total", MetricType::kCounter,
            "Exchanges completed over one address's connections; restarts "
            "from 0 when the address left the pool (only with "
            "--metrics_per_address).");
  for (const PoolSnapshot::AddressCounts& a : pool.addresses) {
    w->Sample({{"address", a.address.ToString()}}, a.requests_served);
  }
}

}  // namespace

PoolState ReadPoolState(HttpClient& client, const CallMetrics& call_metrics) {
  PoolState state;
  state.pool = client.pool().Snapshot();
  state.options = client.pool().options();
  state.calls = client.totals();
  state.leaks_total = client.leaks().total();
  state.resilience = client.resilience();
  state.call_metrics = call_metrics.Read();
  return state;
}

void WritePoolMetrics(const PoolState& state, const PoolMetricsOptions& options,
                      ExpositionWriter* w) {
  const PoolSnapshot& pool = state.pool;
  w->Family("egressd_connections", MetricType::kGauge,
            "Pooled connections by state: idle, in_use (carrying an "
            "exchange) or connecting (being opened).");
  w->Sample({{"state", "idle"}}, U64(pool.idle_count));
  w->Sample({{"state", "in_use"}}, U64(pool.in_use_count));
  w->Sample({{"state", "connecting"}}, U64(pool.connecting_count));

  w->Family("egressd_connections_opened_total", MetricType::kCounter,
            "Connections opened since start.");
  w->Sample({}, pool.connections_opened);

  w->Family("egressd_connections_closed_total", MetricType::kCounter,
            "Connections closed since start, by reason; every closed "
            "connection counts under exactly one reason.");
  for (CloseReason reason : kAllCloseReasons) {
    w->Sample({{"reason", View(CloseReasonName(reason))}},
              pool.closed_by_reason[static_cast<size_t>(reason)]);
  }

  uint64_t http2 = 0;
  uint64_t exchanges = 0;
  for (const PoolSnapshot::AddressCounts& a : pool.addresses) {
    http2 += a.http2_count;
    exchanges += a.allocations;
  }
  w->Family("egressd_protocol_connections", MetricType::kGauge,
            "Open connections by the HTTP protocol they speak.");
  w->Sample({{"protocol", "http/1.1"}},
            U64(pool.connection_count) -
                std::min<uint64_t>(http2, pool.connection_count));
  w->Sample({{"protocol", "h2"}}, http2);

  w->Family("egressd_exchanges_in_flight", MetricType::kGauge,
            "Exchanges running on open connections (each HTTP/2 stream "
            "counts one).");
  w->Sample({}, exchanges);

  w->Family("egressd_connect_failures_total", MetricType::kCounter,
            "Connection attempts that failed on every route.");
  w->Sample({}, pool.connect_failures);

  w->Family("egressd_pending_calls", MetricType::kGauge,
            "Calls waiting in the pool's queues for a connection.");
  w->Sample({}, U64(pool.pending_count));

  w->Family("egressd_requests_in_flight", MetricType::kGauge,
            "Calls in flight: admitted and not yet ended.");
  w->Sample({}, U64(pool.requests_in_flight));

  w->Family("egressd_addresses", MetricType::kGauge,
            "Addresses (scheme://host:port) the pool holds state for.");
  w->Sample({}, U64(pool.addresses.size()));

  w->Family("egressd_rejections_total", MetricType::kCounter,
            "Calls refused with RESOURCE_EXHAUSTED, by the limit that "
            "refused them.");
  for (size_t i = 0; i < kPoolLimitCount; ++i) {
    w->Sample({{"limit", PoolLimitName(static_cast<PoolLimit>(i))}},
              pool.rejected_by_limit[i]);
  }

  w->Family("egressd_leaks_total", MetricType::kCounter,
            "Leaked allocations detected since start (PoolAdmin.ListLeaks).");
  w->Sample({}, state.leaks_total);

  const ResilienceTotals& r = state.resilience;
  w->Family("egressd_safety_events_total", MetricType::kCounter,
            "What the safety and resilience features did since start: "
            "connect retries started and refused by the retry budget, "
            "redirects followed, calls refused by the per-caller limit or "
            "the request limits, exchanges ended by the first-byte or "
            "idle-read timeout, responses decoded, decodings stopped by a "
            "size or ratio limit.");
  w->Sample({{"event", "connect_retry"}}, r.connect_retries);
  w->Sample({{"event", "retry_budget_exhausted"}}, r.retry_budget_exhausted);
  w->Sample({{"event", "redirect_followed"}}, r.redirects_followed);
  w->Sample({{"event", "rejected_per_caller"}}, r.rejected_per_caller);
  w->Sample({{"event", "rejected_request_limits"}}, r.rejected_request_limits);
  w->Sample({{"event", "first_byte_timeout"}}, r.first_byte_timeouts);
  w->Sample({{"event", "idle_read_timeout"}}, r.idle_read_timeouts);
  w->Sample({{"event", "response_decoded"}}, r.responses_decoded);
  w->Sample({{"event", "decompression_limit"}}, r.decompression_limit_hits);

  w->Family("egressd_cleanup_wakeups_total", MetricType::kCounter,
            "Times the pool's eviction timer woke up.");
  w->Sample({}, pool.cleanup_wakeups);

  const PoolOptions& o = state.options;
  w->Family("egressd_pool_limit", MetricType::kGauge,
            "The pool's configured limits (0: no limit), for ratios such as "
            "connections over max_connections.");
  w->Sample({{"limit", "max_idle_connections"}}, U64(o.max_idle_connections));
  w->Sample({{"limit", "max_idle_per_address"}}, U64(o.max_idle_per_address));
  w->Sample({{"limit", "max_connections"}}, U64(o.max_connections));
  w->Sample({{"limit", "max_connections_per_address"}},
            U64(o.max_connections_per_address));
  w->Sample({{"limit", "max_requests_in_flight"}},
            U64(o.max_requests_in_flight));
  w->Sample({{"limit", "max_requests_in_flight_per_address"}},
            U64(o.max_requests_in_flight_per_address));
  w->Sample({{"limit", "max_pending_per_address"}},
            U64(o.max_pending_per_address));

  w->Family("egressd_requests_total", MetricType::kCounter,
            "Calls ended since start by outcome: succeeded (a response, "
            "whatever its HTTP status) or failed (an error status). Calls "
            "refused before admission are not counted here (see "
            "egressd_request_errors_total).");
  w->Sample({{"outcome", "succeeded"}}, state.calls.succeeded);
  w->Sample({{"outcome", "failed"}}, state.calls.failed);

  w->Family("egressd_succeeded_requests_total", MetricType::kCounter,
            "Succeeded calls by the connection that served them: new "
            "(opened for the call) or reused (from the pool).");
  w->Sample({{"connection", "new"}}, state.calls.on_new_connection);
  w->Sample({{"connection", "reused"}}, state.calls.on_reused_connection);

  const CallMetrics::Reading& m = state.call_metrics;
  w->Family("egressd_responses_total", MetricType::kCounter,
            "Responses returned by Fetch and FetchStream, by HTTP protocol "
            "and status class.");
  for (size_t p = 0; p < kProtocols.size(); ++p) {
    for (size_t c = 0; c < kStatusClasses.size(); ++c) {
      w->Sample(
          {{"protocol", kProtocols[p]}, {"status_class", kStatusClasses[c]}},
          m.responses[p][c]);
    }
  }

  w->Family("egressd_request_errors_total", MetricType::kCounter,
            "Fetch and FetchStream calls that ended with an error, by gRPC "
            "status code, including calls the HTTP client refused before "
            "they started (invalid request, limits, shutdown).");
  for (size_t code = 1; code < kStatusCodeCount; ++code) {
    const std::string name =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    w->Sample({{"code", name}}, m.errors[code]);
  }

  for (const PhaseFamily& f : kPhaseFamilies) {
    w->Family(f.name, MetricType::kHistogram, f.help);
    w->Histogram({}, m.phases[static_cast<size_t>(f.phase)]);
  }

  if (options.per_address) WritePerAddress(pool, w);
}

}  // namespace egress::metrics
