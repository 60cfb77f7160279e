// Loss sessions (alternate marking): their lifecycle and closed periods.
#include "edge-os/northbound/http.h"

#include "segwan/text.h"

namespace segwan::controller {

namespace {

json LossPeriodJson(const LossPeriod& l) {
  return {{"index", l.index}, {"colour", l.colour}, {"spans", l.spans}, {"start", IsoTime(l.start_ms)},
          {"end", IsoTime(l.end_ms)}, {"end_ms", l.end_ms}, {"sent", l.sent}, {"received", l.received},
          {"lost", l.lost}, {"loss_ratio", l.loss_ratio}};
}

json LossSessionJson(const LossView& v) {
  const auto& s = v.session;
  return {{"id", s.id}, {"tenant", s.tenant_id}, {"slice", s.slice_id}, {"from", s.from}, {"to", s.to},
          {"family", s.family}, {"segments", s.segments}, {"period_ms", s.period_ms},
          {"last_period", v.last ? LossPeriodJson(*v.last) : json(nullptr)}, {"error", Opt(v.error)},
          {"created", IsoTime(s.created_ms)}};
}

}  // namespace

void AddLossSessionRoutes(Router& s, const Api& api) {
  // ---- loss sessions (alternate marking)
  s.Get("/api/v1/loss-sessions", api.Authed([api](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& v : api.c->LossSessions(p)) a.push_back(LossSessionJson(v));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/loss-sessions", api.Authed([api](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           LossRequest lr;
           if (b.ok) {
             lr.tenant = b.Str(b.j, "tenant", "tenant", false);
             lr.slice = b.Str(b.j, "slice", "slice", true);
             lr.from = b.Str(b.j, "from", "from", true);
             lr.to = b.Str(b.j, "to", "to", true);
             lr.family = b.Str(b.j, "family", "family", false, "ipv6");
             const int64_t period = b.Int(b.j, "period_ms", 10'000);
             if (b.ok && (period < 1000 || period > 3'600'000)) b.Fail("period_ms", "must be 1000 to 3600000");
             lr.period_ms = static_cast<uint32_t>(period);
           }
           if (!b.ok) return SendError(res, b.error);
           auto r = api.c->CreateLossSession(p, lr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/loss-sessions/" + r->session.id);
           Send(res, 201, LossSessionJson(*r));
         }));
  s.Get(R"(/api/v1/loss-sessions/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
          auto r = api.c->GetLossSession(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, LossSessionJson(*r));
        }));
  s.Delete(R"(/api/v1/loss-sessions/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
             auto st = api.c->DeleteLossSession(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));
  s.Get(R"(/api/v1/loss-sessions/([^/]+)/periods)",
        api.Authed([api](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          size_t limit = 0;
          if (!SinceOf(req, res, &since) || !LimitOf(req, res, 1000, &limit)) return;
          auto r = api.c->LossPeriods(p, req.matches[1], since, limit);
          if (!r) return SendError(res, r.error());
          json a = json::array();
          for (const auto& l : *r) a.push_back(LossPeriodJson(l));
          Send(res, 200, {{"periods", a}});
        }));
}

}  // namespace segwan::controller
