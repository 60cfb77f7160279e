#include "edge-os/northbound/http.h"

#include <cmath>

#include "segwan/clock.h"
#include "segwan/text.h"

namespace segwan::controller {

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

}  // namespace

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

json Num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

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

void Router::Install(httplib::Server& s) {
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

void Router::Dispatch(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* reader) {
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

bool SinceOf(Req req, Res res, int64_t* out) {
  auto v = ParseSince(req.get_param_value("since"), NowUtcMs());
  if (!v) {
    SendError(res, ApiError(kBadRequest, "since", v.error().message));
    return false;
  }
  *out = *v;
  return true;
}

bool LimitOf(Req req, Res res, size_t def, size_t* out) {
  *out = def;
  if (!req.has_param("limit")) return true;
  const auto v = ParseWholeInt(req.get_param_value("limit"));
  if (!v || *v < 1 || *v > 10000) {
    SendError(res, ApiError(kBadRequest, "limit", "must be an integer from 1 to 10000"));
    return false;
  }
  *out = static_cast<size_t>(*v);
  return true;
}

}  // namespace segwan::controller
