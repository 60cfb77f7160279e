#include "edge-os/monitoring/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace segwan::controller {

using nlohmann::json;

// ---- LogHistogram ------------------------------------------------------------------------
// Bucket of a non-negative v: below 256 ns one bucket per ns; above, the power of two e and the
// next 7 bits below the leading one. Negative values (unsynchronised clocks) mirror below zero.
namespace {
constexpr int kSubBits = 7;
constexpr int32_t kLinear = 1 << (kSubBits + 1);  // 256

int32_t PositiveBucket(uint64_t v) {
  if (v < static_cast<uint64_t>(kLinear)) return static_cast<int32_t>(v);
  const int e = std::bit_width(v) - 1 - kSubBits;  // shift that leaves 8 significant bits
  const auto mant = static_cast<int32_t>(v >> e);  // 128..255
  return kLinear + (e - 1) * (1 << kSubBits) + (mant - (1 << kSubBits));
}

double PositiveMiddle(int32_t b) {
  if (b < kLinear) return b;
  const int32_t rel = b - kLinear;
  const int e = rel / (1 << kSubBits) + 1;
  const int32_t mant = rel % (1 << kSubBits) + (1 << kSubBits);
  const double lo = std::ldexp(static_cast<double>(mant), e);
  return lo + std::ldexp(1.0, e) / 2.0;
}
}  // namespace

int32_t LogHistogram::Bucket(int64_t ns) {
  if (ns >= 0) return PositiveBucket(static_cast<uint64_t>(ns));
  return -1 - PositiveBucket(static_cast<uint64_t>(-(ns + 1)));
}

double LogHistogram::BucketMiddle(int32_t b) {
  if (b >= 0) return PositiveMiddle(b);
  return -PositiveMiddle(-1 - b) - 1;
}

void LogHistogram::Add(int64_t ns) {
  ++buckets_[Bucket(ns)];
  ++count_;
}

void LogHistogram::Merge(const LogHistogram& o) {
  for (const auto& [b, c] : o.buckets_) buckets_[b] += c;
  count_ += o.count_;
}

std::optional<double> LogHistogram::Quantile(double q) const {
  if (count_ == 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  // nearest rank: the smallest value with at least q * n values at or below it
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (const auto& [b, c] : buckets_) {
    seen += c;
    if (seen >= rank) return BucketMiddle(b);
  }
  return BucketMiddle(buckets_.rbegin()->first);
}

json LogHistogram::ToJson() const {
  json a = json::array();
  for (const auto& [b, c] : buckets_) a.push_back({b, c});
  return a;
}

LogHistogram LogHistogram::FromJson(const json& j) {
  LogHistogram h;
  if (!j.is_array()) return h;
  for (const auto& e : j) {
    const auto c = e.at(1).get<uint64_t>();
    h.buckets_[e.at(0).get<int32_t>()] += c;
    h.count_ += c;
  }
  return h;
}

// ---- RunningStats ------------------------------------------------------------------------
void RunningStats::Add(double x) {
  if (n_ == 0) {
    min_ = max_ = first_ = x;
  } else {
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
    jitter_sum_ += std::fabs(x - last_);
  }
  last_ = x;
  ++n_;
  const double d = x - mean_;
  mean_ += d / static_cast<double>(n_);
  m2_ += d * (x - mean_);
}

void RunningStats::Merge(const RunningStats& b) {
  if (b.n_ == 0) return;
  if (n_ == 0) {
    *this = b;
    return;
  }
  const double na = static_cast<double>(n_), nb = static_cast<double>(b.n_);
  const double d = b.mean_ - mean_;
  mean_ += d * nb / (na + nb);
  m2_ += b.m2_ + d * d * na * nb / (na + nb);
  jitter_sum_ += b.jitter_sum_ + std::fabs(b.first_ - last_);
  min_ = std::min(min_, b.min_);
  max_ = std::max(max_, b.max_);
  last_ = b.last_;
  n_ += b.n_;
}

double RunningStats::stddev() const { return std::sqrt(variance()); }

json RunningStats::ToJson() const {
  return {{"n", n_}, {"mean", mean_}, {"m2", m2_}, {"min", min_}, {"max", max_},
          {"first", first_}, {"last", last_}, {"jitter_sum", jitter_sum_}};
}

RunningStats RunningStats::FromJson(const json& j) {
  RunningStats s;
  s.n_ = j.value("n", uint64_t{0});
  s.mean_ = j.value("mean", 0.0);
  s.m2_ = j.value("m2", 0.0);
  s.min_ = j.value("min", 0.0);
  s.max_ = j.value("max", 0.0);
  s.first_ = j.value("first", 0.0);
  s.last_ = j.value("last", 0.0);
  s.jitter_sum_ = j.value("jitter_sum", 0.0);
  return s;
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))));
  auto it = v.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(v.begin(), it, v.end());
  return *it;
}

