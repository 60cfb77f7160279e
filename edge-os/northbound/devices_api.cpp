// Devices: the registry, enrolment (join tokens, revocation) and operator certificates.
#include "edge-os/northbound/http.h"

#include "segwan/clock.h"
#include "segwan/text.h"

namespace segwan::controller {

namespace {

json DeviceJson(const DeviceView& v) {
  const auto& d = v.device;
  json ifs = json::array();
  for (const auto& i : d.interfaces) {
    ifs.push_back({{"name", i.name}, {"addresses", i.addresses}, {"role", Opt(i.role)}, {"up", i.up}});
  }
  return {{"id", d.id}, {"connected", v.connected}, {"enabled", d.enabled},
          {"capabilities", d.capabilities}, {"slice_mode", Opt(d.slice_mode)}, {"locator", Opt(d.locator)},
          {"grpc_address", d.grpc_address}, {"version", d.version}, {"interfaces", ifs},
          {"registered", d.registered_ms ? json(IsoTime(d.registered_ms)) : json(nullptr)},
          {"last_seen", v.last_seen_ms ? json(IsoTime(v.last_seen_ms)) : json(nullptr)}};
}

bool OperatorOnly(const Principal& p, Res res) {
  if (p.is_operator) return true;
  SendError(res, ApiError(kForbidden, "", "only the operator manages devices"));
  return false;
}

bool TrustOn(const Api& api, Res res) {
  if (api.trust) return true;
  SendError(res, ApiError(kConflict, "", "the controller runs --insecure: edges register with the shared token"));
  return false;
}

}  // namespace

void AddDeviceRoutes(Router& s, const Api& api) {
  // ---- devices
  s.Get("/api/v1/devices", api.Authed([api](const Principal&, Req, Res res) {
          json a = json::array();
          for (const auto& d : api.c->Devices()) a.push_back(DeviceJson(d));
          Send(res, 200, a);
        }));
  s.Get(R"(/api/v1/devices/([^/]+))", api.Authed([api](const Principal&, Req req, Res res) {
          auto r = api.c->GetDevice(req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, DeviceJson(*r));
        }));
  s.Post(R"(/api/v1/devices/([^/]+)/(enable|disable))", api.Authed([api](const Principal& p, Req req, Res res) {
           auto r = api.c->SetEnabled(p, req.matches[1], req.matches[2] == "enable");
           if (!r) return SendError(res, r.error());
           Send(res, 200, DeviceJson(*r));
         }));
  // Enrolment (mutual TLS): the operator names a device and gets its one-time join token.
  s.Post("/api/v1/devices", api.Authed([api](const Principal& p, Req req, Res res) {
           if (!OperatorOnly(p, res) || !TrustOn(api, res)) return;
           auto b = Parse(req);
           std::string id;
           if (b.ok) id = b.Str(b.j, "id", "id", true);
           if (!b.ok) return SendError(res, b.error);
           auto t = api.trust->CreateJoinToken(id);
           if (!t) return SendError(res, t.error());
           Send(res, 201, {{"id", t->device_id}, {"join_token", t->token}, {"expires", IsoTime(t->expires_ms)},
                           {"ca_certificate", api.trust->ca_pem()}});
         }));
  s.Get("/api/v1/enrolments", api.Authed([api](const Principal& p, Req, Res res) {
          if (!OperatorOnly(p, res) || !TrustOn(api, res)) return;
          json a = json::array();
          for (const auto& e : api.trust->Enrolments()) {
            json certs = json::array();
            for (const auto& c : e.certificates) {
              certs.push_back({{"serial", c.serial}, {"expires", IsoTime(c.not_after_s * 1000)},
                               {"issued", IsoTime(c.issued_ms)}});
            }
            const bool pending = !e.token_sha256.empty() && e.token_expires_ms > NowUtcMs();
            a.push_back({{"id", e.device_id},
                         {"state", !certs.empty() ? "enrolled" : pending ? "pending" : "expired"},
                         {"join_token_expires", pending ? json(IsoTime(e.token_expires_ms)) : json(nullptr)},
                         {"certificates", certs}});
          }
          Send(res, 200, a);
        }));
  // Revoking takes effect at the device's next call; the device stays listed, disconnected.
  s.Post(R"(/api/v1/devices/([^/]+)/revoke)", api.Authed([api](const Principal& p, Req req, Res res) {
           if (!OperatorOnly(p, res) || !TrustOn(api, res)) return;
           auto st = api.trust->Revoke(req.matches[1]);
           if (!st) return SendError(res, st.error());
           api.c->Disconnect(req.matches[1]);
           res.status = 204;
         }));
  // Deleting forgets the device and revokes its certificates (refused while it is in use).
  s.Delete(R"(/api/v1/devices/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
             if (!OperatorOnly(p, res)) return;
             const std::string id = req.matches[1];
             const bool known = api.c->GetDevice(id).ok();
             if (known) {
               if (auto st = api.c->DeleteDevice(p, id); !st) return SendError(res, st.error());
             }
             const bool enrolled = api.trust && api.trust->Revoke(id).ok();
             if (!known && !enrolled) return SendError(res, ApiError(kNotFound, "id", "no device '" + id + "'"));
             res.status = 204;
           }));
  // A short-lived certificate for an operator's tool (segwan-edgectl) to call the agents.
  s.Post("/api/v1/operator/certificates", api.Authed([api](const Principal& p, Req req, Res res) {
           if (!OperatorOnly(p, res) || !TrustOn(api, res)) return;
           auto b = Parse(req);
           std::string csr;
           if (b.ok) csr = b.Str(b.j, "csr", "csr", true);
           if (!b.ok) return SendError(res, b.error);
           auto issued = api.trust->IssueOperatorCertificate(csr);
           if (!issued) return SendError(res, issued.error());
           Send(res, 201, {{"certificate", issued->pem}, {"ca_certificate", api.trust->ca_pem()},
                           {"expires", IsoTime(issued->not_after_s * 1000)}});
         }));
}

}  // namespace segwan::controller
