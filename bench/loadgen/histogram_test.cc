#include "bench/loadgen/histogram.h"

#include <cstdint>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace egress::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.Mean(), 0.0);
  EXPECT_EQ(h.ValueAtPercentile(50), 0);
  EXPECT_EQ(h.ValueAtPercentile(99.9), 0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  for (int64_t v = 0; v < 2 * LatencyHistogram::kSubBuckets; ++v) {
    EXPECT_EQ(LatencyHistogram::BucketIndex(v), v);
    EXPECT_EQ(LatencyHistogram::BucketLowest(static_cast<int>(v)), v);
    EXPECT_EQ(LatencyHistogram::BucketHighest(static_cast<int>(v)), v);
  }
}

// The buckets tile [0, INT64_MAX] without a gap or an overlap.
TEST(LatencyHistogramTest, BucketsAreContiguous) {
  const int n = LatencyHistogram::BucketCount();
  ASSERT_GT(n, 256);
  EXPECT_LT(n, 8000);  // the size promised in the header
  EXPECT_EQ(LatencyHistogram::BucketLowest(0), 0);
  for (int i = 1; i < n; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLowest(i),
              LatencyHistogram::BucketHighest(i - 1) + 1)
        << "bucket " << i;
  }
  EXPECT_EQ(LatencyHistogram::BucketHighest(n - 1),
            std::numeric_limits<int64_t>::max());
}

TEST(LatencyHistogramTest, EveryValueFallsInItsBucketWithinRelativeError) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 100000; ++i) {
    // Spread over all magnitudes: a random bit width, then random bits.
    const int bits = static_cast<int>(rng() % 63) + 1;
    const int64_t v = static_cast<int64_t>(rng() >> (64 - bits));
    const int index = LatencyHistogram::BucketIndex(v);
    const int64_t lo = LatencyHistogram::BucketLowest(index);
    const int64_t hi = LatencyHistogram::BucketHighest(index);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    ASSERT_LE(static_cast<double>(hi - lo),
              static_cast<double>(lo) / LatencyHistogram::kSubBuckets)
        << v;
  }
}

TEST(LatencyHistogramTest, PercentilesOfAUniformRange) {
  LatencyHistogram h;
  // 1..100000 ns, once each: the q-th percentile is q * 1000 ns.
  for (int64_t v = 1; v <= 100000; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100000);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100000);
  EXPECT_DOUBLE_EQ(h.Mean(), 50000.5);
  for (double q : {1.0, 50.0, 90.0, 99.0, 99.9}) {
    const double exact = q * 1000;
    const double got = static_cast<double>(h.ValueAtPercentile(q));
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(got, exact * (1 + 1.0 / LatencyHistogram::kSubBuckets)) << q;
  }
  EXPECT_EQ(h.ValueAtPercentile(100), 100000);
  EXPECT_EQ(h.ValueAtPercentile(0), 1);
}

// The coordinated-omission case the generator exists for: one stall among
// many fast calls must show in the tail, not vanish into the median.
TEST(LatencyHistogramTest, RareStallShowsInTheTail) {
  LatencyHistogram h;
  for (int i = 0; i < 9900; ++i) h.Record(100'000);    // 100 us
  for (int i = 0; i < 100; ++i) h.Record(50'000'000);  // 50 ms
  EXPECT_LE(h.ValueAtPercentile(50), 101'000);
  EXPECT_LE(h.ValueAtPercentile(99), 101'000);  // the 9,900th value
  EXPECT_EQ(h.ValueAtPercentile(99.1), 50'000'000);
  EXPECT_EQ(h.ValueAtPercentile(99.9), 50'000'000);
  EXPECT_EQ(h.max(), 50'000'000);
}

TEST(LatencyHistogramTest, AddMergesCountsAndExtremes) {
  LatencyHistogram a, b, all;
  for (int64_t v = 10; v < 1000; v += 7) {
    a.Record(v);
    all.Record(v);
  }
  for (int64_t v = 5000; v < 900000; v += 977) {
    b.Record(v);
    all.Record(v);
  }
  LatencyHistogram merged;
  merged.Add(a);
  merged.Add(b);
  merged.Add(LatencyHistogram());  // an empty one changes nothing
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), 10);
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.Mean(), all.Mean());
  for (double q : {10.0, 50.0, 75.0, 99.0}) {
    EXPECT_EQ(merged.ValueAtPercentile(q), all.ValueAtPercentile(q)) << q;
  }
}

TEST(LatencyHistogramTest, NegativeCountsAsZeroAndResetEmpties) {
  LatencyHistogram h;
  h.Record(-5);
  EXPECT_EQ(h.count(), 1);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  h.Record(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(h.ValueAtPercentile(100), std::numeric_limits<int64_t>::max());
  h.Reset();
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.ValueAtPercentile(50), 0);
}

}  // namespace
}  // namespace egress::bench
