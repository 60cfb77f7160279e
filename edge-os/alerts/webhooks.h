#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "edge-os/controller/model.h"
#include "edge-os/store/store.h"
#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::controller {

// How a tenant's webhook fares: what reached it, what could not, what waits.
struct WebhookStatus {
  std::string url;
  uint64_t delivered = 0;
  uint64_t failed = 0;  // alerts given up on (attempts used up, or the queue full)
  size_t pending = 0;
  std::string last_error;
  int64_t last_attempt_ms = 0, last_delivered_ms = 0;
};

// Alerts to tenants' webhooks: a JSON POST per alert, from one sender thread, each retried
// with backoff (1 s doubling to 60 s, 8 attempts) until the receiver answers 2xx. A failure
// is never silent: it is logged, counted per tenant (REST) and in /metrics. Each tenant's
// queue is bounded; past it the oldest alert is given up on, counted.
//
// A tenant chooses the URL, so the controller must not become its way into networks it
// should not reach: the host is resolved at each attempt, every address it resolves to is
// checked, and the connection goes to that checked address (no second lookup). Loopback,
// link-local, private, unique-local, multicast and unspecified addresses are refused unless
// the operator allows a network (--webhook-allow). Thread-safe.
class Webhooks {
 public:
  struct Options {
    std::vector<IpPrefix> allow;  // networks tenants' webhooks may reach although private
    size_t max_pending = 256;     // per tenant
    int max_attempts = 8;
    std::chrono::milliseconds first_backoff{1000};
    std::chrono::milliseconds max_backoff{60'000};
    std::chrono::milliseconds timeout{3000};
  };
  Webhooks(Store* store, Options o) : store_(store), o_(std::move(o)) {}
  ~Webhooks() { Stop(); }
  Status Load();

  // Operator: any tenant's; a tenant: its own (another's does not exist for it).
  Result<WebhookStatus> Set(const Principal& p, const std::string& tenant_id, const std::string& url);
  Result<WebhookStatus> Get(const Principal& p, const std::string& tenant_id);
  Status Remove(const Principal& p, const std::string& tenant_id);

  void Send(const std::string& tenant_id, nlohmann::json alert);  // nothing when the tenant has no webhook
  void Start();
  void Stop();
  void DeliverDue();  // tests: one round of due attempts, in the caller's thread
  // Attempts in flight at once, each on a thread of its own: a slow receiver (up to
  // `timeout`) holds only its own tenant's alerts.
  static constexpr size_t kMaxSenders = 8;
  uint64_t failures();

 private:
  struct Delivery {
    uint64_t id = 0;
    nlohmann::json body;
    int attempts = 0;
    std::chrono::steady_clock::time_point next_at;
  };
  struct Hook {
    Webhook w;
    std::deque<Delivery> queue;
    WebhookStatus status;
    bool in_flight = false;  // an attempt for this tenant is being made
  };
  struct Job {
    std::string tenant, url, body;
    uint64_t id;
  };
  // Due first deliveries of tenants with none in flight (at most `room`), marked in flight.
  std::vector<Job> TakeDue(size_t room);  // under mu_
  void Account(const Job& j, const Status& st);  // takes mu_; clears in_flight
  Status Attempt(const std::string& url, const std::string& body);
  void Run();

  Store* store_;
  Options o_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Hook> hooks_;  // by tenant
  uint64_t failures_ = 0;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  size_t senders_ = 0;  // attempts in flight, each on a thread of its own
  std::thread thread_;
};

// A URL a webhook may have: http or https, a host, an optional port and path; at most 2048
// characters. The error names "url".
struct WebhookUrl {
  bool https = false;
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string path;  // "/" at least
};
Result<WebhookUrl> ParseWebhookUrl(const std::string& url);
// Why an address may not be a webhook's (nullopt: it may): loopback, private, ... unless allowed.
std::optional<std::string> ForbiddenAddress(const IpAddress& a, const std::vector<IpPrefix>& allow);

}  // namespace segwan::controller
