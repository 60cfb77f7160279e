// The controller and the agent's own parts over real gRPC on loopback, no root: two agents
// (their Registrar and EdgeService, on fake dataplanes) register with the controller's
// Registration service, and a slice the controller plans is accepted by the agents'
// validation and lands in their dataplanes. Once in plaintext, once with mutual TLS
// (certificates made by the openssl CLI), where an agent without a certificate is refused.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../edge-manager/fake_dataplane.h"
#include "edge-manager/agent/registration.h"
#include "edge-manager/agent/server.h"
#include "edge-manager/api/convert.h"
#include "edge-manager/api/edge_service.h"
#include "edge-os/controller/controller.h"
#include "edge-os/controller/tokens.h"
#include "edge-os/southbound/registration_service.h"

namespace segwan::controller {
namespace {

using namespace std::chrono_literals;
namespace pb = segwan::v1;

constexpr const char* kToken = "device-secret";

bool WaitFor(const std::function<bool()>& f, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

// One agent: its dataplane, slice manager, EdgeService on a port, and its Registrar.
struct Agent {
  std::string id, locator;
  int port = 0;  // chosen by the kernel
  netlink::FakeDataplane dp;
  std::unique_ptr<edge::SliceManager> slices;
  std::unique_ptr<edge::EdgeService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<edge::Registrar> registrar;
  edge::InterfaceRoles roles{{"lan0", "lan"}, {"lan2", "lan"}, {"wan1", "wan"}};
};

class SouthboundTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("segwan-south-" + std::to_string(getpid()) + "-" + std::to_string(GetParam()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    token_file_ = (dir_ / "token").string();
    std::ofstream(token_file_) << kToken << "\n";
    if (tls()) {
      const std::string make = std::string(SEGWAN_TEST_SOURCE_DIR) + "/unit/edge-manager/make_test_certs.sh";
      if (std::system((make + " " + dir_.string() + " >/dev/null").c_str()) != 0) {
        GTEST_SKIP() << "openssl could not make test certificates";
      }
    }
    store_ = std::move(*Store::Open((dir_ / "segwan.db").string()));
    EdgeClientOptions eo{.deadline = 2000ms, .attempts = 2, .retry_backoff = 50ms};
    if (tls()) eo = {.deadline = 2000ms, .attempts = 2, .retry_backoff = 50ms, .ca_file = pem("ca"),
                     .cert_file = pem("client"), .key_file = key("client")};
    connector_ = std::move(*GrpcEdgeConnector::Create(eo));
    ControllerOptions o;
    o.device_token = kToken;
    o.auto_enable = true;
    o.start_threads = false;
    o.heartbeat = 100ms;
    ctl_ = std::make_unique<Controller>(store_.get(), connector_.get(), o);
    ctl_->SetOperatorToken("op");
    registration_ = std::make_unique<RegistrationService>(ctl_.get());
    auto creds = tls() ? segwan::ServerCredentials({pem("server"), key("server"), pem("ca")})
                       : segwan::ServerCredentials({});
    ASSERT_TRUE(creds) << creds.error().ToString();
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", *creds, &ctl_port_);
    b.RegisterService(registration_.get());
    ctl_server_ = b.BuildAndStart();
    ASSERT_TRUE(ctl_server_);
  }
  void TearDown() override {
    for (auto& a : agents_) {
      if (a->registrar) a->registrar->Stop();
      if (a->server) a->server->Shutdown();
    }
    agents_.clear();
    if (ctl_server_) ctl_server_->Shutdown();
    ctl_.reset();
    std::filesystem::remove_all(dir_);
  }

  bool tls() const { return GetParam(); }
  std::string pem(const std::string& n) const { return (dir_ / (n + ".pem")).string(); }
  std::string key(const std::string& n) const { return (dir_ / (n + ".key")).string(); }
  edge::TlsConfig AgentTls(bool with_cert) const {
    if (!tls()) return {};
    return with_cert ? edge::TlsConfig{pem("server"), key("server"), pem("ca")} : edge::TlsConfig{"", "", pem("ca")};
  }

  Agent& StartAgent(const std::string& id, const std::string& locator, bool with_cert = true) {
    auto a = std::make_unique<Agent>();
    a->id = id;
    a->locator = locator;
    if (id == "edge-b") a->dp.AddLink("lan2", {"10.30.1.1/24", "fd10:b::1/64"});
    a->slices = std::make_unique<edge::SliceManager>(&a->dp, edge::SliceMode::kTable, "sr0");
    a->service = std::make_unique<edge::EdgeService>(&a->dp, a->slices.get(), a->roles, "");
    // The agent's server: TLS with its certificate, requiring the controller's client one.
    auto sc = edge::ServerCredentials(AgentTls(true));
    EXPECT_TRUE(sc);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", *sc, &a->port);
    b.RegisterService(a->service.get());
    a->server = b.BuildAndStart();
    auto cc = edge::ChannelCredentials(AgentTls(with_cert));
    EXPECT_TRUE(cc);
    auto* dp = &a->dp;
    auto roles = a->roles;
    a->registrar = std::make_unique<edge::Registrar>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(ctl_port_), *cc),
        edge::RegistrationInfo{.device_id = id,
                               .token_file = token_file_,
                               .grpc_address = "127.0.0.1:" + std::to_string(a->port),
                               .capabilities = {"seg6", "table-mode"},
                               .slice_mode = pb::SLICE_MODE_TABLE,
                               .locator = locator,
                               .version = "test",
                               .interfaces = [dp, roles] { return edge::InterfacesToProto(*dp->Links(), roles); }},
        edge::RegistrationTiming{.first_backoff = 20ms, .max_backoff = 100ms, .call_deadline = 1000ms,
                                 .default_heartbeat = 100ms});
    a->registrar->Start();
    agents_.push_back(std::move(a));
    return *agents_.back();
  }

