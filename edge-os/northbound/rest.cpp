#include "edge-os/northbound/rest.h"

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <regex>
#include <sstream>

#include "edge-os/controller/tokens.h"
#include "edge-os/monitoring/prometheus.h"
#include "segwan/clock.h"
#include "segwan/log.h"
#include "segwan/text.h"

namespace segwan::controller {

using nlohmann::json;

Result<int64_t> ParseSince(const std::string& text, int64_t now_ms) {
  if (text.empty()) return int64_t{0};
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const auto v = ParseWholeInt(std::string_view(text).substr(0, digits));
  if (!v) {
    return FieldError("since", "'" + text + "' is neither milliseconds since the epoch nor a span like 5m");
  }
  const std::string unit = text.substr(digits);
  if (unit.empty()) return *v;
  const int64_t mul = unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : unit == "d" ? 86'400'000 : 0;
  if (!mul) return FieldError("since", "unit '" + unit + "' is not s, m, h or d");
  if (*v > now_ms / mul) return FieldError("since", "reaches back before 1970");
  return now_ms - *v * mul;
}

namespace {

// Workers of the REST server: a handful of slow clients must not take them all.
constexpr size_t kRestWorkers = 128;

const char* CodeName(int http) {
  switch (http) {
    case 400: return "invalid_argument";
    case 401: return "unauthenticated";
    case 403: return "permission_denied";
    case 404: return "not_found";
    case 409: return "conflict";
    case 405: return "method_not_allowed";
    case 413: return "too_large";
    case 422: return "edge_refused";
    case 429: return "resource_exhausted";
    case 503: return "unavailable";
    default: return "internal";
  }
}

void Send(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, const Error& e) {
  const int status = e.code >= 400 && e.code < 600 ? e.code : 400;  // 0: bad input without a code
  json err = {{"code", CodeName(status)}, {"message", e.message}};
  err["field"] = e.field.empty() ? json(nullptr) : json(e.field);
  Send(res, status, {{"error", err}});
}

json Opt(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

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

json TenantJson(const Tenant& t) { return {{"id", t.id}, {"name", t.name}, {"created", IsoTime(t.created_ms)}}; }

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

json SessionJson(const SessionView& v) {
  const auto& s = v.session;
  const auto& c = v.counters;
  return {{"id", s.id}, {"tenant", s.tenant_id}, {"slice", s.slice_id}, {"sender", s.sender},
          {"reflector", s.reflector}, {"ssid", s.ssid}, {"interval_ms", s.interval_ms},
          {"timestamp_format", NameOf(s.timestamp_format)}, {"reflector_mode", NameOf(s.reflector_mode)},
          {"engine", NameOf(s.engine)}, {"authenticated", s.authenticated}, {"running", s.running},
          {"packets", {{"received", c.received}, {"edge_sent", c.edge_sent}, {"edge_dropped", c.edge_dropped}}},
          {"error", Opt(v.error)}, {"created", IsoTime(s.created_ms)}};
}

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

json Num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

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

// ---- request bodies: every problem names its field ----------------------------------------
struct Body {
  json j;
  Error error;
  bool ok = true;
  void Fail(std::string field, std::string msg) {
    if (ok) error = ApiError(kBadRequest, std::move(field), std::move(msg));
    ok = false;
  }
  std::string Str(const json& o, const std::string& key, const std::string& field, bool required,
                  std::string def = "") {
    if (!o.contains(key) || o[key].is_null()) {
      if (required) Fail(field, "is required");
      return def;
    }
    if (!o[key].is_string()) {
      Fail(field, "must be a string");
      return def;
    }
    return o[key].get<std::string>();
  }
  // One of an enum's names; the error lists them.
  template <typename E>
  E Choice(const json& o, const std::string& key, E def, std::initializer_list<E> all) {
    const std::string name = Str(o, key, key, false, NameOf(def));
    if (!ok) return def;
    if (auto e = controller::Parse<E>(name, all)) return *e;
    std::string names;
    for (E e : all) names += (names.empty() ? "\"" : ", \"") + NameOf(e) + "\"";
    Fail(key, "must be one of " + names);
    return def;
  }
  bool Bool(const json& o, const std::string& key, bool def) {
    if (!o.contains(key) || o[key].is_null()) return def;
    if (!o[key].is_boolean()) {
      Fail(key, "must be true or false");
      return def;
    }
    return o[key].get<bool>();
  }
  int64_t Int(const json& o, const std::string& key, int64_t def) {
    if (!o.contains(key) || o[key].is_null()) return def;
    if (!o[key].is_number_integer()) {
      Fail(key, "must be an integer");
      return def;
    }
    return o[key].get<int64_t>();
  }
  const json& Array(const json& o, const std::string& key, const std::string& field, bool required) {
    static const json kEmpty = json::array();
    if (!o.contains(key) || o[key].is_null()) {
      if (required) Fail(field, "is required");
      return kEmpty;
    }
    if (!o[key].is_array()) {
      Fail(field, "must be an array");
      return kEmpty;
    }
    return o[key];
  }
};

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
    const auto& w = b.Array(paths[k], "waypoints", f + ".waypoints", true);
    for (size_t i = 0; i < w.size() && b.ok; ++i) {
      if (!w[i].is_string()) b.Fail(f + ".waypoints[" + std::to_string(i) + "]", "must be a SID (string)");
      else path.waypoints.push_back(w[i].get<std::string>());
    }
    sr.paths.push_back(path);
  }
}

Body Parse(const httplib::Request& req) {
  Body b;
  b.j = json::parse(req.body, nullptr, false);
  if (b.j.is_discarded() || !b.j.is_object()) b.Fail("", "the body must be a JSON object");
  return b;
}

std::string Bearer(const httplib::Request& req) {
  const auto h = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (h.size() > prefix.size() && h.compare(0, prefix.size(), prefix) == 0) return h.substr(prefix.size());
  return "";
}

// What the request line and the query may hold: percent-encoding that decodes, and decoded
// text that is UTF-8 without control characters. The error names the part.
std::optional<Error> CheckTarget(const httplib::Request& req) {
  if (!IsValidPercentEncoding(req.target)) return ApiError(kBadRequest, "path", "invalid percent-encoding");
  if (!IsValidUtf8(req.path) || HasControl(req.path)) {
    return ApiError(kBadRequest, "path", "must be UTF-8 without control characters");
  }
  for (const auto& [k, v] : req.params) {
    if (!IsValidUtf8(k) || !IsValidUtf8(v) || HasControl(k) || HasControl(v)) {
      return ApiError(kBadRequest, IsValidUtf8(k) && !HasControl(k) ? k : "query",
                      "must be UTF-8 without control characters");
    }
  }
  return std::nullopt;
}

}  // namespace

