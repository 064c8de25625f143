#include "server/metrics/call_metrics.h"

#include <algorithm>

namespace egress::metrics {
namespace {

// kLatencyBoundsSeconds in nanoseconds, so Observe compares integers.
constexpr std::array<int64_t, kLatencyBoundsSeconds.size()> BoundsNanos() {
  std::array<int64_t, kLatencyBoundsSeconds.size()> out{};
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<int64_t>(kLatencyBoundsSeconds[i] * 1e9 + 0.5);
  }
  return out;
}
constexpr std::array<int64_t, kLatencyBoundsSeconds.size()> kBoundsNanos =
    BoundsNanos();

// Hands each thread the next shard, round-robin, on its first record.
std::atomic<size_t> next_shard{0};

}  // namespace

CallMetrics& CallMetrics::Global() {
  static CallMetrics* const metrics = new CallMetrics();
  return *metrics;
}

size_t CallMetrics::ProtocolIndex(absl::string_view protocol) {
  if (protocol == "http/1.1") return 0;
  if (protocol == "h2") return 1;
  return 2;
}

size_t CallMetrics::StatusClassIndex(int status_code) {
  if (status_code < 100 || status_code > 599) return 5;
  return static_cast<size_t>(status_code / 100 - 1);
}

CallMetrics::Shard& CallMetrics::ShardForThisThread() {
  thread_local const size_t index =
      next_shard.fetch_add(1, std::memory_order_relaxed);
  return shards_[index % kShards];
}

void CallMetrics::Observe(Histogram& h, absl::Duration d) {
  const int64_t nanos = std::max<int64_t>(0, absl::ToInt64Nanoseconds(d));
  // Prometheus buckets are "less than or equal": a value on a bound counts
  // in that bound's bucket.
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(kBoundsNanos.begin(), kBoundsNanos.end(), nanos) -
      kBoundsNanos.begin());
  h.counts[bucket].fetch_add(1, std::memory_order_relaxed);
  h.sum_nanos.fetch_add(static_cast<uint64_t>(nanos),
                        std::memory_order_relaxed);
}

void CallMetrics::Record(const absl::StatusOr<Response>& result) {
  Shard& shard = ShardForThisThread();
  if (!result.ok()) {
    const size_t code = static_cast<size_t>(result.status().code());
    if (code > 0 && code < kStatusCodeCount) {
      shard.errors[code].fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  shard
      .responses[ProtocolIndex(result->protocol)]
                [StatusClassIndex(result->status_code)]
      .fetch_add(1, std::memory_order_relaxed);
  const CallTiming& t = result->timing;
  auto& p = shard.phases;
  Observe(p[static_cast<size_t>(Phase::kTotal)], t.total);
  Observe(p[static_cast<size_t>(Phase::kQueueWait)], t.queue_wait);
  Observe(p[static_cast<size_t>(Phase::kFirstByte)], t.first_byte);
  if (t.dns > absl::ZeroDuration()) {
    Observe(p[static_cast<size_t>(Phase::kDns)], t.dns);
  }
  if (t.connect > absl::ZeroDuration()) {
    Observe(p[static_cast<size_t>(Phase::kConnect)], t.connect);
  }
  if (t.tls > absl::ZeroDuration()) {
    Observe(p[static_cast<size_t>(Phase::kTls)], t.tls);
  }
}

CallMetrics::Reading CallMetrics::Read() const {
  Reading r;
  for (HistogramData& h : r.phases) {
    h.upper_bounds.assign(kLatencyBoundsSeconds.begin(),
                          kLatencyBoundsSeconds.end());
    h.counts.assign(kBuckets, 0);
  }
  std::array<uint64_t, kPhaseCount> sum_nanos{};
  for (const Shard& shard : shards_) {
    for (size_t p = 0; p < kPhaseCount; ++p) {
      for (size_t b = 0; b < kBuckets; ++b) {
        r.phases[p].counts[b] +=
            shard.phases[p].counts[b].load(std::memory_order_relaxed);
      }
      sum_nanos[p] += shard.phases[p].sum_nanos.load(std::memory_order_relaxed);
    }
    for (size_t i = 0; i < kProtocols.size(); ++i) {
      for (size_t j = 0; j < kStatusClasses.size(); ++j) {
        r.responses[i][j] +=
            shard.responses[i][j].load(std::memory_order_relaxed);
      }
    }
    for (size_t c = 0; c < kStatusCodeCount; ++c) {
      r.errors[c] += shard.errors[c].load(std::memory_order_relaxed);
    }
  }
  for (size_t p = 0; p < kPhaseCount; ++p) {
    r.phases[p].sum = static_cast<double>(sum_nanos[p]) / 1e9;
  }
  return r;
}

void RecordCompletedCall(const absl::StatusOr<Response>& result) {
  CallMetrics::Global().Record(result);
}

}  // namespace egress::metrics