  bool Connected(const std::string& id) {
    auto d = ctl_->GetDevice(id);
    return d && d->connected;
  }

  std::filesystem::path dir_;
  std::string token_file_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<GrpcEdgeConnector> connector_;
  std::unique_ptr<Controller> ctl_;
  std::unique_ptr<RegistrationService> registration_;
  std::unique_ptr<grpc::Server> ctl_server_;
  int ctl_port_ = 0;
  std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_P(SouthboundTest, AgentsRegisterAndTakeTheSlicesThePlannerMakes) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48");
  auto& b = StartAgent("edge-b", "fc00:0:b::/48");
  ASSERT_TRUE(WaitFor([&] { return Connected("edge-a") && Connected("edge-b"); }))
      << a.registrar->state().last_error;
  auto dev = ctl_->GetDevice("edge-b");
  EXPECT_EQ(dev->device.locator, "fc00:0:b::/48");
  EXPECT_EQ(dev->device.slice_mode, "table");
  ctl_->RunQueued();  // the reconciles queued by the registrations

  Principal op{true, ""};
  auto tenant = ctl_->CreateTenant(op, "acme");
  ASSERT_TRUE(tenant);
  SliceRequest req{.tenant = tenant->first.id,
                   .name = "blue",
                   .sites = {{"edge-a", "lan0", "10.10.1.2"}, {"edge-b", "lan2", "10.30.1.2"}},
                   .paths = {{"edge-a", "edge-b", {"fc00:0:1::e"}}}};
  auto slice = ctl_->CreateSlice(op, req);
  ASSERT_TRUE(slice) << slice.error().ToString();
  EXPECT_EQ(slice->edges.at("edge-a").state, "applied") << slice->edges.at("edge-a").error;
  EXPECT_EQ(slice->edges.at("edge-b").state, "applied") << slice->edges.at("edge-b").error;
  // What the agents' dataplanes now hold
  auto has = [](Agent& x, const std::string& what) {
    for (const auto& r : x.dp.routes()) {
      if (r.ToString().find(what) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(a, "fd10:b::/64")) << "edge-a has no route to site-b";
  EXPECT_TRUE(has(a, "segs 2 [ fc00:0:1::e fc00:0:b:1::d6 ]"));  // pinned through the waypoint
  EXPECT_TRUE(has(b, "fc00:0:b:1::d6"));  // its End.DT6
  EXPECT_TRUE(has(b, "10.10.1.0/24"));

  // Deleting the slice removes it from both agents.
  ASSERT_TRUE(ctl_->DeleteSlice(op, slice->slice.id));
  EXPECT_TRUE(a.slices->Slices().empty());
  EXPECT_TRUE(b.slices->Slices().empty());

  // The agent's heartbeat keeps it connected; a controller that forgot it asks it back.
  a.registrar->Stop();
  EXPECT_FALSE(Connected("edge-a"));  // Stop() unregisters
}

TEST_P(SouthboundTest, AWrongTokenIsRefused) {
  std::ofstream(token_file_) << "guess\n";
  auto& a = StartAgent("edge-a", "fc00:0:a::/48");
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(a.registrar->state().registered);
  EXPECT_NE(a.registrar->state().last_error.find("token"), std::string::npos) << a.registrar->state().last_error;
  EXPECT_FALSE(ctl_->GetDevice("edge-a"));
  // the operator fixes the file; the agent re-reads it at its next attempt
  std::ofstream(token_file_) << kToken << "\n";
  EXPECT_TRUE(WaitFor([&] { return Connected("edge-a"); }));
}

// Only meaningful with TLS: instantiated for it alone.
class SouthboundTlsTest : public SouthboundTest {};
TEST_P(SouthboundTlsTest, AnAgentWithoutACertificateIsRefused) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48", /*with_cert=*/false);
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(a.registrar->state().registered);
  EXPECT_FALSE(ctl_->GetDevice("edge-a"));
}

INSTANTIATE_TEST_SUITE_P(Transport, SouthboundTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "MutualTls" : "Plaintext"; });
INSTANTIATE_TEST_SUITE_P(Transport, SouthboundTlsTest, ::testing::Values(true),
                         [](const auto&) { return "MutualTls"; });

}  // namespace
}  // namespace segwan::controller