// The routes as data: method, pattern, handler. cpp-httplib only carries bytes: every request
// reaches Dispatch through catch-all handlers, so its body is read here, counted as it
// arrives (chunked or not), and a path that exists answers 405 with Allow for other methods.
class RestServer::Router {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  void Get(const std::string& p, Handler h) { Add("GET", p, std::move(h)); }
  void Post(const std::string& p, Handler h) { Add("POST", p, std::move(h)); }
  void Put(const std::string& p, Handler h) { Add("PUT", p, std::move(h)); }
  void Delete(const std::string& p, Handler h) { Add("DELETE", p, std::move(h)); }

  std::vector<std::pair<std::string, std::string>> List() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
    return out;
  }

  void Install(httplib::Server& s) {
    static const std::string kAny = R"([\s\S]*)";
    auto plain = [this](const httplib::Request& req, httplib::Response& res) { Dispatch(req, res, nullptr); };
    auto with_body = [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& rd) {
      Dispatch(req, res, &rd);
    };
    s.Get(kAny, plain);
    s.Options(kAny, plain);
    s.Post(kAny, plain);
    s.Put(kAny, plain);
    s.Patch(kAny, plain);
    s.Delete(kAny, plain);
    s.Post(kAny, with_body);
    s.Put(kAny, with_body);
    s.Patch(kAny, with_body);
    s.Delete(kAny, with_body);
  }

 private:
  struct Route {
    std::string method, pattern;
    std::regex re;
    Handler fn;
  };
  void Add(std::string method, const std::string& pattern, Handler h) {
    routes_.push_back({std::move(method), pattern, std::regex(pattern), std::move(h)});
  }

  void Dispatch(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* reader) {
    if (auto e = CheckTarget(req)) return SendError(res, *e);
    const std::string method = req.method == "HEAD" ? "GET" : req.method;
    const Route* route = nullptr;
    std::vector<std::string> allowed;
    for (const auto& r : routes_) {
      if (!std::regex_match(req.path, r.re)) continue;
      if (r.method == method) {
        route = &r;
        break;
      }
      if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end()) allowed.push_back(r.method);
    }
    if (!route && allowed.empty()) {
      return SendError(res, ApiError(kNotFound, "", "no such resource: " + req.method + " " + req.path));
    }
    if (!route) {
      std::string allow;
      for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
      res.set_header("Allow", allow);
      return SendError(res, ApiError(405, "", req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")"));
    }
    httplib::Request r = req;
    // A request with neither a length nor chunked encoding has no body (RFC 9112 §6.3), as
    // `curl -X POST` sends for .../stop: nothing to read.
    const bool has_body = req.has_header("Content-Length") || req.has_header("Transfer-Encoding");
    if (reader && has_body) {
      // A declared length over the limit is refused before a byte is read; a chunked body
      // when its running count passes the limit.
      const auto declared = ParseWholeInt(req.get_header_value("Content-Length"));
      bool too_large = declared && *declared > static_cast<int64_t>(kMaxBody);
      const bool read = !too_large && (*reader)([&](const char* data, size_t n) {
        if (r.body.size() + n > kMaxBody) {
          too_large = true;
          return false;
        }
        r.body.append(data, n);
        return true;
      });
      // An honest client that declared a little too much gets the answer rather than a reset:
      // up to 8 MiB are read and thrown away (nothing is kept).
      if (too_large && declared && *declared <= static_cast<int64_t>(kDrainLimit)) {
        (*reader)([](const char*, size_t) { return true; });
      }
      if (too_large) {
        res.set_header("Connection", "close");  // the rest of the body is never read
        return SendError(res, ApiError(413, "", "the body is larger than 1 MiB"));
      }
      if (!read) return SendError(res, ApiError(kBadRequest, "", "the body could not be read"));
    }
    std::regex_match(r.path, r.matches, route->re);
    route->fn(r, res);
  }

  static constexpr size_t kMaxBody = 1 << 20;
  static constexpr size_t kDrainLimit = 8 << 20;
  std::vector<Route> routes_;
};

