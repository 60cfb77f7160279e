// What a following controller serves, against a real PostgreSQL (for the election) and a
// stand-in leader over real HTTP: REST calls go to the leader and its answers come back
// whole; health is answered locally; with no leader, or one that does not answer, 503 with
// Retry-After; the body limit holds before anything is forwarded.
#include "edge-os/ha/follower.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "edge-os/store/store.h"
#include "test_store.h"

namespace segwan::controller {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class FollowerTest : public testing::FreshDatabaseTest {
 protected:
  void SetUp() override {
    FreshDatabaseTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(Store::Open(uri_));
    // The stand-in leader echoes what reached it.
    leader_.Get("/api/v1/echo", [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res, 200); });
    leader_.Post("/api/v1/echo", [this](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Location", "/api/v1/echo/7");
      Echo(req, res, 201);
    });
    leader_.Delete("/api/v1/echo", [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res, 204); });
    leader_port_ = leader_.bind_to_any_port("127.0.0.1");
    leader_thread_ = std::thread([this] { leader_.listen_after_bind(); });
    for (int i = 0; i < 1000 && !leader_.is_running(); ++i) std::this_thread::sleep_for(1ms);
    auto options = [&](const std::string& id, const std::string& http) {
      return LeaderElection::Options{.uri = uri_, .self = {.id = id, .http = http, .grpc = id + ":50051"}, .poll = 50ms};
    };
    a_ = std::move(*LeaderElection::Open(options("ctl-a", "http://127.0.0.1:" + std::to_string(leader_port_))));
    b_ = std::move(*LeaderElection::Open(options("ctl-b", "http://127.0.0.1:1")));
    ASSERT_TRUE(a_->Campaign([] { return false; }));
    const auto until = std::chrono::steady_clock::now() + 300ms;
    ASSERT_FALSE(b_->Campaign([&] { return std::chrono::steady_clock::now() > until; }));
    rest_ = std::make_unique<FollowerRest>(b_.get());
    auto port = rest_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
  }
  void TearDown() override {
    client_.reset();
    if (rest_) rest_->Stop();
    leader_.stop();
    if (leader_thread_.joinable()) leader_thread_.join();
  }
  void Echo(const httplib::Request& req, httplib::Response& res, int status) {
    ++calls_;
    res.status = status;
    res.set_content(json{{"method", req.method}, {"x", req.get_param_value("x")},
                         {"auth", req.get_header_value("Authorization")}, {"body", req.body},
                         {"type", req.get_header_value("Content-Type")}}
                        .dump(),
                    "application/json");
  }
  httplib::Server leader_;
  int leader_port_ = 0;
  std::thread leader_thread_;
  std::atomic<int> calls_{0};
  std::unique_ptr<LeaderElection> a_, b_;
  std::unique_ptr<FollowerRest> rest_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(FollowerTest, CallsGoToTheLeaderAndItsAnswersComeBackWhole) {
  auto health = client_->Get("/api/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(json::parse(health->body)["role"], "follower");
  EXPECT_EQ(json::parse(health->body)["leader"], "ctl-a");
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  EXPECT_EQ(calls_, 0) << "health is the follower's own";

  const httplib::Headers auth{{"Authorization", "Bearer tenant-token"}};
  auto post = client_->Post("/api/v1/echo?x=42", auth, R"({"name": "blue"})", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 201);
  EXPECT_EQ(post->get_header_value("Location"), "/api/v1/echo/7");
  EXPECT_EQ(post->get_header_value("X-SegWAN-Leader"), "ctl-a");
  const auto echoed = json::parse(post->body);
  EXPECT_EQ(echoed["method"], "POST");
  EXPECT_EQ(echoed["x"], "42");
  EXPECT_EQ(echoed["auth"], "Bearer tenant-token");
  EXPECT_EQ(echoed["body"], R"({"name": "blue"})");
  EXPECT_EQ(echoed["type"], "application/json");

  auto get = client_->Get("/api/v1/echo?x=1", auth);
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(json::parse(get->body)["method"], "GET");
  auto del = client_->Delete("/api/v1/echo", auth);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 204);
  EXPECT_EQ(calls_, 3);
}

TEST_F(FollowerTest, ABodyOverTheLimitIsRefusedBeforeItReachesTheLeader) {
  auto big = client_->Post("/api/v1/echo", std::string((1 << 20) + 1, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(calls_, 0);
}

TEST_F(FollowerTest, ALeaderThatDoesNotAnswerOrNoLeaderIs503WithRetryAfter) {
  leader_.stop();
  leader_thread_.join();
  auto r = client_->Get("/api/v1/echo");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "2");
  EXPECT_NE(json::parse(r->body)["error"]["message"].get<std::string>().find("ctl-a"), std::string::npos);

  // A follower that has not learnt of any leader.
  auto c = std::move(*LeaderElection::Open({.uri = uri_, .self = {.id = "ctl-c"}}));
  FollowerRest alone(c.get());
  auto port = alone.Start("127.0.0.1", 0);
  ASSERT_TRUE(port);
  httplib::Client client("127.0.0.1", *port);
  auto none = client.Post("/api/v1/tenants", R"({"name": "x"})", "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 503);
  const auto health = json::parse(client.Get("/api/v1/health")->body);
  EXPECT_EQ(health["leader"], nullptr);
  EXPECT_EQ(health["status"], "no leader") << "it serves nothing: not ok";
  alone.Stop();
}

}  // namespace
}  // namespace segwan::controller
