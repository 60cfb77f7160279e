#include "edge-os/alerts/webhooks.h"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>

#include "edge-os/controller/errors.h"
#include "segwan/clock.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace {

bool In(const IpAddress& a, const char* prefix) {
  auto p = ParsePrefix(prefix);
  return p && p->Contains(a);
}

// Every address `host` stands for (a literal is itself).
Result<std::vector<IpAddress>> Resolve(const std::string& host) {
  if (auto a = ParseIp(host)) return std::vector<IpAddress>{*a};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0) {
    return Error{"cannot resolve " + host + ": " + gai_strerror(rc), "url", 0};
  }
  std::vector<IpAddress> out;
  for (auto* ai = res; ai; ai = ai->ai_next) {
    IpAddress a;
    if (ai->ai_family == AF_INET) {
      a.family = AF_INET;
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, 4);
    } else if (ai->ai_family == AF_INET6) {
      a.family = AF_INET6;
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) return Error{"cannot resolve " + host, "url", 0};
  return out;
}

}  // namespace

Result<WebhookUrl> ParseWebhookUrl(const std::string& url) {
  if (url.empty() || url.size() > 2048) return FieldError("url", "must be 1 to 2048 characters");
  WebhookUrl u;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    u.https = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return FieldError("url", "must start with http:// or https://");
  }
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  for (char c : u.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') return FieldError("url", "the path holds a space, a control character or a fragment");
  }
  if (authority.find('@') != std::string::npos) return FieldError("url", "must not carry credentials");
  auto hp = ParseHostPort(authority);
  if (!hp) {
    hp = ParseHostPort(authority + (u.https ? ":443" : ":80"));
    if (!hp) return FieldError("url", "'" + authority + "' is not host[:port]");
  }
  u.host = hp->host;
  u.port = hp->port;
  if (u.host.empty()) return FieldError("url", "has no host");
  for (char c : u.host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_')) {
      return FieldError("url", "'" + u.host + "' is not a host name or address");
    }
  }
  return u;
}

std::optional<std::string> ForbiddenAddress(const IpAddress& a, const std::vector<IpPrefix>& allow) {
  for (const auto& p : allow) {
    if (p.Contains(a)) return std::nullopt;
  }
  IpAddress v = a;
  if (a.family == AF_INET6 && In(a, "::ffff:0:0/96")) {  // an IPv4 address in IPv6 clothes
    v.family = AF_INET;
    std::memmove(v.bytes.data(), a.bytes.data() + 12, 4);
    std::fill(v.bytes.begin() + 4, v.bytes.end(), 0);
    for (const auto& p : allow) {
      if (p.Contains(v)) return std::nullopt;
    }
  }
  static const std::pair<const char*, const char*> kForbidden[] = {
      {"127.0.0.0/8", "loopback"},       {"0.0.0.0/8", "unspecified"},     {"169.254.0.0/16", "link-local"},
      {"10.0.0.0/8", "private"},         {"172.16.0.0/12", "private"},     {"192.168.0.0/16", "private"},
      {"100.64.0.0/10", "shared (CGN)"}, {"224.0.0.0/3", "multicast or reserved"},
      {"::1/128", "loopback"},           {"::/128", "unspecified"},        {"fe80::/10", "link-local"},
      {"fc00::/7", "unique-local"},      {"ff00::/8", "multicast"},
  };
  for (const auto& [prefix, what] : kForbidden) {
    if (In(v, prefix)) return v.ToString() + " is a " + what + " address (the operator may allow it: --webhook-allow)";
  }
  return std::nullopt;
}

Status Webhooks::Load() {
  auto all = store_->Webhooks();
  if (!all) return all.error();
  std::lock_guard lock(mu_);
  for (auto& w : *all) {
    auto& h = hooks_[w.tenant_id];
    h.w = w;
    h.status.url = w.url;
  }
  return Status::Ok();
}

Result<WebhookStatus> Webhooks::Set(const Principal& p, const std::string& tenant_id, const std::string& url) {
  if (!p.Sees(tenant_id)) return ApiError(kNotFound, "id", "no tenant '" + tenant_id + "'");
  if (auto u = ParseWebhookUrl(url); !u) return ApiError(kBadRequest, "url", u.error().message);
  Webhook w{tenant_id, url, NowUtcMs()};
  if (auto st = store_->PutWebhook(w); !st) return st.error();
  std::lock_guard lock(mu_);
  auto& h = hooks_[tenant_id];
  h.w = w;
  h.status.url = url;
  return h.status;
}

Result<WebhookStatus> Webhooks::Get(const Principal& p, const std::string& tenant_id) {
  if (!p.Sees(tenant_id)) return ApiError(kNotFound, "id", "no tenant '" + tenant_id + "'");
  std::lock_guard lock(mu_);
  auto it = hooks_.find(tenant_id);
  if (it == hooks_.end()) return ApiError(kNotFound, "webhook", "tenant " + tenant_id + " has no webhook");
  auto s = it->second.status;
  s.pending = it->second.queue.size();
  return s;
}

Status Webhooks::Remove(const Principal& p, const std::string& tenant_id) {
  if (!p.Sees(tenant_id)) return ApiError(kNotFound, "id", "no tenant '" + tenant_id + "'");
  {
    std::lock_guard lock(mu_);
    if (!hooks_.count(tenant_id)) return ApiError(kNotFound, "webhook", "tenant " + tenant_id + " has no webhook");
  }
  if (auto st = store_->DeleteWebhook(tenant_id); !st) return st.error();
  std::lock_guard lock(mu_);
  hooks_.erase(tenant_id);
  return Status::Ok();
}

