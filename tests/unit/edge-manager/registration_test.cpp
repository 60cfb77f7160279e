// The agent's registration client against a fake controller over real gRPC on loopback.
#include "edge-manager/agent/registration.h"
#include "edge-manager/agent/server.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace segwan::edge {
namespace {

namespace pb = segwan::v1;
using namespace std::chrono_literals;

// A controller that accepts one token and records what it was told.
class FakeController final : public pb::Registration::Service {
 public:
  grpc::Status RegisterDevice(grpc::ServerContext*, const pb::RegisterDeviceRequest* req,
                              pb::RegisterDeviceResponse* resp) override {
    std::lock_guard lock(mu);
    if (req->token() != "good-token") {
      ++refused;
      return {grpc::StatusCode::UNAUTHENTICATED, "unknown registration token"};
    }
    last = *req;
    ++registrations;
    resp->set_heartbeat_interval_ms(30);
    resp->set_enabled(true);
    resp->set_session_id("s" + std::to_string(registrations));
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest* req,
                         pb::HeartbeatResponse* resp) override {
    std::lock_guard lock(mu);
    ++heartbeats;
    last_heartbeat_session = req->session_id();
    if (ask_reregister) {
      ask_reregister = false;
      resp->set_reregister(true);
    }
    return grpc::Status::OK;
  }
  grpc::Status Unregister(grpc::ServerContext*, const pb::UnregisterRequest* req,
                          pb::UnregisterResponse*) override {
    std::lock_guard lock(mu);
    unregistered = req->device_id();
    return grpc::Status::OK;
  }
  std::mutex mu;
  pb::RegisterDeviceRequest last;
  int registrations = 0, refused = 0, heartbeats = 0;
  bool ask_reregister = false;
  std::string unregistered, last_heartbeat_session;
};

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

class RegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    token_file_ = ::testing::TempDir() + "/token-" + std::to_string(getpid());
    WriteToken("good-token\n");
    info_.device_id = "edge-a";
    info_.token_file = token_file_;
    info_.grpc_address = "[fd5e:ff::a]:50061";
    info_.capabilities = {"seg6", "table-mode"};
    info_.slice_mode = pb::SLICE_MODE_TABLE;
    info_.locator = "fc00:0:a::/48";
    info_.interfaces = [] {
      pb::Interface i;
      i.set_name("lan0");
      i.set_role("lan");
      return std::vector<pb::Interface>{i};
    };
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    std::remove(token_file_.c_str());
  }
  void WriteToken(const std::string& t) { std::ofstream(token_file_) << t; }
  void StartController() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port_), grpc::InsecureServerCredentials());
    b.RegisterService(&controller_);
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_);
  }
  std::unique_ptr<Registrar> MakeRegistrar() {
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials());
    return std::make_unique<Registrar>(ch, info_, RegistrationTiming{.first_backoff = 10ms,
                                                                     .max_backoff = 80ms,
                                                                     .call_deadline = 500ms});
  }
  int port_ = 0;
  std::string token_file_;
  RegistrationInfo info_;
  FakeController controller_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(RegistrationTest, RetriesUntilTheControllerAppearsThenHeartbeats) {
  auto r = MakeRegistrar();
  r->Start();
  std::this_thread::sleep_for(150ms);
  EXPECT_FALSE(r->state().registered);
  EXPECT_FALSE(r->state().last_error.empty());
  StartController();
  ASSERT_TRUE(WaitFor([&] { return r->state().registered; })) << r->state().last_error;
  {
    std::lock_guard lock(controller_.mu);
    EXPECT_EQ(controller_.last.device_id(), "edge-a");
    EXPECT_EQ(controller_.last.grpc_address(), "[fd5e:ff::a]:50061");
    EXPECT_EQ(controller_.last.slice_mode(), pb::SLICE_MODE_TABLE);
    EXPECT_EQ(controller_.last.locator(), "fc00:0:a::/48");
    ASSERT_EQ(controller_.last.capabilities_size(), 2);
    ASSERT_EQ(controller_.last.interfaces_size(), 1);
    EXPECT_EQ(controller_.last.interfaces(0).role(), "lan");
  }
  EXPECT_TRUE(r->state().enabled);
  ASSERT_TRUE(WaitFor([&] { std::lock_guard l(controller_.mu); return controller_.heartbeats >= 3; }));
  {
    std::lock_guard lock(controller_.mu);
    EXPECT_EQ(controller_.last_heartbeat_session, "s1");
  }
  r->Stop();
  std::lock_guard lock(controller_.mu);
  EXPECT_EQ(controller_.unregistered, "edge-a");
}

