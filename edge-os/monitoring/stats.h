#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace segwan::controller {

// A delay distribution in log-spaced buckets: 128 buckets per power of two of nanoseconds, so
// any percentile read from it is within 0.8% of an observed value. Sparse, mergeable, and
// small enough to store with every interval aggregate.
class LogHistogram {
 public:
  void Add(int64_t ns);
  void Merge(const LogHistogram& other);
  uint64_t count() const { return count_; }
  // Value (ns) at quantile q in [0, 1]: the middle of the bucket holding the q-th value.
  std::optional<double> Quantile(double q) const;
  nlohmann::json ToJson() const;  // [[bucket, count], ...]
  static LogHistogram FromJson(const nlohmann::json& j);

  static int32_t Bucket(int64_t ns);
  static double BucketMiddle(int32_t bucket);  // ns

 private:
  std::map<int32_t, uint64_t> buckets_;
  uint64_t count_ = 0;
};

// Running statistics of one delay series, one value at a time (Welford's online mean and
// variance), plus min, max and jitter: the mean absolute difference of consecutive values, in
// arrival order. Two of them merge exactly (Chan et al.); jitter across the seam uses the last
// value of the first and the first value of the second.
class RunningStats {
 public:
  void Add(double x);
  void Merge(const RunningStats& later);
  uint64_t count() const { return n_; }
  double mean() const { return mean_; }
  double variance() const { return n_ > 1 ? m2_ / static_cast<double>(n_ - 1) : 0.0; }  // sample
  double stddev() const;
  double min() const { return min_; }
  double max() const { return max_; }
  double jitter() const { return n_ > 1 ? jitter_sum_ / static_cast<double>(n_ - 1) : 0.0; }
  nlohmann::json ToJson() const;
  static RunningStats FromJson(const nlohmann::json& j);

 private:
  uint64_t n_ = 0;
  double mean_ = 0, m2_ = 0, min_ = 0, max_ = 0;
  double first_ = 0, last_ = 0, jitter_sum_ = 0;
};

// Exact percentile of a set of values (nearest rank, as the interval tables show them).
double Percentile(std::vector<double>& values, double q);

// One STAMP measurement as the edge reported it (TAI nanoseconds).
struct Sample {
  uint32_t seq = 0;            // sender sequence number
  uint32_t reflector_seq = 0;  // reflector sequence number (stateful: counts what it received)
  uint64_t t1 = 0, t2 = 0, t3 = 0, t4 = 0;
  uint32_t ttl = 0;
  uint32_t flags = 0;  // StampResult.flags
  static constexpr uint32_t kUnrecognized = 1 << 1;    // a TLV came back with U
  static constexpr uint32_t kMalformed = 1 << 2;       // the reflector stopped at a malformed TLV
  static constexpr uint32_t kIntegrity = 1 << 3;       // it failed the TLVs' HMAC check
  static constexpr uint32_t kUnsynchronized = 1 << 4;  // its clock is not synchronised
  static constexpr uint32_t kFollowUp = 1 << 5;        // t3: when the reply really left (RFC 8972 §4.7)
  // Differences in integers first: absolute TAI nanoseconds (~1.8e18) do not fit a double's
  // 53 bits, and converting them first would cost up to 256 ns of precision.
  static double Ms(uint64_t later, uint64_t earlier) {
    return static_cast<double>(static_cast<int64_t>(later - earlier)) / 1e6;
  }
  double direct_ms() const { return Ms(t2, t1); }
  double return_ms() const { return Ms(t4, t3); }
  double rtt_ms() const {
    return static_cast<double>(static_cast<int64_t>(t4 - t1) - static_cast<int64_t>(t3 - t2)) / 1e6;
  }
};

// The three delay series of a session over some span, in milliseconds.
struct DelaySet {
  RunningStats direct, back, round_trip;
  LogHistogram direct_h, back_h, round_trip_h;
  void Add(const Sample& s);
  void Merge(const DelaySet& later);
  nlohmann::json ToJson() const;
  static DelaySet FromJson(const nlohmann::json& j);
};

// Replies received and the highest sequence numbers seen (sender's, and a stateful
// reflector's own count of what reached it): what loss per direction is worked out from.
struct PacketCounts {
  uint64_t received = 0;
  int64_t max_seq = -1;
  int64_t max_reflector_seq = -1;
  void Add(const Sample& s);
};

// One closed interval of a session: what the interval table and the stats endpoint read.
struct IntervalAggregate {
  int64_t start_ms = 0;  // UTC, interval start
  int64_t length_ms = 0;
  DelaySet delays;
  // exact per-interval percentiles, ms: direct, return, round trip at 50, 90, 99
  double p[3][3] = {};
  // Sent = sequence numbers first seen in this interval (a lost tail counts in the next one).
  // Lost by direction needs a stateful reflector; stateless sessions leave both at 0.
  uint64_t sent = 0, received = 0, lost = 0, lost_direct = 0, lost_return = 0;
};

// Builds the interval aggregates of one session as samples arrive (in any order within an
// open interval). Samples land in the interval of their T1. An interval is closed when a
// sample of a later interval arrives, or when the caller says time has passed its end.
class IntervalBuilder {
 public:
  IntervalBuilder(int64_t interval_ms, bool stateful) : interval_ms_(interval_ms), stateful_(stateful) {}
  // Returns the interval closed by this sample, if any. utc_ms is the sample's T1 in UTC ms.
  std::optional<IntervalAggregate> Add(const Sample& s, int64_t utc_ms);
  // Closes the open interval if now_ms is past its end plus `grace_ms`.
  std::optional<IntervalAggregate> CloseIfDue(int64_t now_ms, int64_t grace_ms);
  // The open interval as it stands (for live stats), if it has samples.
  std::optional<IntervalAggregate> Peek() const;
  int64_t interval_ms() const { return interval_ms_; }

 private:
  IntervalAggregate Build() const;
  void Reset();  // empties the open interval; the next one counts from the highest seq so far
  int64_t interval_ms_;
  bool stateful_;
  int64_t open_start_ = -1;
  DelaySet delays_;
  std::vector<double> values_[3];
  PacketCounts counts_;  // highest sequence numbers over the session; received per interval
  int64_t base_seq_ = -1, base_rseq_ = -1;
};

}  // namespace segwan::controller
