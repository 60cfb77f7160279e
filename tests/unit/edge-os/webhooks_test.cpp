// Alerts to tenants' webhooks, against a real HTTP receiver on loopback: a receiver that
// fails gets the alert again with backoff until it takes it; an address the operator did not
// allow (loopback, private) is never contacted and the failure shows; the queue is bounded;
// a tenant sees only its own webhook.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <thread>

#include "edge-os/alerts/webhooks.h"
#include "edge-os/store/store.h"
#include "test_store.h"

namespace segwan::controller {
namespace {

using namespace std::chrono_literals;

TEST(WebhookUrl, OnlyHttpUrlsWithAHostAndNoCredentials) {
  auto u = ParseWebhookUrl("https://hooks.example.com/segwan?x=1");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->host, "hooks.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/segwan?x=1");
  u = ParseWebhookUrl("http://[2001:db8::1]:8080");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "2001:db8::1");
  EXPECT_EQ(u->path, "/");
  for (const char* bad : {"", "ftp://x/", "http://", "http://user:pw@x/", "http://x/a b", "http://x:0/", "http://x/#f",
                          "http://a%20b/"}) {
    auto r = ParseWebhookUrl(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().field, "url");
    }
  }
}

TEST(WebhookUrl, PrivateAddressesNeedTheOperatorsLeave) {
  const std::vector<IpPrefix> none;
  for (const char* a : {"127.0.0.1", "10.1.2.3", "192.168.0.1", "172.20.0.1", "169.254.1.1", "::1", "fe80::1", "fd00::1",
                        "::ffff:10.0.0.1", "0.0.0.0", "224.0.0.1"}) {
    EXPECT_TRUE(ForbiddenAddress(*ParseIp(a), none)) << a;
  }
  for (const char* a : {"8.8.8.8", "2001:db8::1", "203.0.113.9"}) EXPECT_FALSE(ForbiddenAddress(*ParseIp(a), none)) << a;
  const std::vector<IpPrefix> lab{*ParsePrefix("127.0.0.0/8"), *ParsePrefix("10.0.0.0/8")};
  EXPECT_FALSE(ForbiddenAddress(*ParseIp("127.0.0.1"), lab));
  EXPECT_FALSE(ForbiddenAddress(*ParseIp("::ffff:10.0.0.1"), lab));
  EXPECT_TRUE(ForbiddenAddress(*ParseIp("192.168.0.1"), lab));
}

class WebhooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("segwan-webhooks-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::move(*testing::OpenTestStore(dir_));
    server_.Post("/slow", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock l(mu_);
      slow_entered_ = true;
      slow_cv_.notify_all();
      slow_cv_.wait_for(l, 10s, [this] { return slow_released_; });
      res.status = 204;
    });
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      const int n = ++calls_;
      if (n <= fail_first_) {
        res.status = 500;
        return;
      }
      std::lock_guard l(mu_);
      bodies_.push_back(nlohmann::json::parse(req.body));
      res.status = 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // A stop before the server runs would be lost (and the join would wait forever).
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(server_.is_running());
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  // Rounds of due attempts until `done` or 5 s.
  template <typename F>
  static bool Until(Webhooks& w, F done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      w.DeliverDue();
      std::this_thread::sleep_for(10ms);
    }
    return done();
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> calls_{0};
  int fail_first_ = 0;
  std::mutex mu_;
  std::condition_variable slow_cv_;
  bool slow_entered_ = false, slow_released_ = false;
  std::vector<nlohmann::json> bodies_;
  Principal acme_{false, "t1"};
};

TEST_F(WebhooksTest, AFailingReceiverGetsTheAlertAgainUntilItTakesIt) {
  fail_first_ = 2;
  Webhooks w(store_.get(), {.allow = {*ParsePrefix("127.0.0.0/8")}, .first_backoff = 20ms});
  ASSERT_TRUE(w.Set(acme_, "t1", Url()));
  w.Send("t1", {{"alert", "sla_violation"}, {"state", "raised"}});
  w.Send("t2", {{"alert", "nobody listens"}});  // no webhook: nothing
  ASSERT_TRUE(Until(w, [&] { return w.Get(acme_, "t1")->delivered == 1; }));
  EXPECT_EQ(calls_, 3);
  auto st = w.Get(acme_, "t1");
  EXPECT_EQ(st->failed, 0u);
  EXPECT_EQ(st->pending, 0u);
  EXPECT_EQ(st->last_error, "answered HTTP 500") << "the earlier failures show";
  std::lock_guard l(mu_);
  ASSERT_EQ(bodies_.size(), 1u);
  EXPECT_EQ(bodies_[0]["state"], "raised");
}

