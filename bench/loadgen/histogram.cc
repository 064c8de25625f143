#include "bench/loadgen/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace egress::bench {
namespace {

constexpr int64_t kExactLimit = 2 * LatencyHistogram::kSubBuckets;

int MostSignificantBit(uint64_t v) { return 63 - __builtin_clzll(v); }

}  // namespace

int LatencyHistogram::BucketIndex(int64_t value) {
  if (value < kExactLimit) return static_cast<int>(std::max<int64_t>(value, 0));
  // value's top kSubBucketBits + 1 bits select the bucket: `top` lies in
  // [kSubBuckets, 2 * kSubBuckets), and each shift adds kSubBuckets indexes,
  // so the indexes run on without a gap from the exact range.
  const int shift = MostSignificantBit(static_cast<uint64_t>(value)) -
                    kSubBucketBits;
  const int64_t top = value >> shift;
  return static_cast<int>(shift * kSubBuckets + top);
}

int64_t LatencyHistogram::BucketLowest(int index) {
  if (index < kExactLimit) return index;
  const int shift = static_cast<int>(index / kSubBuckets) - 1;
  const int64_t top = index % kSubBuckets + kSubBuckets;
  return top << shift;
}

int64_t LatencyHistogram::BucketHighest(int index) {
  if (index < kExactLimit) return index;
  const int shift = static_cast<int>(index / kSubBuckets) - 1;
  // lowest + (width - 1): never overflows, even for the last bucket, whose
  // highest value is INT64_MAX.
  return BucketLowest(index) + ((int64_t{1} << shift) - 1);
}

int LatencyHistogram::BucketCount() {
  return BucketIndex(std::numeric_limits<int64_t>::max()) + 1;
}

LatencyHistogram::LatencyHistogram() : counts_(BucketCount(), 0) {}

void LatencyHistogram::Record(int64_t value) {
  value = std::max<int64_t>(value, 0);
  ++counts_[BucketIndex(value)];
  if (count_ == 0 || value < min_) min_ = value;
  max_ = std::max(max_, value);
  sum_ += value;
  ++count_;
}

void LatencyHistogram::Add(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  count_ += other.count_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / count_);
}

int64_t LatencyHistogram::ValueAtPercentile(double percentile) const {
  if (count_ == 0) return 0;
  percentile = std::clamp(percentile, 0.0, 100.0);
  // The relative nudge keeps 99% of 10,000 at rank 9,900: in floating point
  // 0.99 * 10000 is a hair above 9900, and ceil() would skip a value.
  const double exact = percentile / 100.0 * static_cast<double>(count_);
  int64_t rank = static_cast<int64_t>(std::ceil(exact * (1 - 1e-12)));
  rank = std::clamp<int64_t>(rank, 1, count_);
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      // Never report past the exact extremes: the top bucket's highest
      // equivalent value may lie above the largest value recorded.
      return std::clamp(BucketHighest(static_cast<int>(i)), min_, max_);
    }
  }
  return max_;
}

}  // namespace egress::bench
