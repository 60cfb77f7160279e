#include "edge-os/steering/judge.h"

#include <algorithm>
#include <cmath>

namespace segwan::controller {

std::optional<std::string> Breaks(const WindowMeasure& m, const SlaLimits& l) {
  if (m.received == 0) return std::string("loss_pct");  // nothing came back: no limit holds
  if (l.delay_ms && m.delay_ms > *l.delay_ms) return std::string("delay_ms");
  if (l.delay_p90_ms && m.delay_p90_ms > *l.delay_p90_ms) return std::string("delay_p90_ms");
  if (l.jitter_ms && m.jitter_ms > *l.jitter_ms) return std::string("jitter_ms");
  if (l.loss_pct && m.loss_pct > *l.loss_pct) return std::string("loss_pct");
  return std::nullopt;
}

double Excess(const WindowMeasure& m, const SlaLimits& l) {
  if (m.received == 0) return 1e9;
  double e = 0;
  auto over = [&](const std::optional<double>& lim, double v) {
    if (!lim || v <= *lim) return;
    e += *lim > 0 ? (v - *lim) / *lim : v;
  };
  over(l.delay_ms, m.delay_ms);
  over(l.delay_p90_ms, m.delay_p90_ms);
  over(l.jitter_ms, m.jitter_ms);
  over(l.loss_pct, m.loss_pct);
  return e;
}

void ProbeWindows::Add(uint32_t seq, int64_t t1_ms, double delay_ms) {
  const int64_t ws = WindowOf(t1_ms);
  if (open_start_ >= 0 && ws < open_start_) {  // late: its window is judged already
    if (!last_seq_ || seq > *last_seq_) last_seq_ = seq;
    return;
  }
  if (open_start_ < 0) open_start_ = ws;
  pending_.push_back({ws, {seq, delay_ms}});
}

std::vector<WindowMeasure> ProbeWindows::Close(int64_t until_ms) {
  std::vector<WindowMeasure> out;
  if (open_start_ < 0) return out;
  constexpr int64_t kMaxBehind = 50;  // a long silence is judged by its last windows only
  if ((until_ms - open_start_) / window_ms_ > kMaxBehind) {
    const int64_t skip = (until_ms - open_start_) / window_ms_ - kMaxBehind;
    open_start_ += skip * window_ms_;
    std::erase_if(pending_, [&](const auto& p) { return p.first < open_start_; });
  }
  const uint32_t per_window = std::max<uint32_t>(1, window_ms_ / std::max<uint32_t>(1, interval_ms_));
  while (open_start_ + window_ms_ <= until_ms) {
    std::vector<Probe> in;
    for (const auto& [ws, p] : pending_) {
      if (ws == open_start_) in.push_back(p);
    }
    std::erase_if(pending_, [&](const auto& p) { return p.first == open_start_; });
    WindowMeasure m;
    m.end_ms = open_start_ + window_ms_;
    if (in.empty()) {
      m.lost = per_window;
      if (last_seq_) *last_seq_ += per_window;  // charged now, not again when probes return
    } else {
      std::sort(in.begin(), in.end(), [](const Probe& a, const Probe& b) { return a.seq < b.seq; });
      m.received = static_cast<uint32_t>(in.size());
      const uint32_t max_seq = in.back().seq;
      const int64_t expected = last_seq_ ? int64_t{max_seq} - int64_t{*last_seq_} : int64_t{max_seq} - in.front().seq + 1;
      m.lost = expected > m.received ? static_cast<uint32_t>(expected - m.received) : 0;
      if (!last_seq_ || max_seq > *last_seq_) last_seq_ = max_seq;
      std::vector<double> d;
      double sum = 0, jitter = 0;
      uint32_t diffs = 0;
      for (const auto& p : in) {
        sum += p.delay_ms;
        d.push_back(p.delay_ms);
        if (last_delay_) {
          jitter += std::fabs(p.delay_ms - *last_delay_);
          ++diffs;
        }
        last_delay_ = p.delay_ms;
      }
      std::sort(d.begin(), d.end());
      m.delay_ms = sum / static_cast<double>(d.size());
      const size_t rank = static_cast<size_t>(std::ceil(0.9 * static_cast<double>(d.size())));
      m.delay_p90_ms = d[std::max<size_t>(rank, 1) - 1];
      m.jitter_ms = diffs ? jitter / diffs : 0;
    }
    m.loss_pct = 100.0 * m.lost / static_cast<double>(m.lost + m.received);
    out.push_back(m);
    open_start_ += window_ms_;
  }
  return out;
}

DirectionJudge::DirectionJudge(std::vector<std::string> candidates, SlaLimits limits, ProbeProfile profile,
                               std::string active, std::optional<int64_t> last_switch_ms)
    : limits_(std::move(limits)), p_(profile), active_(std::move(active)), last_switch_ms_(last_switch_ms) {
  for (auto& n : candidates) c_.push_back({std::move(n), std::nullopt, false, -1, 0});
  if (!c_.empty() && !Find(active_)) active_ = c_.front().name;
}

DirectionJudge::CandidateState* DirectionJudge::Find(const std::string& name) {
  for (auto& c : c_) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

SteeringEvent DirectionJudge::Event(const std::string& kind, const CandidateState& c, int64_t now_ms) const {
  SteeringEvent e;
  e.time_ms = now_ms;
  e.kind = kind;
  e.path = c.name;
  if (c.last) e.measured = *c.last;
  e.limits = limits_;
  return e;
}

DirectionJudge::Decision DirectionJudge::Window(const std::string& candidate, const WindowMeasure& m) {
  Decision d;
  auto* c = Find(candidate);
  if (!c) return d;
  const int64_t now = m.end_ms;
  const int64_t hold_ms = int64_t{p_.hold_down_s} * 1000;
  c->last = m;
  if (!Breaks(m, limits_)) {
    c->bad_streak = 0;
    if (!c->complies) c->good_since_ms = now - p_.window_ms;
    c->complies = true;
  } else {
    ++c->bad_streak;
    c->complies = false;
    c->good_since_ms = -1;
  }
  const bool damped = last_switch_ms_ && now - *last_switch_ms_ < hold_ms;
  auto steady = [&](const CandidateState& x) { return x.complies && x.good_since_ms >= 0 && now - x.good_since_ms >= hold_ms; };
  auto move = [&](CandidateState& to) {
    SteeringEvent e = Event("switch", *Find(active_), now);
    e.to_path = to.name;
    d.events.push_back(std::move(e));
    d.switch_to = to.name;
    active_ = to.name;
    last_switch_ms_ = now;
    violated_ = to.bad_streak >= p_.windows;
    no_compliant_ = false;
    // The direction's traffic is on a compliant path again: its violation is over.
    if (to.complies) d.events.push_back(Event("clear", to, now));
  };
  if (candidate == active_) {
    if (c->complies && violated_) {
      violated_ = false;
      no_compliant_ = false;
      d.events.push_back(Event("clear", *c, now));
    } else if (!c->complies && c->bad_streak >= p_.windows && !violated_) {
      violated_ = true;
      d.events.push_back(Event("violation", *c, now));
    }
    if (violated_) {
      CandidateState* best = nullptr;
      for (auto& x : c_) {
        if (x.name == active_ || !x.complies || !x.last || (damped && !steady(x))) continue;
        if (!best || x.last->delay_ms < best->last->delay_ms) best = &x;
      }
      if (best) {
        move(*best);
        return d;
      }
      if (!no_compliant_) {
        no_compliant_ = true;
        CandidateState* least = nullptr;
        for (auto& x : c_) {
          if (x.name == active_ || !x.last) continue;
          if (!least || Excess(*x.last, limits_) < Excess(*least->last, limits_)) least = &x;
        }
        d.events.push_back(Event("no_compliant", *c, now));
        // Only a clearly better one is worth a move.
        if (least && !damped && Excess(*least->last, limits_) < 0.5 * Excess(m, limits_)) {
          move(*least);
          no_compliant_ = true;
        }
      }
      return d;
    }
  }
  // Back to the preferred candidate once it has complied for the hold-down.
  if (!c_.empty() && active_ != c_.front().name && candidate == c_.front().name && steady(*c)) move(*c);
  return d;
}

}  // namespace segwan::controller