TEST_F(WebhooksTest, AReceiverThatHangsHoldsOnlyItsOwnTenantsAlerts) {
  Webhooks w(store_.get(), {.allow = {*ParsePrefix("127.0.0.0/8")}, .timeout = 8000ms});
  const Principal globex{false, "t2"};
  ASSERT_TRUE(w.Set(acme_, "t1", "http://127.0.0.1:" + std::to_string(port_) + "/slow"));
  ASSERT_TRUE(w.Set(globex, "t2", Url()));
  w.Start();
  w.Send("t1", {{"alert", "for the hanging receiver"}});
  {
    std::unique_lock l(mu_);
    ASSERT_TRUE(slow_cv_.wait_for(l, 5s, [this] { return slow_entered_; }));
  }
  w.Send("t2", {{"alert", "for the other tenant"}});
  // Delivered while t1's attempt still hangs.
  bool delivered = false;
  for (int i = 0; i < 500 && !delivered; ++i) {
    std::this_thread::sleep_for(10ms);
    std::lock_guard l(mu_);
    delivered = !bodies_.empty();
  }
  EXPECT_TRUE(delivered);
  EXPECT_EQ(w.Get(acme_, "t1")->pending, 1u);  // t1's attempt is still hanging
  EXPECT_EQ(w.Get(acme_, "t1")->delivered, 0u);
  {
    std::lock_guard l(mu_);
    slow_released_ = true;
  }
  slow_cv_.notify_all();
  for (int i = 0; i < 500 && w.Get(acme_, "t1")->delivered == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(w.Get(acme_, "t1")->delivered, 1u);
  w.Stop();
}

TEST_F(WebhooksTest, AnAddressNotAllowedIsNeverContactedAndTheFailureShows) {
  Webhooks w(store_.get(), {.max_attempts = 2, .first_backoff = 1ms});
  ASSERT_TRUE(w.Set(acme_, "t1", Url()));
  w.Send("t1", {{"alert", "sla_violation"}});
  ASSERT_TRUE(Until(w, [&] { return w.Get(acme_, "t1")->failed == 1; }));
  EXPECT_EQ(calls_, 0);
  EXPECT_NE(w.Get(acme_, "t1")->last_error.find("loopback"), std::string::npos) << w.Get(acme_, "t1")->last_error;
  EXPECT_EQ(w.failures(), 1u);
}

TEST_F(WebhooksTest, TheQueueIsBoundedAndATenantSeesOnlyItsOwn) {
  Webhooks w(store_.get(), {.allow = {*ParsePrefix("127.0.0.0/8")}, .max_pending = 2});
  ASSERT_TRUE(w.Set(acme_, "t1", Url()));
  for (int i = 0; i < 3; ++i) w.Send("t1", {{"n", i}});
  EXPECT_EQ(w.Get(acme_, "t1")->failed, 1u);
  EXPECT_EQ(w.Get(acme_, "t1")->pending, 2u);
  const Principal globex{false, "t2"};
  EXPECT_FALSE(w.Get(globex, "t1"));
  EXPECT_FALSE(w.Set(globex, "t1", Url()));
  EXPECT_FALSE(w.Remove(globex, "t1"));
  auto bad = w.Set(acme_, "t1", "gopher://x/");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "url");
  EXPECT_EQ(w.Get(acme_, "t1")->url, Url()) << "a refused change changes nothing";
  // Kept in the store: a restarted controller still knows it.
  Webhooks again(store_.get(), {});
  ASSERT_TRUE(again.Load());
  EXPECT_EQ(again.Get(acme_, "t1")->url, Url());
  ASSERT_TRUE(again.Remove(acme_, "t1"));
  EXPECT_FALSE(again.Get(acme_, "t1"));
}

}  // namespace
}  // namespace segwan::controller
