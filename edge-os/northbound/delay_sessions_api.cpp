// Delay sessions: their lifecycle, samples, intervals and statistics.
#include "edge-os/northbound/http.h"

#include <cmath>

#include "segwan/clock.h"
#include "segwan/text.h"

namespace segwan::controller {

namespace {

json SessionJson(const SessionView& v) {
  const auto& s = v.session;
  const auto& c = v.counters;
  json steering = nullptr;
  if (!s.steering.empty()) {
    steering = {{"policy", s.steering}, {"candidate", s.candidate}, {"waypoints", s.waypoints ? *s.waypoints : std::vector<std::string>{}}};
  }
  return {{"id", s.id}, {"steering", steering}, {"tenant", s.tenant_id}, {"slice", s.slice_id}, {"sender", s.sender},
          {"reflector", s.reflector}, {"ssid", s.ssid}, {"interval_ms", s.interval_ms},
          {"timestamp_format", NameOf(s.timestamp_format)}, {"reflector_mode", NameOf(s.reflector_mode)},
          {"engine", NameOf(s.engine)}, {"authenticated", s.authenticated}, {"follow_up_telemetry", s.follow_up_telemetry}, {"running", s.running},
          {"packets", {{"received", c.received}, {"edge_sent", c.edge_sent}, {"edge_dropped", c.edge_dropped}}},
          {"replies", {{"tlv_unrecognized", c.tlv_unrecognized}, {"tlv_malformed", c.tlv_malformed},
                       {"tlv_integrity_failed", c.tlv_integrity}, {"reflector_unsynchronized", c.unsynchronized},
                       {"follow_up", c.follow_up}}},
          {"error", Opt(v.error)}, {"created", IsoTime(s.created_ms)}};
}

json SeriesJson(const RunningStats& r, const LogHistogram& h, const double* exact_p) {
  if (r.count() == 0) {
    return {{"mean_ms", nullptr}, {"stddev_ms", nullptr}, {"min_ms", nullptr}, {"max_ms", nullptr},
            {"jitter_ms", nullptr}, {"p50_ms", nullptr}, {"p90_ms", nullptr}, {"p99_ms", nullptr}};
  }
  auto q = [&](int i, double p) { return exact_p ? exact_p[i] : *h.Quantile(p) / 1e6; };
  return {{"mean_ms", Num(r.mean())}, {"stddev_ms", Num(r.stddev())}, {"min_ms", Num(r.min())},
          {"max_ms", Num(r.max())}, {"jitter_ms", Num(r.jitter())}, {"p50_ms", Num(q(0, 0.5))},
          {"p90_ms", Num(q(1, 0.9))}, {"p99_ms", Num(q(2, 0.99))}};
}

json DelaysJson(const DelaySet& d, const double (*p)[3]) {
  return {{"direct", SeriesJson(d.direct, d.direct_h, p ? p[0] : nullptr)},
          {"return", SeriesJson(d.back, d.back_h, p ? p[1] : nullptr)},
          {"round_trip", SeriesJson(d.round_trip, d.round_trip_h, p ? p[2] : nullptr)}};
}

json LossJson(uint64_t sent, uint64_t received, uint64_t lost, uint64_t ld, uint64_t lr, bool stateful) {
  return {{"sent", sent}, {"received", received}, {"lost", lost},
          {"lost_direct", stateful ? json(ld) : json(nullptr)},
          {"lost_return", stateful ? json(lr) : json(nullptr)}};
}

}  // namespace

void AddDelaySessionRoutes(Router& s, const Api& api) {
  // ---- delay sessions
  s.Get("/api/v1/delay-sessions", api.Authed([api](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& v : api.c->Sessions(p)) a.push_back(SessionJson(v));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/delay-sessions", api.Authed([api](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           SessionRequest sr;
           if (b.ok) {
             sr.tenant = b.Str(b.j, "tenant", "tenant", false);
             sr.slice = b.Str(b.j, "slice", "slice", true);
             sr.sender = b.Str(b.j, "sender", "sender", true);
             sr.reflector = b.Str(b.j, "reflector", "reflector", true);
             const int64_t interval = b.Int(b.j, "interval_ms", 1000);
             if (b.ok && (interval < 10 || interval > 60000)) b.Fail("interval_ms", "must be 10 to 60000");
             sr.interval_ms = static_cast<uint32_t>(interval);
             sr.timestamp_format = b.Choice(b.j, "timestamp_format", TimestampFormat::kNtp,
                                            {TimestampFormat::kNtp, TimestampFormat::kPtp});
             sr.reflector_mode = b.Choice(b.j, "reflector_mode", ReflectorMode::kStateless,
                                          {ReflectorMode::kStateless, ReflectorMode::kStateful});
             sr.engine = b.Choice(b.j, "engine", EngineChoice::kAuto,
                                  {EngineChoice::kAuto, EngineChoice::kEbpf, EngineChoice::kUserspace});
             sr.authenticated = b.Bool(b.j, "authenticated", false);
             sr.follow_up_telemetry = b.Bool(b.j, "follow_up_telemetry", false);
             sr.start = b.Bool(b.j, "start", true);
           }
           if (!b.ok) return SendError(res, b.error);
           auto r = api.c->CreateSession(p, sr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/delay-sessions/" + r->session.id);
           Send(res, 201, SessionJson(*r));
         }));
  s.Get(R"(/api/v1/delay-sessions/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
          auto r = api.c->GetSession(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, SessionJson(*r));
        }));
  s.Delete(R"(/api/v1/delay-sessions/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
             auto st = api.c->DeleteSession(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));
  s.Post(R"(/api/v1/delay-sessions/([^/]+)/(start|stop))", api.Authed([api](const Principal& p, Req req, Res res) {
           auto r = req.matches[2] == "start" ? api.c->StartSession(p, req.matches[1]) : api.c->StopSession(p, req.matches[1]);
           if (!r) return SendError(res, r.error());
           Send(res, 200, SessionJson(*r));
         }));
  s.Get(R"(/api/v1/delay-sessions/([^/]+)/results)",
        api.Authed([api](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          size_t limit = 0;
          if (!SinceOf(req, res, &since) || !LimitOf(req, res, 1000, &limit)) return;
          auto r = api.c->Results(p, req.matches[1], since, limit);
          if (!r) return SendError(res, r.error());
          const TaiUtc tai{api.c->tai_offset_s()};
          json a = json::array();
          for (const auto& x : *r) {
            a.push_back({{"seq", x.seq}, {"reflector_seq", x.reflector_seq},
                         {"time", IsoTime(tai.UtcMs(x.t1))},
                         {"time_ms", tai.UtcMs(x.t1)},
                         {"t1_ns", std::to_string(x.t1)}, {"t2_ns", std::to_string(x.t2)},
                         {"t3_ns", std::to_string(x.t3)}, {"t4_ns", std::to_string(x.t4)},
                         {"direct_ms", x.direct_ms()}, {"return_ms", x.return_ms()}, {"rtt_ms", x.rtt_ms()},
                         {"sender_ttl", x.ttl},
                         {"reflector_synchronized", !(x.flags & Sample::kUnsynchronized)},
                         {"t3_follow_up", (x.flags & Sample::kFollowUp) != 0}});
          }
          Send(res, 200, {{"samples", a}});
        }));
  s.Get(R"(/api/v1/delay-sessions/([^/]+)/intervals)",
        api.Authed([api](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          size_t limit = 0;
          if (!SinceOf(req, res, &since) || !LimitOf(req, res, 1000, &limit)) return;
          auto v = api.c->GetSession(p, req.matches[1]);
          if (!v) return SendError(res, v.error());
          auto r = api.c->Intervals(p, req.matches[1], since, limit);
          if (!r) return SendError(res, r.error());
          const bool stateful = v->session.reflector_mode == ReflectorMode::kStateful;
          json a = json::array();
          for (const auto& [x, open] : *r) {
            json i = DelaysJson(x.delays, x.p);
            i["start"] = IsoTime(x.start_ms);
            i["start_ms"] = x.start_ms;
            i["length_ms"] = x.length_ms;
            i["open"] = open;
            i["samples"] = x.delays.direct.count();
            i["packets"] = LossJson(x.sent, x.received, x.lost, x.lost_direct, x.lost_return, stateful);
            a.push_back(i);
          }
          Send(res, 200, {{"intervals", a}});
        }));
  s.Get(R"(/api/v1/delay-sessions/([^/]+)/stats)",
        api.Authed([api](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          if (!SinceOf(req, res, &since)) return;
          auto r = api.c->Stats(p, req.matches[1], since);
          if (!r) return SendError(res, r.error());
          json out = DelaysJson(r->delays, nullptr);
          out["packets"] = LossJson(r->sent, r->received, r->lost, r->lost_direct, r->lost_return, r->stateful);
          out["samples"] = r->samples;
          out["since"] = IsoTime(r->since_ms);
          Send(res, 200, out);
        }));
}

}  // namespace segwan::controller
