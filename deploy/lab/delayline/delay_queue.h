#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <queue>
#include <random>
#include <vector>

namespace segwan::lab {

// Impairment of one direction of a link. Delay and jitter in microseconds; loss in parts per
// million (10000 = 1%). Jitter is uniform in [-jitter, +jitter] around the delay (clamped at
// zero), so the mean delay stays `delay_us` whenever jitter <= delay. Like netem, jitter may
// reorder packets.
struct Impairment {
  uint32_t delay_us = 0;
  uint32_t jitter_us = 0;
  uint32_t loss_ppm = 0;
};

// Lock-free holder for the impairment one forwarding thread reads per packet while the control
// thread may change it.
class AtomicImpairment {
 public:
  void Store(const Impairment& imp) {
    delay_us_.store(imp.delay_us, std::memory_order_relaxed);
    jitter_us_.store(imp.jitter_us, std::memory_order_relaxed);
    loss_ppm_.store(imp.loss_ppm, std::memory_order_relaxed);
  }
  Impairment Load() const {
    return {delay_us_.load(std::memory_order_relaxed), jitter_us_.load(std::memory_order_relaxed),
            loss_ppm_.load(std::memory_order_relaxed)};
  }

 private:
  std::atomic<uint32_t> delay_us_{0};
  std::atomic<uint32_t> jitter_us_{0};
  std::atomic<uint32_t> loss_ppm_{0};
};

// How late the delay line sends packets: the time of the send minus the time it should have
// left (the kernel's receive timestamp plus the delay drawn for it). The link's own error,
// which every delay measured across it carries. Buckets of 10 us up to 5 ms; lock-free, one
// writer.
class LatenessHistogram {
 public:
  static constexpr int64_t kBucketNs = 10'000;
  static constexpr size_t kBuckets = 500;  // the last one holds everything from 5 ms up
  void Add(int64_t late_ns) {
    const size_t b = late_ns <= 0 ? 0 : std::min<size_t>(kBuckets - 1, static_cast<size_t>(late_ns / kBucketNs));
    buckets_[b].fetch_add(1, std::memory_order_relaxed);
    int64_t m = max_ns_.load(std::memory_order_relaxed);
    if (late_ns > m) max_ns_.store(late_ns, std::memory_order_relaxed);
  }
  // The upper edge of the bucket that holds quantile q (0 < q <= 1), in ns; 0 with no packets.
  int64_t QuantileNs(double q) const { return QuantileNs({this}, q); }
  // The same over the packets of several histograms together (every direction of every link).
  static int64_t QuantileNs(const std::vector<const LatenessHistogram*>& hs, double q) {
    auto count = [&](size_t i) {
      uint64_t n = 0;
      for (const auto* h : hs) n += h->buckets_[i].load(std::memory_order_relaxed);
      return n;
    };
    uint64_t total = 0;
    for (size_t i = 0; i < kBuckets; ++i) total += count(i);
    if (total == 0) return 0;
    const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total))));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += count(i);
      if (seen >= rank) return static_cast<int64_t>(i + 1) * kBucketNs;
    }
    return static_cast<int64_t>(kBuckets) * kBucketNs;
  }
  int64_t MaxNs() const { return max_ns_.load(std::memory_order_relaxed); }
  uint64_t Count() const {
    uint64_t n = 0;
    for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
    return n;
  }

 private:
  std::atomic<uint64_t> buckets_[kBuckets] = {};
  std::atomic<int64_t> max_ns_{0};
};

struct DirectionCounters {
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> dropped_loss{0};      // dropped on purpose (the loss setting)
  std::atomic<uint64_t> dropped_overflow{0};  // dropped because the queue was full
  std::atomic<uint64_t> send_errors{0};
  LatenessHistogram late;
};

// Packets waiting for their release time, earliest first. Single-threaded: one per direction.
class DelayQueue {
 public:
  struct Packet {
    int64_t release_ns;
    uint64_t order;  // arrival order breaks ties, so equal release times keep FIFO
    std::vector<uint8_t> bytes;
  };

  DelayQueue(uint64_t seed, size_t max_packets) : rng_(seed), max_packets_(max_packets) {}

  enum class Verdict { kQueued, kLost, kOverflow };
  // Decides the packet's fate under `imp` at time `now_ns` and queues it if it survives.
  Verdict Push(std::vector<uint8_t> bytes, int64_t now_ns, const Impairment& imp);

  bool Empty() const { return heap_.empty(); }
  size_t Size() const { return heap_.size(); }
  int64_t NextRelease() const { return heap_.top().release_ns; }
  // Removes the earliest packet; only call when !Empty().
  Packet Pop();

 private:
  struct Later {
    bool operator()(const Packet& a, const Packet& b) const {
      return a.release_ns != b.release_ns ? a.release_ns > b.release_ns : a.order > b.order;
    }
  };
  std::priority_queue<Packet, std::vector<Packet>, Later> heap_;
  std::mt19937_64 rng_;
  size_t max_packets_;
  uint64_t next_order_ = 0;
};

// The index of the queue, among several, whose next packet leaves first; queues.size() when
// all are empty. One
// forwarding thread serves every direction of every link, so that at most one thread waits
// for a release time: a thread per direction made a dozen real-time threads compete for two
// cores, and the one that lost waited its turn past its packets' release times.
inline size_t EarliestQueue(const std::vector<DelayQueue*>& queues) {
  size_t best = queues.size();
  for (size_t i = 0; i < queues.size(); ++i) {
    if (!queues[i]->Empty() && (best == queues.size() || queues[i]->NextRelease() < queues[best]->NextRelease())) best = i;
  }
  return best;
}

}  // namespace segwan::lab