// ---- DelaySet ----------------------------------------------------------------------------
namespace {
int64_t MsToNs(double ms) { return std::llround(ms * 1e6); }
}  // namespace

void DelaySet::Add(const Sample& s) {
  direct.Add(s.direct_ms());
  back.Add(s.return_ms());
  round_trip.Add(s.rtt_ms());
  direct_h.Add(MsToNs(s.direct_ms()));
  back_h.Add(MsToNs(s.return_ms()));
  round_trip_h.Add(MsToNs(s.rtt_ms()));
}

void DelaySet::Merge(const DelaySet& o) {
  direct.Merge(o.direct);
  back.Merge(o.back);
  round_trip.Merge(o.round_trip);
  direct_h.Merge(o.direct_h);
  back_h.Merge(o.back_h);
  round_trip_h.Merge(o.round_trip_h);
}

json DelaySet::ToJson() const {
  return {{"direct", direct.ToJson()}, {"return", back.ToJson()}, {"round_trip", round_trip.ToJson()},
          {"direct_h", direct_h.ToJson()}, {"return_h", back_h.ToJson()},
          {"round_trip_h", round_trip_h.ToJson()}};
}

DelaySet DelaySet::FromJson(const json& j) {
  DelaySet d;
  d.direct = RunningStats::FromJson(j.value("direct", json::object()));
  d.back = RunningStats::FromJson(j.value("return", json::object()));
  d.round_trip = RunningStats::FromJson(j.value("round_trip", json::object()));
  d.direct_h = LogHistogram::FromJson(j.value("direct_h", json::array()));
  d.back_h = LogHistogram::FromJson(j.value("return_h", json::array()));
  d.round_trip_h = LogHistogram::FromJson(j.value("round_trip_h", json::array()));
  return d;
}

// ---- PacketCounts ------------------------------------------------------------------------
void PacketCounts::Add(const Sample& s) {
  ++received;
  max_seq = std::max<int64_t>(max_seq, s.seq);
  max_reflector_seq = std::max<int64_t>(max_reflector_seq, s.reflector_seq);
}

// ---- IntervalBuilder ---------------------------------------------------------------------
std::optional<IntervalAggregate> IntervalBuilder::Add(const Sample& s, int64_t utc_ms) {
  const int64_t start = utc_ms - (((utc_ms % interval_ms_) + interval_ms_) % interval_ms_);
  std::optional<IntervalAggregate> closed;
  if (open_start_ < 0) {
    open_start_ = start;
  } else if (start > open_start_) {
    closed = Build();
    open_start_ = start;
    Reset();
  }
  // A straggler of an already closed interval counts in the open one.
  delays_.Add(s);
  values_[0].push_back(s.direct_ms());
  values_[1].push_back(s.return_ms());
  values_[2].push_back(s.rtt_ms());
  counts_.Add(s);
  return closed;
}

std::optional<IntervalAggregate> IntervalBuilder::CloseIfDue(int64_t now_ms, int64_t grace_ms) {
  if (open_start_ < 0 || now_ms < open_start_ + interval_ms_ + grace_ms) return std::nullopt;
  auto a = Build();
  open_start_ = -1;
  Reset();
  return a;
}

std::optional<IntervalAggregate> IntervalBuilder::Peek() const {
  if (open_start_ < 0) return std::nullopt;
  return Build();
}

void IntervalBuilder::Reset() {
  delays_ = {};
  for (auto& v : values_) v.clear();
  counts_.received = 0;
  base_seq_ = counts_.max_seq;
  base_rseq_ = counts_.max_reflector_seq;
}

IntervalAggregate IntervalBuilder::Build() const {
  IntervalAggregate a;
  a.start_ms = open_start_;
  a.length_ms = interval_ms_;
  a.delays = delays_;
  for (int k = 0; k < 3; ++k) {
    std::vector<double> v = values_[k];
    a.p[k][0] = Percentile(v, 0.50);
    a.p[k][1] = Percentile(v, 0.90);
    a.p[k][2] = Percentile(v, 0.99);
  }
  a.received = counts_.received;
  const int64_t sent = counts_.max_seq - base_seq_;
  a.sent = sent > 0 ? static_cast<uint64_t>(sent) : 0;
  a.lost = a.sent > a.received ? a.sent - a.received : 0;
  if (stateful_) {
    const int64_t reached = counts_.max_reflector_seq - base_rseq_;
    a.lost_direct = sent > reached ? static_cast<uint64_t>(sent - reached) : 0;
    a.lost_return = reached > static_cast<int64_t>(a.received)
                        ? static_cast<uint64_t>(reached - static_cast<int64_t>(a.received)) : 0;
  }
  return a;
}

}  // namespace segwan::controller
