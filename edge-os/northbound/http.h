#pragma once

// What the REST handlers share: the router (routes as data), request bodies whose every
// problem names its field, the error form, and authentication. Each resource's handlers
// live in a file of their own (*_api.cpp) and add their routes with an Add*Routes function.
#include <httplib.h>

#include <functional>
#include <initializer_list>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "edge-os/controller/controller.h"
#include "edge-os/northbound/rest.h"
#include "edge-os/trust/device_trust.h"
#include "segwan/text.h"

namespace segwan::controller {

using nlohmann::json;
using Req = const httplib::Request&;
using Res = httplib::Response&;

void Send(httplib::Response& res, int status, const json& body);
// {"error": {code, message, field}} with the status the error carries.
void SendError(httplib::Response& res, const Error& e);
json Opt(const std::string& s);  // empty: null
json Num(double v);              // not finite: null
std::string Bearer(const httplib::Request& req);

// A request body being read: the first problem is kept, with its field.
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
  // An array of strings (SIDs, names); an item that is not one is named ("field[2]").
  std::vector<std::string> Strings(const json& o, const std::string& key, const std::string& field, bool required) {
    std::vector<std::string> out;
    const auto& a = Array(o, key, field, required);
    for (size_t i = 0; i < a.size() && ok; ++i) {
      if (!a[i].is_string()) Fail(field + "[" + std::to_string(i) + "]", "must be a string");
      else out.push_back(a[i].get<std::string>());
    }
    return out;
  }
  // An integer in [lo, hi], or `def` when absent or null.
  int64_t IntIn(const json& o, const std::string& key, const std::string& field, int64_t def, int64_t lo, int64_t hi) {
    const int64_t v = Int(o, key, def, field);
    if (ok && (v < lo || v > hi)) Fail(field, "must be " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
  }
  // A number, or nothing when the key is absent or null; `field` names it in the error.
  std::optional<double> Number(const json& o, const std::string& key, const std::string& field) {
    if (!o.contains(key) || o[key].is_null()) return std::nullopt;
    if (!o[key].is_number()) {
      Fail(field, "must be a number");
      return std::nullopt;
    }
    return o[key].get<double>();
  }
  const json& Object(const json& o, const std::string& key, const std::string& field) {
    static const json kEmpty = json::object();
    if (!o.contains(key) || o[key].is_null()) return kEmpty;
    if (!o[key].is_object()) {
      Fail(field, "must be an object");
      return kEmpty;
    }
    return o[key];
  }
  int64_t Int(const json& o, const std::string& key, int64_t def, const std::string& field = "") {
    if (!o.contains(key) || o[key].is_null()) return def;
    if (!o[key].is_number_integer()) {
      Fail(field.empty() ? key : field, "must be an integer");
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

Body Parse(const httplib::Request& req);

// What the request line and the query may hold (see http.cpp); the error names the part.
std::optional<Error> CheckTarget(const httplib::Request& req);

// The routes as data: method, pattern, handler. cpp-httplib only carries bytes: every request
// reaches Dispatch through catch-all handlers, so its body is read here, counted as it
// arrives (chunked or not), and a path that exists answers 405 with Allow for other methods.

class Router {
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

  void Install(httplib::Server& s);

 private:
  struct Route {
    std::string method, pattern;
    std::regex re;
    Handler fn;
  };
  void Add(std::string method, const std::string& pattern, Handler h) {
    routes_.push_back({std::move(method), pattern, std::regex(pattern), std::move(h)});
  }

  void Dispatch(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* reader);

  static constexpr size_t kMaxBody = 1 << 20;
  static constexpr size_t kDrainLimit = 8 << 20;
  std::vector<Route> routes_;
};

// What the handlers of every resource have at hand.
struct Api {
  Controller* c;
  DeviceTrust* trust;  // null: plaintext mode
  RestOptions options;
  using Authed_ = std::function<void(const Principal&, Req, Res)>;
  // Wraps a handler with authentication: 401 without a known token.
  Router::Handler Authed(Authed_ fn) const {
    return [c = c, fn = std::move(fn)](Req req, Res res) {
      auto p = c->Authenticate(Bearer(req));
      if (!p) return SendError(res, ApiError(kUnauthenticated, "Authorization", "a valid bearer token is required"));
      fn(*p, req, res);
    };
  }
};
// The "since" and "limit" of a query; false: the error is sent.
bool SinceOf(Req req, Res res, int64_t* out);
bool LimitOf(Req req, Res res, size_t def, size_t* out);

void AddTenantRoutes(Router& s, const Api& api);
void AddDeviceRoutes(Router& s, const Api& api);
void AddSliceRoutes(Router& s, const Api& api);
void AddDelaySessionRoutes(Router& s, const Api& api);
void AddLossSessionRoutes(Router& s, const Api& api);
void AddSteeringRoutes(Router& s, const Api& api);
void AddMetricsRoutes(Router& s, const Api& api);

}  // namespace segwan::controller
