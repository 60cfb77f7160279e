#include "edge-os/monitoring/loss_periods.h"

#include "segwan/clock.h"

namespace segwan::controller {

namespace {
// Half a period after the ingress switched colour, the colour it stopped painting no longer
// changes at either end (its last packets have arrived).
bool StoppedColourFinal(const IngressReading& tx, uint64_t now_tai_ns, uint32_t period_ms) {
  return now_tai_ns >= tx.switched_at_tai_ns + static_cast<uint64_t>(period_ms) * 500'000ULL;
}
}  // namespace

LossStepKind NextLossStep(const LossCursor& cursor, const IngressReading& tx, uint64_t now_tai_ns, uint32_t period_ms) {
  if (tx.period_index < cursor.period_index) return LossStepKind::kRestarted;
  if (tx.period_index > cursor.period_index && StoppedColourFinal(tx, now_tai_ns, period_ms)) {
    return LossStepKind::kNeedEgress;
  }
  return LossStepKind::kNothing;
}

LossClose CloseLossPeriod(const LossCursor& cursor, const IngressReading& tx, const std::array<uint64_t, 2>& rx,
                          uint32_t period_ms, int32_t tai_offset_s) {
  LossClose out{cursor, std::nullopt};
  const uint32_t f = 1 - (tx.active_colour & 1);  // the colour that stopped
  const uint64_t sent_now = tx.packets[f], recv_now = rx[f];
  const bool settled = (cursor.unsettled & (1u << f)) == 0;
  if (settled && sent_now >= cursor.tx[f] && recv_now >= cursor.rx[f]) {
    LossPeriod lp;
    lp.index = cursor.NextIndex() + (tx.period_index - cursor.period_index) - 1;
    lp.colour = f;
    // Switches the controller did not see (it was away) fold into one record.
    lp.spans = static_cast<uint32_t>(tx.period_index - cursor.period_index);
    lp.end_ms = TaiUtc{tai_offset_s}.UtcMs(tx.switched_at_tai_ns);
    lp.start_ms = lp.end_ms - static_cast<int64_t>(period_ms) * lp.spans;
    lp.sent = sent_now - cursor.tx[f];
    lp.received = recv_now - cursor.rx[f];
    lp.lost = static_cast<int64_t>(lp.sent) - static_cast<int64_t>(lp.received);
    lp.loss_ratio = lp.sent ? static_cast<double>(lp.lost) / static_cast<double>(lp.sent) : 0.0;
    out.period = lp;
  }
  out.cursor.tx[f] = sent_now;
  out.cursor.rx[f] = recv_now;
  out.cursor.unsettled &= ~(1u << f);  // both ends' counts of f are final now: an exact baseline
  out.cursor.next_index = static_cast<int64_t>(out.period ? out.period->index + 1 : cursor.NextIndex());
  out.cursor.period_index = tx.period_index;
  return out;
}

uint64_t NextLossDueTaiNs(const LossCursor& cursor, const IngressReading& tx, uint32_t period_ms) {
  const uint64_t period_ns = static_cast<uint64_t>(period_ms) * 1'000'000ULL;
  constexpr uint64_t kMarginNs = 20'000'000;  // the two edges' clocks and the read itself
  const uint64_t ends = tx.period_index > cursor.period_index ? tx.switched_at_tai_ns : tx.switched_at_tai_ns + period_ns;
  return ends + period_ns / 2 + kMarginNs;
}

LossCursor RebaseLossCursor(const LossCursor& cursor, uint64_t period_index) {
  LossCursor out = cursor;
  out.next_index = static_cast<int64_t>(cursor.NextIndex());
  out.period_index = period_index;
  return out;
}

LossCursor MovedLossCursor(const LossCursor& cursor, const IngressReading& tx, const std::array<uint64_t, 2>& rx,
                           uint64_t now_tai_ns, uint32_t period_ms) {
  LossCursor out = RebaseLossCursor(cursor, tx.period_index);
  out.tx = tx.packets;
  out.rx = rx;
  const uint32_t painting = tx.active_colour & 1;
  out.unsettled = 1u << painting;
  if (!StoppedColourFinal(tx, now_tai_ns, period_ms)) out.unsettled |= 1u << (1 - painting);
  return out;
}

}  // namespace segwan::controller
