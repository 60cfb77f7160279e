// Tenants: the operator makes them; each gets its token once. Also /health and /whoami.
#include "edge-os/northbound/http.h"

#include "segwan/text.h"

namespace segwan::controller {

namespace {

json TenantJson(const Tenant& t) { return {{"id", t.id}, {"name", t.name}, {"created", IsoTime(t.created_ms)}}; }

}  // namespace

void AddTenantRoutes(Router& s, const Api& api) {
  s.Get("/api/v1/health", [](Req, Res res) { Send(res, 200, {{"status", "ok"}}); });
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
}

}  // namespace segwan::controller