void Webhooks::Send(const std::string& tenant_id, nlohmann::json alert) {
  {
    std::lock_guard lock(mu_);
    auto it = hooks_.find(tenant_id);
    if (it == hooks_.end()) return;
    auto& h = it->second;
    if (h.queue.size() >= o_.max_pending) {
      h.queue.pop_front();
      ++h.status.failed;
      ++failures_;
      h.status.last_error = "queue full: the oldest alert was given up on";
      SEGWAN_LOG(kWarn, "alerts") << tenant_id << ": webhook queue full, an alert dropped";
    }
    h.queue.push_back({next_id_++, std::move(alert), 0, std::chrono::steady_clock::now()});
  }
  cv_.notify_all();
}

Status Webhooks::Attempt(const std::string& url, const std::string& body) {
  auto u = ParseWebhookUrl(url);
  if (!u) return u.error();
  auto addrs = Resolve(u->host);
  if (!addrs) return addrs.error();
  for (const auto& a : *addrs) {
    if (auto why = ForbiddenAddress(a, o_.allow)) return Error{*why, "url", 0};
  }
  const std::string host = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
  httplib::Client cli((u->https ? "https://" : "http://") + host + ":" + std::to_string(u->port));
  cli.set_hostname_addr_map({{u->host, addrs->front().ToString()}});  // the address checked, not a new lookup
  const auto secs = static_cast<time_t>(o_.timeout.count() / 1000);
  const auto usecs = static_cast<time_t>((o_.timeout.count() % 1000) * 1000);
  cli.set_connection_timeout(secs, usecs);
  cli.set_read_timeout(secs, usecs);
  cli.set_write_timeout(secs, usecs);
  cli.set_follow_location(false);
  if (u->https) cli.enable_server_certificate_verification(true);
  auto r = cli.Post(u->path, body, "application/json");
  if (!r) return Error{"no answer: " + httplib::to_string(r.error()), "url", 0};
  if (r->status < 200 || r->status >= 300) return Error{"answered HTTP " + std::to_string(r->status), "url", 0};
  return Status::Ok();
}

std::vector<Webhooks::Job> Webhooks::TakeDue(size_t room) {
  std::vector<Job> jobs;
  const auto now = std::chrono::steady_clock::now();
  for (auto& [tenant, h] : hooks_) {
    if (jobs.size() >= room) break;
    if (h.in_flight || h.queue.empty() || h.queue.front().next_at > now) continue;
    h.in_flight = true;
    jobs.push_back({tenant, h.w.url, h.queue.front().body.dump(), h.queue.front().id});
  }
  return jobs;
}

void Webhooks::Account(const Job& j, const Status& st) {
  std::lock_guard lock(mu_);
  auto it = hooks_.find(j.tenant);
  if (it == hooks_.end()) return;
  auto& h = it->second;
  h.in_flight = false;
  // Removed or replaced meanwhile: nothing to account.
  if (h.queue.empty() || h.queue.front().id != j.id) return;
  h.status.last_attempt_ms = NowUtcMs();
  if (st) {
    h.queue.pop_front();
    ++h.status.delivered;
    h.status.last_delivered_ms = h.status.last_attempt_ms;
    return;
  }
  auto& d = h.queue.front();
  ++d.attempts;
  h.status.last_error = st.error().message;
  if (d.attempts >= o_.max_attempts) {
    SEGWAN_LOG(kWarn, "alerts") << j.tenant << ": alert not delivered after " << d.attempts
                                << " attempts, given up: " << st.error().message;
    h.queue.pop_front();
    ++h.status.failed;
    ++failures_;
    return;
  }
  auto backoff = o_.first_backoff * (1 << std::min(d.attempts - 1, 16));
  d.next_at = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(backoff, o_.max_backoff);
  SEGWAN_LOG(kWarn, "alerts") << j.tenant << ": webhook attempt " << d.attempts << " failed: " << st.error().message
                              << " (retrying)";
}

void Webhooks::DeliverDue() {
  std::vector<Job> jobs;
  {
    std::lock_guard lock(mu_);
    jobs = TakeDue(hooks_.size());
  }
  for (const auto& j : jobs) Account(j, Attempt(j.url, j.body));
}

// Hands each due delivery to a thread of its own (at most kMaxSenders at once); a tenant has
// one attempt in flight at a time, so its alerts stay in order.
void Webhooks::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    for (auto& j : TakeDue(kMaxSenders - senders_)) {
      ++senders_;
      std::thread([this, j = std::move(j)] {
        Account(j, Attempt(j.url, j.body));
        std::lock_guard l(mu_);
        --senders_;  // last: Stop waits for this
        cv_.notify_all();
      }).detach();
    }
    auto next = std::chrono::steady_clock::time_point::max();
    for (const auto& [t, h] : hooks_) {
      if (!h.in_flight && !h.queue.empty()) next = std::min(next, h.queue.front().next_at);
    }
    if (senders_ >= kMaxSenders || next == std::chrono::steady_clock::time_point::max()) {
      cv_.wait(lock);
    } else if (next > std::chrono::steady_clock::now()) {
      cv_.wait_until(lock, next);
    }
  }
}

void Webhooks::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Webhooks::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return senders_ == 0; });  // each attempt ends within its timeout
}

uint64_t Webhooks::failures() {
  std::lock_guard lock(mu_);
  return failures_;
}

}  // namespace segwan::controller