TEST_F(RegistrationTest, RegistersAgainWhenAsked) {
  StartController();
  auto r = MakeRegistrar();
  r->Start();
  ASSERT_TRUE(WaitFor([&] { return r->state().registrations == 1; }));
  {
    std::lock_guard lock(controller_.mu);
    controller_.ask_reregister = true;
  }
  ASSERT_TRUE(WaitFor([&] { return r->state().registrations == 2; }));
  EXPECT_EQ(r->state().session_id, "s2");
}

TEST_F(RegistrationTest, RefusedTokenKeepsTryingAndPicksUpAFixedTokenFile) {
  WriteToken("wrong\n");
  StartController();
  auto r = MakeRegistrar();
  r->Start();
  ASSERT_TRUE(WaitFor([&] { std::lock_guard l(controller_.mu); return controller_.refused >= 2; }));
  EXPECT_FALSE(r->state().registered);
  EXPECT_NE(r->state().last_error.find("unknown registration token"), std::string::npos);
  WriteToken("good-token\n");
  ASSERT_TRUE(WaitFor([&] { return r->state().registered; }));
}

TEST_F(RegistrationTest, ReRegistersAfterTheControllerRestarts) {
  StartController();
  auto r = MakeRegistrar();
  r->Start();
  ASSERT_TRUE(WaitFor([&] { return r->state().registrations == 1; }));
  server_->Shutdown();
  server_.reset();
  ASSERT_TRUE(WaitFor([&] { return !r->state().registered; }));
  StartController();
  ASSERT_TRUE(WaitFor([&] { return r->state().registrations == 2; }));
}

// Two controllers, one leading: the follower refuses (UNAVAILABLE, as edge-os does), the
// agent registers with the leader; when the leader goes and the other leads, it moves.
class Switchable final : public pb::Registration::Service {
 public:
  grpc::Status RegisterDevice(grpc::ServerContext*, const pb::RegisterDeviceRequest*,
                              pb::RegisterDeviceResponse* resp) override {
    if (!leads) return {grpc::StatusCode::UNAVAILABLE, "this controller follows"};
    ++registrations;
    resp->set_heartbeat_interval_ms(30);
    resp->set_enabled(true);
    resp->set_session_id("s");
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest*, pb::HeartbeatResponse*) override {
    return leads ? grpc::Status::OK : grpc::Status(grpc::StatusCode::UNAVAILABLE, "this controller follows");
  }
  std::atomic<bool> leads{false};
  std::atomic<int> registrations{0};
};

TEST_F(RegistrationTest, WithSeveralControllersItRegistersWithTheOneThatLeads) {
  Switchable first, second;
  second.leads = true;
  const int port2 = FreePort();
  std::vector<std::unique_ptr<grpc::Server>> servers;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (auto [svc, port] : {std::pair{&first, port_}, std::pair{&second, port2}}) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials());
    b.RegisterService(svc);
    servers.push_back(b.BuildAndStart());
    ASSERT_TRUE(servers.back());
    channels.push_back(grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  Registrar r(channels, info_, RegistrationTiming{.first_backoff = 10ms, .max_backoff = 80ms, .call_deadline = 500ms});
  r.Start();
  ASSERT_TRUE(WaitFor([&] { return r.state().registered; })) << r.state().last_error;
  EXPECT_EQ(r.state().controller, 1u);
  EXPECT_EQ(second.registrations, 1);
  EXPECT_EQ(first.registrations, 0);
  // The leader changes: the heartbeat to the old one fails, the agent goes to the new one.
  second.leads = false;
  first.leads = true;
  ASSERT_TRUE(WaitFor([&] { return first.registrations >= 1 && r.state().registered; })) << r.state().last_error;
  EXPECT_EQ(r.state().controller, 0u);
  // And back, with the new leader gone entirely.
  servers[0]->Shutdown();
  second.leads = true;
  ASSERT_TRUE(WaitFor([&] { return second.registrations >= 2 && r.state().registered; })) << r.state().last_error;
  EXPECT_EQ(r.state().controller, 1u);
  r.Stop();
}

}  // namespace
}  // namespace segwan::edge
