#include "delay_queue.h"

namespace segwan::lab {

DelayQueue::Verdict DelayQueue::Push(std::vector<uint8_t> bytes, int64_t now_ns,
                                     const Impairment& imp) {
  if (imp.loss_ppm > 0) {
    std::uniform_int_distribution<uint32_t> ppm(0, 999'999);
    if (ppm(rng_) < imp.loss_ppm) return Verdict::kLost;
  }
  if (heap_.size() >= max_packets_) return Verdict::kOverflow;
  int64_t delay_ns = static_cast<int64_t>(imp.delay_us) * 1000;
  if (imp.jitter_us > 0) {
    const int64_t j = static_cast<int64_t>(imp.jitter_us) * 1000;
    std::uniform_int_distribution<int64_t> jitter(-j, j);
    delay_ns += jitter(rng_);
    if (delay_ns < 0) delay_ns = 0;
  }
  heap_.push(Packet{now_ns + delay_ns, next_order_++, std::move(bytes)});
  return Verdict::kQueued;
}

DelayQueue::Packet DelayQueue::Pop() {
  // priority_queue::top() is const; moving out of it before pop() is safe because pop()
  // only needs the element's comparison keys, which the move leaves intact.
  Packet p = std::move(const_cast<Packet&>(heap_.top()));
  heap_.pop();
  return p;
}

}  // namespace segwan::lab
