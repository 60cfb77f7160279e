#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "edge-os/controller/model.h"

namespace segwan::controller {

// What the ingress edge of a monitored flow says (ReadLossCounters, ingress).
struct IngressReading {
  uint64_t period_index = 0;         // colour switches so far
  uint32_t active_colour = 0;        // the colour it paints now
  uint64_t switched_at_tai_ns = 0;   // the last switch
  std::array<uint64_t, 2> packets{};  // cumulative, per colour
};

// The alternate-marking arithmetic (RFC 9341), without I/O. Half a period after the ingress
// switched colour, the colour it stopped painting is final at both ends: its cumulative
// counters, less those at that colour's previous close, are the period's sent and received.
enum class LossStepKind {
  kNothing,       // no period to close yet (or already closed)
  kRestarted,     // the ingress's period count went back: it restarted; cursor follows it
  kNeedEgress,    // a period is due: read the egress counters and call CloseLossPeriod
};
LossStepKind NextLossStep(const LossCursor& cursor, const IngressReading& tx, uint64_t now_tai_ns, uint32_t period_ms);

struct LossClose {
  LossCursor cursor;                 // after this close
  std::optional<LossPeriod> period;  // none when a counter went back (an agent restarted unpinned)
};
// Closes the period NextLossStep found due, with the egress's cumulative counters.
LossClose CloseLossPeriod(const LossCursor& cursor, const IngressReading& tx, const std::array<uint64_t, 2>& rx,
                          uint32_t period_ms, int32_t tai_offset_s);

// When to read this flow again (TAI ns) to close its next period: half a period after the
// switch that ends it, and a little more. A reader on a fixed beat of one period would
// otherwise find each switch just made and never close anything.
uint64_t NextLossDueTaiNs(const LossCursor& cursor, const IngressReading& tx, uint32_t period_ms);

// The cursor for an ingress that counts its periods from `period_index` on (it restarted, or
// the flow moved to another SID list): the session's period numbers go on where they were.
LossCursor RebaseLossCursor(const LossCursor& cursor, uint64_t period_index);

// The cursor for a flow that moved to another SID list, from the new list's first readings at
// the ingress (`tx`) then the egress (`rx`), at `now_tai_ns`. The two reads are not one instant:
// a packet of the colour being painted may be counted by one and not the other, and so may one
// of the colour that stopped less than half a period ago. Those colours are unsettled: their
// next close sets the baseline and reports nothing, so no packet is ever counted as lost (or
// received) for having crossed between the two reads.
LossCursor MovedLossCursor(const LossCursor& cursor, const IngressReading& tx, const std::array<uint64_t, 2>& rx,
                           uint64_t now_tai_ns, uint32_t period_ms);

}  // namespace segwan::controller
