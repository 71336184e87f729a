#include "client/bench/latency_histogram.h"

#include <bit>
#include <cmath>

namespace zpaged::bench {

// Range r >= 1 holds [2^(r+kSubBits-1), 2^(r+kSubBits)) in kSubBuckets steps
// of 2^(r-1); range 0 holds [0, 2^kSubBits) exactly.
int LatencyHistogram::BucketOf(uint64_t nanoseconds) {
  if (nanoseconds < kSubBuckets) return static_cast<int>(nanoseconds);
  const int top_bit = 63 - std::countl_zero(nanoseconds);
  const int range = top_bit - kSubBits + 1;
  const int shift = range - 1;
  const int sub = static_cast<int>(nanoseconds >> shift) - kSubBuckets;
  return range * kSubBuckets + sub;
}

uint64_t LatencyHistogram::UpperEdgeOf(int bucket) {
  const int range = bucket / kSubBuckets;
  const uint64_t sub = bucket % kSubBuckets;
  if (range == 0) return sub;
  const int shift = range - 1;
  return ((kSubBuckets + sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t nanoseconds) {
  ++counts_[BucketOf(nanoseconds)];
  ++count_;
  sum_ns_ += nanoseconds;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
}

double LatencyHistogram::PercentileMicros(double q) const {
  if (count_ == 0) return 0;
  const uint64_t rank = static_cast<uint64_t>(std::ceil(q * count_));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank && counts_[i] > 0) return UpperEdgeOf(i) / 1000.0;
  }
  return UpperEdgeOf(kBuckets - 1) / 1000.0;
}

}  // namespace zpaged::bench
