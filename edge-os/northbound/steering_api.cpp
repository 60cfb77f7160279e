// SLA steering: SLA classes, steering policies (with each direction's candidates, their
// latest window and which one carries the traffic) and the events, newest first, in pages.
#include "edge-os/northbound/http.h"

#include "segwan/text.h"

namespace segwan::controller {

namespace {

json SlaJson(const SlaClass& c) {
  return {{"id", c.id}, {"tenant", c.tenant_id}, {"name", c.name}, {"limits", json(c.limits)},
          {"created", IsoTime(c.created_ms)}};
}

json MeasureJson(const WindowMeasure& m) {
  return {{"end", IsoTime(m.end_ms)}, {"received", m.received}, {"lost", m.lost}, {"delay_ms", Num(m.delay_ms)},
          {"delay_p90_ms", Num(m.delay_p90_ms)}, {"jitter_ms", Num(m.jitter_ms)}, {"loss_pct", Num(m.loss_pct)}};
}

json PolicyJson(const PolicyView& v) {
  const auto& p = v.policy;
  json dirs = json::array();
  for (const auto& d : v.directions) {
    json cands = json::array();
    for (const auto& c : d.candidates) {
      cands.push_back({{"name", c.candidate.name}, {"waypoints", c.candidate.waypoints}, {"session", c.session_id},
                       {"last_window", c.last ? MeasureJson(*c.last) : json(nullptr)}, {"complies", c.complies},
                       {"active", c.candidate.name == d.active}});
    }
    dirs.push_back({{"from", d.from}, {"to", d.to}, {"active", d.active},
                    {"since", d.since_ms ? json(IsoTime(d.since_ms)) : json(nullptr)}, {"violated", d.violated},
                    {"candidates", cands}});
  }
  return {{"id", p.id}, {"tenant", p.tenant_id}, {"slice", p.slice_id}, {"sla", p.sla_id},
          {"probe", {{"interval_ms", p.probe.interval_ms}, {"window_ms", p.probe.window_ms},
                     {"windows", p.probe.windows}, {"hold_down_s", p.probe.hold_down_s}}},
          {"directions", dirs}, {"created", IsoTime(p.created_ms)}};
}

json EventJson(const SteeringEvent& e) {
  return {{"id", e.id}, {"time", IsoTime(e.time_ms)}, {"time_ms", e.time_ms}, {"tenant", e.tenant_id},
          {"slice", e.slice_id}, {"policy", e.policy_id}, {"from", e.from}, {"to", e.to}, {"kind", e.kind},
          {"path", e.path}, {"to_path", Opt(e.to_path)}, {"measured", MeasureJson(e.measured)},
          {"limits", json(e.limits)}};
}

}  // namespace

void AddSteeringRoutes(Router& s, const Api& api) {
  s.Get("/api/v1/sla-classes", api.Authed([api](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& c : api.c->Slas(p)) a.push_back(SlaJson(c));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/sla-classes", api.Authed([api](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           SlaRequest sr;
           if (b.ok) {
             sr.tenant = b.Str(b.j, "tenant", "tenant", false);
             sr.name = b.Str(b.j, "name", "name", true);
             const auto& l = b.Object(b.j, "limits", "limits");
             sr.limits.delay_ms = b.Number(l, "delay_ms", "limits.delay_ms");
             sr.limits.delay_p90_ms = b.Number(l, "delay_p90_ms", "limits.delay_p90_ms");
             sr.limits.jitter_ms = b.Number(l, "jitter_ms", "limits.jitter_ms");
             sr.limits.loss_pct = b.Number(l, "loss_pct", "limits.loss_pct");
           }
           if (!b.ok) return SendError(res, b.error);
           auto r = api.c->CreateSla(p, sr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/sla-classes/" + r->id);
           Send(res, 201, SlaJson(*r));
         }));
  s.Get(R"(/api/v1/sla-classes/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
          auto r = api.c->GetSla(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, SlaJson(*r));
        }));
  s.Delete(R"(/api/v1/sla-classes/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
             auto st = api.c->DeleteSla(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));

  s.Get("/api/v1/steering-policies", api.Authed([api](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& v : api.c->Policies(p)) a.push_back(PolicyJson(v));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/steering-policies", api.Authed([api](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           PolicyRequest pr;
           if (b.ok) {
             pr.tenant = b.Str(b.j, "tenant", "tenant", false);
             pr.slice = b.Str(b.j, "slice", "slice", true);
             pr.sla = b.Str(b.j, "sla", "sla", true);
             const auto& pairs = b.Array(b.j, "pairs", "pairs", false);
             for (size_t k = 0; k < pairs.size() && b.ok; ++k) {
               const std::string f = "pairs[" + std::to_string(k) + "]";
               if (!pairs[k].is_object()) {
                 b.Fail(f, "must be an object {from, to}");
                 break;
               }
               pr.pairs.push_back({b.Str(pairs[k], "from", f + ".from", true), b.Str(pairs[k], "to", f + ".to", true), {}});
             }
             const auto& cands = b.Array(b.j, "candidates", "candidates", false);
             for (size_t k = 0; k < cands.size() && b.ok; ++k) {
               const std::string f = "candidates[" + std::to_string(k) + "]";
               if (!cands[k].is_object()) {
                 b.Fail(f, "must be an object {name, waypoints}");
                 break;
               }
               SteeringCandidate c{b.Str(cands[k], "name", f + ".name", true), b.Strings(cands[k], "waypoints", f + ".waypoints", false)};
               pr.candidates.push_back(std::move(c));
             }
             const auto& probe = b.Object(b.j, "probe", "probe");
             pr.probe.interval_ms = static_cast<uint32_t>(b.IntIn(probe, "interval_ms", "probe.interval_ms", 100, 10, 1000));
             pr.probe.window_ms = static_cast<uint32_t>(b.IntIn(probe, "window_ms", "probe.window_ms", 300, 10, 60'000));
             pr.probe.windows = static_cast<uint32_t>(b.IntIn(probe, "windows", "probe.windows", 3, 1, 20));
             pr.probe.hold_down_s = static_cast<uint32_t>(b.IntIn(probe, "hold_down_s", "probe.hold_down_s", 30, 1, 3600));
           }
           if (!b.ok) return SendError(res, b.error);
           auto r = api.c->CreatePolicy(p, pr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/steering-policies/" + r->policy.id);
           Send(res, 201, PolicyJson(*r));
         }));
  s.Get(R"(/api/v1/steering-policies/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
          auto r = api.c->GetPolicy(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, PolicyJson(*r));
        }));
  s.Delete(R"(/api/v1/steering-policies/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
             auto st = api.c->DeletePolicy(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));

  // Newest first; `before` (an event id) pages back.
  s.Get("/api/v1/steering-events", api.Authed([api](const Principal& p, Req req, Res res) {
          size_t limit = 0;
          if (!LimitOf(req, res, 100, &limit)) return;
          int64_t before = 0;
          if (req.has_param("before")) {
            const auto v = ParseWholeInt(req.get_param_value("before"));
            if (!v || *v < 1) return SendError(res, ApiError(kBadRequest, "before", "must be an event id"));
            before = *v;
          }
          auto r = api.c->SteeringEvents(p, req.get_param_value("slice"), before, limit);
          if (!r) return SendError(res, r.error());
          json a = json::array();
          for (const auto& e : *r) a.push_back(EventJson(e));
          json out = {{"events", a}};
          out["next_before"] = r->size() == limit && !r->empty() ? json(r->back().id) : json(nullptr);
          Send(res, 200, out);
        }));
}

}  // namespace segwan::controller
