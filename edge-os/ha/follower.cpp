#include "edge-os/ha/follower.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "edge-os/northbound/rest.h"
#include "segwan/log.h"

namespace segwan::controller {

namespace {

using nlohmann::json;

constexpr size_t kMaxBody = 1 << 20;  // as the leader's own limit

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void Unavailable(httplib::Response& res, const std::string& message) {
  res.set_header("Retry-After", "2");
  SendJson(res, 503, {{"error", {{"code", "unavailable"}, {"message", message}, {"field", ""}}}});
}

}  // namespace

FollowerRest::FollowerRest(const LeaderElection* election)
    : election_(election), http_(std::make_unique<httplib::Server>()) {
  auto& h = *http_;
  h.set_payload_max_length(kMaxBody);
  h.set_tcp_nodelay(true);
  h.set_read_timeout(std::chrono::seconds(5));
  h.set_write_timeout(std::chrono::seconds(5));
  h.set_keep_alive_timeout(1);  // an idle client does not hold up the hand-over to the leader's server
  h.Get("/api/v1/health", [this](const httplib::Request&, httplib::Response& res) {
    const auto leader = election_->Leader();
    if (election_->leading()) {  // its grace, before it serves as the leader
      SendJson(res, 200, {{"status", "starting"}, {"role", "leader"}, {"leader", leader ? json(leader->id) : json(nullptr)}});
      return;
    }
    // With no leader to forward to, it serves nothing: not "ok" (a load balancer's check).
    SendJson(res, 200, {{"status", leader ? "ok" : "no leader"}, {"role", "follower"},
                        {"leader", leader ? json(leader->id) : json(nullptr)}});
  });
  auto forward = [this](const httplib::Request& req, httplib::Response& res) {
    if (election_->leading()) {  // its grace: the old leader's last moments
      Unavailable(res, "this controller is taking over as leader: try again in a second");
      return;
    }
    const auto leader = election_->Leader();
    if (!leader || leader->http.empty()) {
      Unavailable(res, "no controller leads at the moment (a new leader takes over within seconds): try again");
      return;
    }
    httplib::Client client(leader->http);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(std::chrono::seconds(30));
    client.set_write_timeout(std::chrono::seconds(10));
    httplib::Headers headers;
    for (const char* name : {"Authorization", "Accept", "If-None-Match"}) {
      if (req.has_header(name)) headers.emplace(name, req.get_header_value(name));
    }
    headers.emplace("X-Forwarded-For", req.remote_addr);
    const std::string target = req.target.empty() ? req.path : req.target;
    const std::string type = req.get_header_value("Content-Type");
    auto r = [&] {
      if (req.method == "DELETE") return client.Delete(target, headers, req.body, type);
      if (req.method == "POST") return client.Post(target, headers, req.body, type);
      if (req.method == "PUT") return client.Put(target, headers, req.body, type);
      if (req.method == "PATCH") return client.Patch(target, headers, req.body, type);
      return client.Get(target, headers);
    }();
    if (!r) {
      Unavailable(res, "the leader (" + leader->id + ") did not answer: " + httplib::to_string(r.error()));
      return;
    }
    res.status = r->status;
    res.set_content(r->body, r->get_header_value("Content-Type").empty() ? "text/plain"
                                                                           : r->get_header_value("Content-Type"));
    for (const char* name : {"Cache-Control", "Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                             "Referrer-Policy", "Retry-After", "Location", "ETag"}) {
      if (r->has_header(name)) res.set_header(name, r->get_header_value(name));
    }
    res.set_header("X-SegWAN-Leader", leader->id);
  };
  const std::string any = R"(/.*)";
  h.Get(any, forward);
  h.Post(any, forward);
  h.Put(any, forward);
  h.Patch(any, forward);
  h.Delete(any, forward);
}

FollowerRest::~FollowerRest() { Stop(); }

Result<int> FollowerRest::Start(const std::string& host, int port) { return ServeInThread(*http_, &thread_, host, port); }

void FollowerRest::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

grpc::Status FollowerRegistration::Refuse(grpc::ServerContext* ctx) const {
  if (election_->leading()) {
    ctx->AddTrailingMetadata("segwan-leader", "");
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this controller is taking over as leader");
  }
  const auto leader = election_->Leader();
  ctx->AddTrailingMetadata("segwan-leader", leader ? leader->grpc : "");
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      leader ? "this controller follows: the leader is " + leader->grpc
                             : "this controller follows and no controller leads at the moment");
}

}  // namespace segwan::controller
