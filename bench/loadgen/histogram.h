// LatencyHistogram: a small HDR-style histogram of non-negative integers
// (the load generator records nanoseconds).
//
// Vocabulary. Values below 2 * kSubBuckets are counted exactly, one bucket
// each. Above that, every power-of-two range [2^m, 2^(m+1)) is split into
// kSubBuckets equal linear sub-buckets ("log-linear"), so a bucket's width is
// at most 1/kSubBuckets of its lower bound: any recorded value is reported
// with a relative error below 1/128 = 0.79 %, from 1 ns to the int64 limit,
// in a fixed array of about 7,400 counters (58 KiB).
//
// Percentiles follow HdrHistogram's convention: ValueAtPercentile(q) is the
// highest value equivalent to the bucket that holds the ceil(q% * count)-th
// smallest recorded value, so a reported percentile is never below the true
// one by more than the bucket width and never below it at all when values
// are exact. The exact minimum, maximum and sum are kept beside the buckets.
//
// Thread safety: none. The load generator keeps one histogram per thread and
// merges them with Add() after the threads are joined.
#ifndef EGRESS_BENCH_LOADGEN_HISTOGRAM_H_
#define EGRESS_BENCH_LOADGEN_HISTOGRAM_H_

#include <cstdint>
#include <vector>

namespace egress::bench {

class LatencyHistogram {
 public:
  // log2 of the linear sub-buckets per power of two.
  static constexpr int kSubBucketBits = 7;
  static constexpr int64_t kSubBuckets = int64_t{1} << kSubBucketBits;

  LatencyHistogram();

  // Counts `value` once. A negative value is counted as 0 (a clock that
  // stepped back must not crash a benchmark).
  void Record(int64_t value);
  // Adds every count of `other` to this histogram.
  void Add(const LatencyHistogram& other);
  void Reset();

  int64_t count() const { return count_; }
  // 0 when empty.
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  double Mean() const;
  // `percentile` in [0, 100]; 0 when empty. See the header comment.
  int64_t ValueAtPercentile(double percentile) const;

  // Bucket arithmetic, public for the tests.
  static int BucketIndex(int64_t value);
  static int64_t BucketLowest(int index);
  static int64_t BucketHighest(int index);
  static int BucketCount();

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // A long double keeps the mean exact enough past 2^63 ns of total.
  long double sum_ = 0;
};

}  // namespace egress::bench

#endif  // EGRESS_BENCH_LOADGEN_HISTOGRAM_H_
