#include "edge-os/northbound/rest.h"

#include "edge-os/northbound/http.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace {

// Workers of the REST server: a handful of slow clients must not take them all.
constexpr size_t kRestWorkers = 128;

}  // namespace

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

Result<int> ServeInThread(httplib::Server& http, std::thread* thread, const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = http.bind_to_any_port(host);
    if (bound <= 0) return Error{"cannot listen on " + host, "--http-listen", 0};
  } else if (!http.bind_to_port(host, port)) {
    return Error{"cannot listen on " + host + ":" + std::to_string(port), "--http-listen", 0};
  }
  *thread = std::thread([&http] { http.listen_after_bind(); });
  // Stop() is a no-op on a server not yet running (cpp-httplib), which would leave the
  // thread in accept() for ever: only hand out a server that is running.
  for (int i = 0; i < 5000 && !http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!http.is_running()) {
    http.stop();
    return Error{"the HTTP server on " + host + " did not start", "--http-listen", 0};
  }
  return bound;
}

Result<int> RestServer::Start(const std::string& host, int port) { return ServeInThread(*http_, &thread_, host, port); }

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

  const Api api{c_, trust_, options_};
  AddTenantRoutes(s, api);
  AddDeviceRoutes(s, api);
  AddSliceRoutes(s, api);
  AddDelaySessionRoutes(s, api);
  AddLossSessionRoutes(s, api);
  AddSteeringRoutes(s, api);
  AddMetricsRoutes(s, api);
}

}  // namespace segwan::controller
