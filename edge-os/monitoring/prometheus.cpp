#include "edge-os/monitoring/prometheus.h"

#include <sstream>

namespace segwan::controller {

namespace {

class Exposition {
 public:
  template <typename V>
  void Scalar(const char* name, const char* type, const char* help, V value) {
    o_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << value << "\n";
  }
  void Histogram(const char* name, const char* help) {
    o_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  }
  void Series(const char* name, const std::string& labels, const PromHistogram& h) {
    for (size_t i = 0; i < std::size(kMetricBuckets); ++i) {
      o_ << name << "_bucket{" << labels << ",le=\"" << kMetricBuckets[i] << "\"} " << h.buckets[i] << "\n";
    }
    o_ << name << "_bucket{" << labels << ",le=\"+Inf\"} " << h.count << "\n";
    o_ << name << "_sum{" << labels << "} " << h.sum << "\n";
    o_ << name << "_count{" << labels << "} " << h.count << "\n";
  }
  void Family(const char* name, const char* type, const char* help) {
    o_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  template <typename V>
  void Sample(const char* name, const std::string& labels, V value) {
    o_ << name << "{" << labels << "} " << value << "\n";
  }
  std::string str() const { return o_.str(); }

 private:
  std::ostringstream o_;
};

}  // namespace

std::string PrometheusText(const Metrics& m) {
  Exposition e;
  e.Scalar("segwan_devices_connected", "gauge", "Edge routers connected now.", m.devices_connected);
  e.Scalar("segwan_devices_known", "gauge", "Edge routers the controller knows.", m.devices_known);
  e.Scalar("segwan_poll_errors_total", "counter", "Failed result polls of delay sessions.", m.poll_errors);
  e.Scalar("segwan_samples_stored_total", "counter", "STAMP samples written to the store since start.", m.samples_stored);
  e.Scalar("segwan_edge_records_dropped_total", "counter", "Records edges dropped for lack of queue room.",
           m.edge_records_dropped);
  e.Scalar("segwan_store_errors_total", "counter", "Store reads and writes that failed (disk full, I/O error).",
           m.store_errors);
  e.Scalar("segwan_store_pending_samples", "gauge", "Samples held in memory while the store fails.",
           m.store_pending_samples);
  e.Scalar("segwan_store_dropped_samples_total", "counter", "Samples dropped because the store failed for too long.",
           m.store_dropped_samples);
  e.Scalar("segwan_result_streams_up", "gauge", "Edges whose result stream delivers (notification mode).",
           m.streams_up);
  e.Scalar("segwan_result_stream_batches_total", "counter", "Result batches the edges pushed.", m.stream_batches);
  e.Scalar("segwan_result_stream_duplicates_total", "counter", "Records a resumed stream sent again, ignored.",
           m.stream_duplicates);
  e.Histogram("segwan_delay_seconds", "One-way delay of delay sessions, since the controller started.");
  for (const auto& sm : m.sessions) {
    for (int dir = 0; dir < 2; ++dir) {
      const std::string labels = "session=\"" + sm.session_id + "\",tenant=\"" + sm.tenant_id +
                                 "\",direction=\"" + (dir == 0 ? "direct" : "return") + "\"";
      e.Series("segwan_delay_seconds", labels, dir == 0 ? sm.direct : sm.back);
    }
  }
  e.Scalar("segwan_webhook_failures_total", "counter", "Alerts given up on: their webhook never took them.",
           m.webhook_failures);
  // Steering: one series per steered direction (the active one per candidate), so a policy
  // adds directions x (candidates + 1) series.
  e.Family("segwan_steering_switches_total", "counter", "Times a steered direction's traffic moved to another path.");
  for (const auto& d : m.steering.directions) {
    e.Sample("segwan_steering_switches_total",
             "policy=\"" + d.policy + "\",tenant=\"" + d.tenant + "\",from=\"" + d.from + "\",to=\"" + d.to + "\"", d.switches);
  }
  e.Family("segwan_steering_active_path", "gauge", "1 for the candidate path carrying a steered direction's traffic.");
  for (const auto& d : m.steering.directions) {
    for (const auto& c : d.candidates) {
      e.Sample("segwan_steering_active_path",
               "policy=\"" + d.policy + "\",tenant=\"" + d.tenant + "\",from=\"" + d.from + "\",to=\"" + d.to +
                   "\",path=\"" + c + "\"",
               c == d.active ? 1 : 0);
    }
  }
  return e.str();
}

}  // namespace segwan::controller
