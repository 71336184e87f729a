// LatencyHistogram: operation latencies in fixed memory, for percentiles.
//
// Log-linear buckets, as HdrHistogram's: values below 2^kSubBits ns are
// exact; above, each power-of-two range is split into 2^kSubBits buckets, so
// a reported percentile is within 1/2^kSubBits (about 0.8%) of the truth.
// Not thread-safe: keep one per thread and Merge.

#ifndef ZPAGED_CLIENT_BENCH_LATENCY_HISTOGRAM_H_
#define ZPAGED_CLIENT_BENCH_LATENCY_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace zpaged::bench {

class LatencyHistogram {
 public:
  void Record(uint64_t nanoseconds);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }

  // The latency at quantile `q` (0 < q <= 1) in microseconds: the upper edge
  // of the bucket holding it. 0 when nothing was recorded.
  double PercentileMicros(double q) const;

  // The mean latency in microseconds, exact (not bucketed); 0 when empty.
  double MeanMicros() const {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / count_ / 1000.0;
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr int kSubBuckets = 1 << kSubBits;
  // Enough ranges for 2^64 ns.
  static constexpr int kBuckets = (64 - kSubBits + 1) * kSubBuckets;

  static int BucketOf(uint64_t nanoseconds);
  static uint64_t UpperEdgeOf(int bucket);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_LATENCY_HISTOGRAM_H_