RestServer::RestServer(Controller* c, std::string web_root, DeviceTrust* trust, RestOptions options)
    : c_(c),
      trust_(trust),
      web_root_(std::move(web_root)),
      options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()),
      router_(std::make_unique<Router>()) {
  Routes();
  router_->Install(*http_);
}

RestServer::~RestServer() { Stop(); }

std::vector<std::pair<std::string, std::string>> RestServer::RouteList() const { return router_->List(); }

Result<int> RestServer::Start(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = http_->bind_to_any_port(host);
    if (bound <= 0) return Error{"cannot listen on " + host, "--http-listen", 0};
  } else if (!http_->bind_to_port(host, port)) {
    return Error{"cannot listen on " + host + ":" + std::to_string(port), "--http-listen", 0};
  }
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  return bound;
}

void RestServer::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

void RestServer::Routes() {
  auto& h = *http_;
  auto& s = *router_;
  if (!web_root_.empty() && !h.set_mount_point("/", web_root_)) {
    SEGWAN_LOG(kWarn, "rest") << "web root " << web_root_ << " is not a folder; the dashboard is not served";
  }
  h.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    SEGWAN_LOG(kError, "rest") << what;
    SendError(res, ApiError(500, "", what));
  });
  // Errors cpp-httplib answers by itself (no route, body too large, ...) in the same JSON form.
  h.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string what = res.status == 404   ? "no such resource: " + req.method + " " + req.path
                             : res.status == 413 ? "the body is larger than 1 MiB"
                                                 : "HTTP " + std::to_string(res.status);
    SendError(res, ApiError(res.status, "", what));
  });
  h.set_payload_max_length(1 << 20);
  // cpp-httplib writes headers and body separately: without TCP_NODELAY, Nagle's algorithm
  // and the client's delayed ACK hold every keep-alive response for ~40 ms.
  h.set_tcp_nodelay(true);
  // Slow or idle clients cannot hold a worker for long, and there are enough workers that a
  // few of them do not stop /health (an event loop is the full answer; see docs/operations.md).
  h.set_read_timeout(std::chrono::seconds(5));
  h.set_write_timeout(std::chrono::seconds(5));
  h.set_keep_alive_timeout(5);
  h.set_keep_alive_max_count(100);
  h.new_task_queue = [] { return new httplib::ThreadPool(kRestWorkers); };
  // Headers on every response: no framing, no sniffing, no referrer, scripts from this origin
  // only (the dashboard has no inline script), and nothing of the API kept in caches.
  h.set_post_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                   "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
    if (req.path.rfind("/api/", 0) == 0 || req.path == "/metrics") res.set_header("Cache-Control", "no-store");
  });

  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  // Wraps a handler with authentication: 401 without a known token.
  auto authed = [this](auto fn) {
    return [this, fn](Req req, Res res) {
      auto p = c_->Authenticate(Bearer(req));
      if (!p) return SendError(res, ApiError(kUnauthenticated, "Authorization", "a valid bearer token is required"));
      fn(*p, req, res);
    };
  };
  auto since_of = [](Req req, Res res, int64_t* out) {
    auto v = ParseSince(req.get_param_value("since"), NowUtcMs());
    if (!v) {
      SendError(res, ApiError(kBadRequest, "since", v.error().message));
      return false;
    }
    *out = *v;
    return true;
  };
  auto limit_of = [](Req req, Res res, size_t def, size_t* out) {
    *out = def;
    if (!req.has_param("limit")) return true;
    const auto v = ParseWholeInt(req.get_param_value("limit"));
    if (!v || *v < 1 || *v > 10000) {
      SendError(res, ApiError(kBadRequest, "limit", "must be an integer from 1 to 10000"));
      return false;
    }
    *out = static_cast<size_t>(*v);
    return true;
  };

  s.Get("/api/v1/health", [](Req, Res res) { Send(res, 200, {{"status", "ok"}}); });
  s.Get("/api/v1/whoami", authed([](const Principal& p, Req, Res res) {
          Send(res, 200, {{"operator", p.is_operator}, {"tenant", Opt(p.tenant_id)}});
        }));

  // ---- tenants
  s.Get("/api/v1/tenants", authed([this](const Principal& p, Req, Res res) {
          auto r = c_->ListTenants(p);
          if (!r) return SendError(res, r.error());
          json a = json::array();
          for (const auto& t : *r) a.push_back(TenantJson(t));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/tenants", authed([this](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           std::string name;
           if (b.ok) name = b.Str(b.j, "name", "name", true);
           if (!b.ok) return SendError(res, b.error);
           auto r = c_->CreateTenant(p, name);
           if (!r) return SendError(res, r.error());
           json out = TenantJson(r->first);
           out["token"] = r->second;
           Send(res, 201, out);
         }));

  // ---- devices
  s.Get("/api/v1/devices", authed([this](const Principal&, Req, Res res) {
          json a = json::array();
          for (const auto& d : c_->Devices()) a.push_back(DeviceJson(d));
          Send(res, 200, a);
        }));
  s.Get(R"(/api/v1/devices/([^/]+))", authed([this](const Principal&, Req req, Res res) {
          auto r = c_->GetDevice(req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, DeviceJson(*r));
        }));
  s.Post(R"(/api/v1/devices/([^/]+)/(enable|disable))", authed([this](const Principal& p, Req req, Res res) {
           auto r = c_->SetEnabled(p, req.matches[1], req.matches[2] == "enable");
           if (!r) return SendError(res, r.error());
           Send(res, 200, DeviceJson(*r));
         }));
  // Enrolment (mutual TLS): the operator names a device and gets its one-time join token.
  auto operator_only = [](const Principal& p, Res res) {
    if (p.is_operator) return true;
    SendError(res, ApiError(kForbidden, "", "only the operator manages devices"));
    return false;
  };
  auto trust_on = [this](Res res) {
    if (trust_) return true;
    SendError(res, ApiError(kConflict, "", "the controller runs --insecure: edges register with the shared token"));
    return false;
  };
  s.Post("/api/v1/devices", authed([this, operator_only, trust_on](const Principal& p, Req req, Res res) {
           if (!operator_only(p, res) || !trust_on(res)) return;
           auto b = Parse(req);
           std::string id;
           if (b.ok) id = b.Str(b.j, "id", "id", true);
           if (!b.ok) return SendError(res, b.error);
           auto t = trust_->CreateJoinToken(id);
           if (!t) return SendError(res, t.error());
           Send(res, 201, {{"id", t->device_id}, {"join_token", t->token}, {"expires", IsoTime(t->expires_ms)},
                           {"ca_certificate", trust_->ca_pem()}});
         }));
  s.Get("/api/v1/enrolments", authed([this, operator_only, trust_on](const Principal& p, Req, Res res) {
          if (!operator_only(p, res) || !trust_on(res)) return;
          json a = json::array();
          for (const auto& e : trust_->Enrolments()) {
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
  s.Post(R"(/api/v1/devices/([^/]+)/revoke)", authed([this, operator_only, trust_on](const Principal& p, Req req, Res res) {
           if (!operator_only(p, res) || !trust_on(res)) return;
           auto st = trust_->Revoke(req.matches[1]);
           if (!st) return SendError(res, st.error());
           c_->Disconnect(req.matches[1]);
           res.status = 204;
         }));
  // Deleting forgets the device and revokes its certificates (refused while it is in use).
  s.Delete(R"(/api/v1/devices/([^/]+))", authed([this, operator_only](const Principal& p, Req req, Res res) {
             if (!operator_only(p, res)) return;
             const std::string id = req.matches[1];
             const bool known = c_->GetDevice(id).ok();
             if (known) {
               if (auto st = c_->DeleteDevice(p, id); !st) return SendError(res, st.error());
             }
             const bool enrolled = trust_ && trust_->Revoke(id).ok();
             if (!known && !enrolled) return SendError(res, ApiError(kNotFound, "id", "no device '" + id + "'"));
             res.status = 204;
           }));
  // A short-lived certificate for an operator's tool (segwan-edgectl) to call the agents.
  s.Post("/api/v1/operator/certificates", authed([this, operator_only, trust_on](const Principal& p, Req req, Res res) {
           if (!operator_only(p, res) || !trust_on(res)) return;
           auto b = Parse(req);
           std::string csr;
           if (b.ok) csr = b.Str(b.j, "csr", "csr", true);
           if (!b.ok) return SendError(res, b.error);
           auto issued = trust_->IssueOperatorCertificate(csr);
           if (!issued) return SendError(res, issued.error());
           Send(res, 201, {{"certificate", issued->pem}, {"ca_certificate", trust_->ca_pem()},
                           {"expires", IsoTime(issued->not_after_s * 1000)}});
         }));

  // ---- slices
  s.Get("/api/v1/slices", authed([this](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& v : c_->Slices(p)) a.push_back(SliceJson(v));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/slices", authed([this](const Principal& p, Req req, Res res) {
           auto b = Parse(req);
           SliceRequest sr;
           ParseSlice(b, sr);
           if (!b.ok) return SendError(res, b.error);
           auto r = c_->CreateSlice(p, sr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/slices/" + r->slice.id);
           Send(res, 201, SliceJson(*r));
         }));
  s.Put(R"(/api/v1/slices/([^/]+))", authed([this](const Principal& p, Req req, Res res) {
          auto b = Parse(req);
          SliceRequest sr;
          ParseSlice(b, sr);
          if (!b.ok) return SendError(res, b.error);
          auto r = c_->UpdateSlice(p, req.matches[1], sr);
          if (!r) return SendError(res, r.error());
          Send(res, 200, SliceJson(*r));
        }));
  s.Get(R"(/api/v1/slices/([^/]+))", authed([this](const Principal& p, Req req, Res res) {
          auto r = c_->GetSlice(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, SliceJson(*r));
        }));
  s.Delete(R"(/api/v1/slices/([^/]+))", authed([this](const Principal& p, Req req, Res res) {
             auto st = c_->DeleteSlice(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));

  // ---- delay sessions
  s.Get("/api/v1/delay-sessions", authed([this](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& v : c_->Sessions(p)) a.push_back(SessionJson(v));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/delay-sessions", authed([this](const Principal& p, Req req, Res res) {
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
             sr.start = b.Bool(b.j, "start", true);
           }
           if (!b.ok) return SendError(res, b.error);
           auto r = c_->CreateSession(p, sr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/delay-sessions/" + r->session.id);
           Send(res, 201, SessionJson(*r));
         }));
  s.Get(R"(/api/v1/delay-sessions/([^/]+))", authed([this](const Principal& p, Req req, Res res) {
          auto r = c_->GetSession(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, SessionJson(*r));
        }));
  s.Delete(R"(/api/v1/delay-sessions/([^/]+))", authed([this](const Principal& p, Req req, Res res) {
             auto st = c_->DeleteSession(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));
  s.Post(R"(/api/v1/delay-sessions/([^/]+)/(start|stop))", authed([this](const Principal& p, Req req, Res res) {
           auto r = req.matches[2] == "start" ? c_->StartSession(p, req.matches[1]) : c_->StopSession(p, req.matches[1]);
           if (!r) return SendError(res, r.error());
           Send(res, 200, SessionJson(*r));
         }));
  s.Get(R"(/api/v1/delay-sessions/([^/]+)/results)",
        authed([this, since_of, limit_of](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          size_t limit = 0;
          if (!since_of(req, res, &since) || !limit_of(req, res, 1000, &limit)) return;
          auto r = c_->Results(p, req.matches[1], since, limit);
          if (!r) return SendError(res, r.error());
          const TaiUtc tai{c_->tai_offset_s()};
          json a = json::array();
          for (const auto& x : *r) {
            a.push_back({{"seq", x.seq}, {"reflector_seq", x.reflector_seq},
                         {"time", IsoTime(tai.UtcMs(x.t1))},
                         {"time_ms", tai.UtcMs(x.t1)},
                         {"t1_ns", std::to_string(x.t1)}, {"t2_ns", std::to_string(x.t2)},
                         {"t3_ns", std::to_string(x.t3)}, {"t4_ns", std::to_string(x.t4)},
                         {"direct_ms", x.direct_ms()}, {"return_ms", x.return_ms()}, {"rtt_ms", x.rtt_ms()},
                         {"sender_ttl", x.ttl}});
          }
          Send(res, 200, {{"samples", a}});
        }));
  s.Get(R"(/api/v1/delay-sessions/([^/]+)/intervals)",
        authed([this, since_of, limit_of](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          size_t limit = 0;
          if (!since_of(req, res, &since) || !limit_of(req, res, 1000, &limit)) return;
          auto v = c_->GetSession(p, req.matches[1]);
          if (!v) return SendError(res, v.error());
          auto r = c_->Intervals(p, req.matches[1], since, limit);
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
        authed([this, since_of](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          if (!since_of(req, res, &since)) return;
          auto r = c_->Stats(p, req.matches[1], since);
          if (!r) return SendError(res, r.error());
          json out = DelaysJson(r->delays, nullptr);
          out["packets"] = LossJson(r->sent, r->received, r->lost, r->lost_direct, r->lost_return, r->stateful);
          out["samples"] = r->samples;
          out["since"] = IsoTime(r->since_ms);
          Send(res, 200, out);
        }));

  // ---- loss sessions (alternate marking)
  s.Get("/api/v1/loss-sessions", authed([this](const Principal& p, Req, Res res) {
          json a = json::array();
          for (const auto& v : c_->LossSessions(p)) a.push_back(LossSessionJson(v));
          Send(res, 200, a);
        }));
  s.Post("/api/v1/loss-sessions", authed([this](const Principal& p, Req req, Res res) {
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
           auto r = c_->CreateLossSession(p, lr);
           if (!r) return SendError(res, r.error());
           res.set_header("Location", "/api/v1/loss-sessions/" + r->session.id);
           Send(res, 201, LossSessionJson(*r));
         }));
  s.Get(R"(/api/v1/loss-sessions/([^/]+))", authed([this](const Principal& p, Req req, Res res) {
          auto r = c_->GetLossSession(p, req.matches[1]);
          if (!r) return SendError(res, r.error());
          Send(res, 200, LossSessionJson(*r));
        }));
  s.Delete(R"(/api/v1/loss-sessions/([^/]+))", authed([this](const Principal& p, Req req, Res res) {
             auto st = c_->DeleteLossSession(p, req.matches[1]);
             if (!st) return SendError(res, st.error());
             res.status = 204;
           }));
  s.Get(R"(/api/v1/loss-sessions/([^/]+)/periods)",
        authed([this, since_of, limit_of](const Principal& p, Req req, Res res) {
          int64_t since = 0;
          size_t limit = 0;
          if (!since_of(req, res, &since) || !limit_of(req, res, 1000, &limit)) return;
          auto r = c_->LossPeriods(p, req.matches[1], since, limit);
          if (!r) return SendError(res, r.error());
          json a = json::array();
          for (const auto& l : *r) a.push_back(LossPeriodJson(l));
          Send(res, 200, {{"periods", a}});
        }));

  // ---- Prometheus
  s.Get("/metrics", [this](Req req, Res res) {
    if (!options_.metrics_token.empty()) {
      const std::string t = Bearer(req);
      const auto p = c_->Authenticate(t);
      if (!SameSecret(t, options_.metrics_token) && !(p && p->is_operator)) {
        return SendError(res, ApiError(kUnauthenticated, "Authorization", "/metrics needs the metrics token"));
      }
    }
    res.set_content(PrometheusText(c_->GetMetrics()), "text/plain; version=0.0.4");
  });
}

}  // namespace segwan::controller
