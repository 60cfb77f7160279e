// Tenants: the operator makes them; each gets its token once. Also /health and /whoami.
#include "edge-os/northbound/http.h"

#include "segwan/clock.h"
#include "segwan/text.h"

namespace segwan::controller {

namespace {

json TenantJson(const Tenant& t) { return {{"id", t.id}, {"name", t.name}, {"created", IsoTime(t.created_ms)}}; }

}  // namespace

void AddTenantRoutes(Router& s, const Api& api) {
  s.Get("/api/v1/health", [role = api.options.role](Req, Res res) {
    json out{{"status", "ok"}};
    if (!role.empty()) out["role"] = role;  // several controllers (followers say "follower")
    Send(res, 200, out);
  });
  s.Get("/api/v1/whoami", api.Authed([](const Principal& p, Req, Res res) {
          Send(res, 200, {{"operator", p.is_operator}, {"tenant", Opt(p.tenant_id)}});
        }));

  // ---- tenants
  s.Get("/api/v1/tenants", api.Authed([api](const Principal& p, Req, Res res) {
          auto r = api.c->ListTenants(p);
          if (!r) return SendError(res, r.error());
          json a = json::array();
          for (const auto& t : *r) a.push_back(TenantJson(t));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/tenants", api.Authed([api](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           std::string name;
           if (b.ok) name = b.Str(b.j, "name", "name", true);
           if (!b.ok) return SendError(res, b.error);
           auto r = api.c->CreateTenant(p, name);
           if (!r) return SendError(res, r.error());
           json out = TenantJson(r->first);
           out["token"] = r->second;
           Send(res, 201, out);
         }));

  // A tenant's webhook for alerts, and how its deliveries fare.
  auto hook_json = [](const WebhookStatus& w) {
    return json{{"url", w.url}, {"delivered", w.delivered}, {"failed", w.failed}, {"pending", w.pending},
                {"last_error", Opt(w.last_error)},
                {"last_attempt", w.last_attempt_ms ? json(IsoTime(w.last_attempt_ms)) : json(nullptr)},
                {"last_delivered", w.last_delivered_ms ? json(IsoTime(w.last_delivered_ms)) : json(nullptr)}};
  };
  s.Put(R"(/api/v1/tenants/([^/]+)/webhook)", api.Authed([api, hook_json](const Principal& p, Req req, Res res) {
          auto b = Parse(req);
          std::string url;
          if (b.ok) url = b.Str(b.j, "url", "url", true);
          if (!b.ok) return SendError(res, b.error);
          auto r = api.c->SetWebhook(p, req.matches[1], url);
          if (!r) return SendError(res, r.error());
          Send(res, 200, hook_json(*r));
        }));
  s.Get(R"(/api/v1/tenants/([^/]+)/webhook)", api.Authed([api, hook_json](const Principal& p, Req req, Res res) {
          auto r = api.c->GetWebhook(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, hook_json(*r));
        }));
  s.Delete(R"(/api/v1/tenants/([^/]+)/webhook)", api.Authed([api](const Principal& p, Req req, Res res) {
             auto st = api.c->RemoveWebhook(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));
}

}  // namespace segwan::controller
