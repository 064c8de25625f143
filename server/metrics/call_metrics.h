// CallMetrics: what the Fetch path records about each completed call for
// /metrics — latency histograms and outcome counters that PoolSnapshot and
// CallTotals do not hold (those are sums, these are distributions).
//
// Vocabulary:
//   completed call  a Fetch or FetchStream whose HttpClient call ended, with
//                   a Response (succeeded) or an error status (failed),
//                   including calls refused before they started (invalid
//                   request, limits, shutdown).
//   phase           one of CallTiming's durations: total, queue_wait, dns,
//                   connect, tls, first_byte.
//
// Recording (Record) is lock-free and cheap: a few relaxed atomic adds in
// a shard chosen per thread, so event-loop threads recording at once do
// not share cache lines. Reading (Read) sums the shards; a reading taken
// while calls complete is not one instant, but every histogram it returns
// is consistent in itself (its _count is the sum of its buckets).
//
// Thread-safe.
#ifndef EGRESS_SERVER_METRICS_CALL_METRICS_H_
#define EGRESS_SERVER_METRICS_CALL_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/http/request.h"
#include "server/metrics/prometheus_text.h"

namespace egress::metrics {

// The CallTiming phases with a histogram, in exposition order.
enum class Phase { kTotal, kQueueWait, kDns, kConnect, kTls, kFirstByte };
inline constexpr size_t kPhaseCount = 6;

// Upper bounds of every latency histogram's buckets, in seconds: 0.5 ms to
// 60 s, roughly 1-2.5-5 per decade (Prometheus' usual spacing).
inline constexpr std::array<double, 16> kLatencyBoundsSeconds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,   1,      2.5,   5,    10,    30,   60};

// Protocols a succeeded call is counted under; anything else is "other".
inline constexpr std::array<absl::string_view, 3> kProtocols = {"http/1.1",
                                                                "h2", "other"};
// HTTP status classes; "other" for codes outside 100-599.
inline constexpr std::array<absl::string_view, 6> kStatusClasses = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "other"};
// absl (= gRPC) status codes 0..16; index 0 (OK) is never counted.
inline constexpr size_t kStatusCodeCount = 17;

class CallMetrics {
 public:
  // A reading, summed over the shards.
  struct Reading {
    // Indexed by Phase.
    std::array<HistogramData, kPhaseCount> phases;
    // Succeeded calls, [protocol][status class] as indexed by kProtocols
    // and kStatusClasses.
    std::array<std::array<uint64_t, kStatusClasses.size()>, kProtocols.size()>
        responses{};
    // Failed calls by absl::StatusCode.
    std::array<uint64_t, kStatusCodeCount> errors{};
  };

  CallMetrics() = default;
  CallMetrics(const CallMetrics&) = delete;
  CallMetrics& operator=(const CallMetrics&) = delete;

  // The instance the Fetch path records into (RecordCompletedCall) and
  // egressd's metrics server reads. Never destroyed, so event-loop threads
  // may record until the process exits.
  static CallMetrics& Global();

  // Records one completed call. Succeeded: counts its protocol and status
  // class and observes its phases — total, queue_wait and first_byte always,
  // dns, connect and tls only when they happened (a new connection), so
  // those histograms describe connection set-up, not a mix with zeros.
  // Failed: counts its status code.
  void Record(const absl::StatusOr<Response>& result);

  Reading Read() const;

  // "http/1.1" -> 0, "h2" -> 1, else 2 (kProtocols).
  static size_t ProtocolIndex(absl::string_view protocol);
  // 200 -> 1 ("2xx"); outside 100-599 -> 5 (kStatusClasses).
  static size_t StatusClassIndex(int status_code);

 private:
  static constexpr size_t kBuckets = kLatencyBoundsSeconds.size() + 1;
  static constexpr size_t kShards = 16;

  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets> counts{};
    std::atomic<uint64_t> sum_nanos{0};
  };
  // One thread's (or a few threads') counters, on cache lines of its own.
  struct alignas(64) Shard {
    std::array<Histogram, kPhaseCount> phases;
    std::array<std::array<std::atomic<uint64_t>, kStatusClasses.size()>,
               kProtocols.size()>
        responses{};
    std::array<std::atomic<uint64_t>, kStatusCodeCount> errors{};
  };

  static void Observe(Histogram& h, absl::Duration d);
  Shard& ShardForThisThread();

  std::array<Shard, kShards> shards_;
};

// CallMetrics::Global().Record(result): the one call the Fetch path makes
// per completed call (server/fetch_service.cc).
void RecordCompletedCall(const absl::StatusOr<Response>& result);

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_CALL_METRICS_H_
