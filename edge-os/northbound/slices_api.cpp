// Slices: create, change, read and delete a tenant's slices.
#include "edge-os/northbound/http.h"

#include "segwan/text.h"

namespace segwan::controller {

namespace {

json SliceJson(const SliceView& v) {
  const auto& s = v.slice;
  json sites = json::array(), paths = json::array(), edges = json::object();
  for (const auto& x : s.sites) {
    json site = {{"device", x.device}, {"interface", x.interface}};
    if (!x.nexthop4.empty()) site["nexthop4"] = x.nexthop4;
    sites.push_back(site);
  }
  for (const auto& p : s.paths) paths.push_back({{"from", p.from}, {"to", p.to}, {"waypoints", p.waypoints}});
  for (const auto& [d, e] : v.edges) edges[d] = {{"state", e.state}, {"error", Opt(e.error)}};
  return {{"id", s.id}, {"tenant", s.tenant_id}, {"name", s.name}, {"table", 1000 + s.number},
          {"sites", sites}, {"paths", paths}, {"edges", edges}, {"created", IsoTime(s.created_ms)}};
}

// {name, sites: [{device, interface, nexthop4?}], paths?: [{from, to, waypoints}], tenant?}
void ParseSlice(Body& b, SliceRequest& sr) {
  if (!b.ok) return;
  sr.tenant = b.Str(b.j, "tenant", "tenant", false);
  sr.name = b.Str(b.j, "name", "name", true);
  const auto& sites = b.Array(b.j, "sites", "sites", true);
  for (size_t k = 0; k < sites.size() && b.ok; ++k) {
    const std::string f = "sites[" + std::to_string(k) + "]";
    if (!sites[k].is_object()) {
      b.Fail(f, "must be an object {device, interface}");
      break;
    }
    SliceSite site;
    site.device = b.Str(sites[k], "device", f + ".device", true);
    site.interface = b.Str(sites[k], "interface", f + ".interface", true);
    site.nexthop4 = b.Str(sites[k], "nexthop4", f + ".nexthop4", false);
    sr.sites.push_back(site);
  }
  const auto& paths = b.Array(b.j, "paths", "paths", false);
  for (size_t k = 0; k < paths.size() && b.ok; ++k) {
    const std::string f = "paths[" + std::to_string(k) + "]";
    if (!paths[k].is_object()) {
      b.Fail(f, "must be an object {from, to, waypoints}");
      break;
    }
    SlicePath path;
    path.from = b.Str(paths[k], "from", f + ".from", true);
    path.to = b.Str(paths[k], "to", f + ".to", true);
    path.waypoints = b.Strings(paths[k], "waypoints", f + ".waypoints", true);
    sr.paths.push_back(path);
  }
}

}  // namespace

void AddSliceRoutes(Router& s, const Api& api) {
  // ---- slices
  s.Get("/api/v1/slices", api.Authed([api](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& v : api.c->Slices(p)) a.push_back(SliceJson(v));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/slices", api.Authed([api](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           SliceRequest sr;
           ParseSlice(b, sr);
           if (!b.ok) return SendError(res, b.error);
           auto r = api.c->CreateSlice(p, sr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/slices/" + r->slice.id);
           Send(res, 201, SliceJson(*r));
         }));
  s.Put(R"(/api/v1/slices/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
          auto b = Parse(req);
          SliceRequest sr;
          ParseSlice(b, sr);
          if (!b.ok) return SendError(res, b.error);
          auto r = api.c->UpdateSlice(p, req.matches[1], sr);
          if (!r) return SendError(res, r.error());
          Send(res, 200, SliceJson(*r));
        }));
  s.Get(R"(/api/v1/slices/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
          auto r = api.c->GetSlice(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, SliceJson(*r));
        }));
  s.Delete(R"(/api/v1/slices/([^/]+))", api.Authed([api](const Principal& p, Req req, Res res) {
             auto st = api.c->DeleteSlice(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));
}

}  // namespace segwan::controller
