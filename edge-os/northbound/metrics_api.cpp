// /metrics in the Prometheus text format, behind the metrics token when one is set.
#include "edge-os/northbound/http.h"

#include "edge-os/controller/tokens.h"
#include "edge-os/monitoring/prometheus.h"

namespace segwan::controller {

void AddMetricsRoutes(Router& s, const Api& api) {
  // ---- Prometheus
  s.Get("/metrics", [api](Req req, Res res) {
    if (!api.options.metrics_token.empty()) {
      const std::string t = Bearer(req);
      const auto p = api.c->Authenticate(t);
      if (!SameSecret(t, api.options.metrics_token) && !(p && p->is_operator)) {
        return SendError(res, ApiError(kUnauthenticated, "Authorization", "/metrics needs the metrics token"));
      }
    }
    res.set_content(PrometheusText(api.c->GetMetrics()), "text/plain; version=0.0.4");
  });
}

}  // namespace segwan::controller
