#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edge-os/controller/model.h"

namespace segwan::controller {

// The first limit of `limits` that `m` breaks, named ("delay_ms", "loss_pct", ...); nullopt
// when it complies. A window with no probe back has lost them all.
std::optional<std::string> Breaks(const WindowMeasure& m, const SlaLimits& limits);

// How far outside its limits a window is: the sum over the limits set of how much each is
// exceeded, relative to the limit (0: complies). Ranks candidates when none complies.
double Excess(const WindowMeasure& m, const SlaLimits& limits);

// The probes of one candidate cut into windows of `window_ms` by their send time (T1, UTC
// milliseconds). Loss comes from sequence numbers: the numbers missing between the last one
// seen and the highest in a window are that window's losses; a window with no probe back
// has lost the ones sent in it (window / interval). Late probes of a closed window are not
// counted again. Pure; one per candidate probe session.
class ProbeWindows {
 public:
  ProbeWindows(uint32_t window_ms, uint32_t interval_ms) : window_ms_(window_ms), interval_ms_(interval_ms) {}
  void Add(uint32_t seq, int64_t t1_ms, double delay_ms);
  // Closes every window that ended at or before `until_ms` (oldest first).
  std::vector<WindowMeasure> Close(int64_t until_ms);

 private:
  struct Probe {
    uint32_t seq;
    double delay_ms;
  };
  int64_t WindowOf(int64_t t_ms) const { return t_ms - ((t_ms % window_ms_) + window_ms_) % window_ms_; }
  uint32_t window_ms_, interval_ms_;
  int64_t open_start_ = -1;  // start of the oldest window not closed yet; -1: none yet
  std::vector<std::pair<int64_t, Probe>> pending_;  // probes of open windows, by window start
  std::optional<uint32_t> last_seq_;
  std::optional<double> last_delay_;
};

// One steered direction: its candidates' latest windows, and the choice of the one that
// carries the traffic.
//
// - The active candidate violating `windows` windows in a row is a violation: traffic moves
//   to the compliant candidate with the lowest delay (a candidate complies when its last
//   window met every limit), and the violation clears (the direction's traffic complies). When none complies, it moves to the least bad one if that is
//   better than the active one, and says so (no_compliant).
// - Traffic returns to the preferred candidate (the first) once it has complied for
//   hold_down_s without a break.
// - Damping: within hold_down_s of a switch, traffic only moves to a candidate that has
//   complied for the whole hold-down, so an impairment that comes and goes moves traffic
//   at most once per hold-down.
// Pure: time comes in with the windows.
class DirectionJudge {
 public:
  struct Decision {
    std::vector<SteeringEvent> events;  // kind, path, to_path, measured, limits filled in
    std::optional<std::string> switch_to;
  };
  // `last_switch_ms`: when traffic last moved (restored after a restart); nullopt: never.
  DirectionJudge(std::vector<std::string> candidates, SlaLimits limits, ProbeProfile profile, std::string active,
                 std::optional<int64_t> last_switch_ms);
  // A closed window of a candidate.
  Decision Window(const std::string& candidate, const WindowMeasure& m);
  const std::string& active() const { return active_; }
  // The latest window of each candidate, and whether it complied.
  struct CandidateState {
    std::string name;
    std::optional<WindowMeasure> last;
    bool complies = false;
    int64_t good_since_ms = -1;  // complying without a break since; -1: not complying
    uint32_t bad_streak = 0;
  };
  const std::vector<CandidateState>& candidates() const { return c_; }
  bool violated() const { return violated_; }

 private:
  CandidateState* Find(const std::string& name);
  SteeringEvent Event(const std::string& kind, const CandidateState& c, int64_t now_ms) const;
  std::vector<CandidateState> c_;
  SlaLimits limits_;
  ProbeProfile p_;
  std::string active_;
  std::optional<int64_t> last_switch_ms_;
  bool violated_ = false;      // the active candidate is in a confirmed violation
  bool no_compliant_ = false;  // said already for this episode
};

}  // namespace segwan::controller
