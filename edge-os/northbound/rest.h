#pragma once

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "edge-os/controller/controller.h"
#include "edge-os/trust/device_trust.h"

namespace httplib {
class Server;
}

namespace segwan::controller {

class Router;

struct RestOptions {
  std::string metrics_token;  // non-empty: /metrics wants it (or the operator's) as a bearer token
  std::string role;           // several controllers: "leader", said by /api/v1/health
};

// The REST API under /api/v1 (JSON, bearer tokens; see docs/openapi.yaml), /metrics in the
// Prometheus text format, and the dashboard's static files at /. Handlers are thin: parse,
// call the Controller, map its Error to a status and {"error": {code, message, field}}.
class RestServer {
 public:
  // `trust` null: plaintext mode, no enrolment routes.
  RestServer(Controller* c, std::string web_root, DeviceTrust* trust = nullptr, RestOptions options = {});
  ~RestServer();
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  // Binds (port 0 picks a free one) and serves in a thread of its own.
  Result<int> Start(const std::string& host, int port);
  void Stop();

  // Every (method, path pattern) served, as declared (docs/openapi.yaml is checked against it).
  std::vector<std::pair<std::string, std::string>> RouteList() const;

 private:
  void Routes();
  Controller* c_;
  DeviceTrust* trust_;
  std::string web_root_;
  RestOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Router> router_;
  std::thread thread_;
};

// Binds `http` (port 0: any free one) and serves in `*thread`; the port, once it runs.
Result<int> ServeInThread(httplib::Server& http, std::thread* thread, const std::string& host, int port);

// "since" of a query: milliseconds since the epoch, or a span back from now ("5m", "1h",
// "24h", "30s"). Empty means 0 (everything).
Result<int64_t> ParseSince(const std::string& text, int64_t now_ms);

}  // namespace segwan::controller
