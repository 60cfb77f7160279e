// The controller and the agent's own parts over real gRPC on loopback, no root: two agents
// (their Registrar and EdgeService, on fake dataplanes) register with the controller's
// Registration service, and a slice the controller plans is accepted by the agents'
// validation and lands in their dataplanes. Once in plaintext (the shared token), once with
// mutual TLS as it runs by default: the controller's own CA, agents enrolled with one-time
// join tokens, identities read from certificates on both sides.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../edge-manager/fake_dataplane.h"
#include "edge-manager/agent/enrolment.h"
#include "edge-manager/agent/registration.h"
#include "edge-manager/agent/server.h"
#include "edge-manager/api/convert.h"
#include "edge-manager/api/edge_service.h"
#include "edge-os/controller/controller.h"
#include "test_store.h"
#include "edge-os/controller/tokens.h"
#include "edge-os/southbound/registration_service.h"
#include "edge-os/trust/ca.h"
#include "edge-os/trust/device_trust.h"

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
  std::shared_ptr<LeaderFence> fence = std::make_shared<LeaderFence>();
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
    store_ = std::move(*testing::OpenTestStore(dir_));
    EdgeClientOptions eo{.deadline = 2000ms, .attempts = 2, .retry_backoff = 50ms, .leader_epoch = epoch_};
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (tls()) {
      ca_ = std::move(*CertificateAuthority::LoadOrCreate(dir_.string()));
      ASSERT_TRUE(ca_->EnsureOwnCertificate(dir_.string(), 24h, 1h));
      // Two-minute device certificates: with the five minutes they are backdated for slow
      // clocks, a renewal is due at once (less than a third of the lifetime is left).
      trust_ = std::make_unique<DeviceTrust>(store_.get(), ca_.get(), TrustOptions{.device_certificate_lifetime = 120s});
      eo.tls = ControllerIdentity();
      auto sc = segwan::MtlsServerCredentials(*eo.tls, segwan::ClientCertificates::kOptional);
      ASSERT_TRUE(sc) << sc.error().ToString();
      creds = *sc;
    }
    connector_ = std::move(*GrpcEdgeConnector::Create(eo));
    ControllerOptions o;
    o.device_token = tls() ? "" : kToken;
    o.auto_enable = true;
    o.start_threads = false;
    o.heartbeat = 100ms;
    ctl_ = std::make_unique<Controller>(store_.get(), connector_.get(), o);
    ctl_->SetOperatorToken("op");
    registration_ = std::make_unique<RegistrationService>(ctl_.get(), trust_.get(), epoch_);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", creds, &ctl_port_);
    b.RegisterService(registration_.get());
    ctl_server_ = b.BuildAndStart();
    ASSERT_TRUE(ctl_server_);
  }
  segwan::TlsIdentity ControllerIdentity() const {
    return {(dir_ / "controller.key").string(), (dir_ / "controller.pem").string(), (dir_ / "ca.pem").string()};
  }
  std::string CtlAddress() const { return "127.0.0.1:" + std::to_string(ctl_port_); }
  std::string TlsDir(const std::string& id) const { return (dir_ / ("tls-" + id)).string(); }
  // Enrols `id` the way an agent does at its first start, with a join token made for it.
  Status EnrolAgent(const std::string& id) {
    auto t = trust_->CreateJoinToken(id);
    if (!t) return t.error();
    const std::string file = (dir_ / ("join-" + id)).string();
    std::ofstream(file) << t->token << "\n";
    return edge::Enrol({.device_id = id, .controller = CtlAddress(), .ca_file = (dir_ / "ca.pem").string(),
                        .join_token_file = file, .tls_dir = TlsDir(id)});
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
  Agent& StartAgent(const std::string& id, const std::string& locator, bool with_cert = true) {
    auto a = std::make_unique<Agent>();
    a->id = id;
    a->locator = locator;
    if (id == "edge-b") a->dp.AddLink("lan2", {"10.30.1.1/24", "fd10:b::1/64"});
    a->slices = std::make_unique<edge::SliceManager>(&a->dp, edge::SliceMode::kTable, "sr0");
    a->service = std::make_unique<edge::EdgeService>(&a->dp, a->slices.get(), a->roles, "");
    // The agent's server: its certificate, answering the controller (and operators) only.
    std::shared_ptr<grpc::ServerCredentials> sc = grpc::InsecureServerCredentials();
    std::shared_ptr<grpc::ChannelCredentials> cc = grpc::InsecureChannelCredentials();
    if (tls()) {
      EXPECT_TRUE(EnrolAgent(id));
      auto s = edge::MtlsServerCredentials(
          edge::IdentityIn(TlsDir(id)), edge::ClientCertificates::kRequire,
          FenceLeaderEpochs(edge::RequirePeerNames({pki::kControllerName, pki::kOperatorName}), a->fence));
      EXPECT_TRUE(s) << s.error().ToString();
      sc = *s;
      auto identity = edge::IdentityIn(TlsDir(id));
      if (!with_cert) identity = {.ca_file = identity.ca_file};
      auto c = edge::MtlsChannelCredentials(identity);
      EXPECT_TRUE(c);
      cc = *c;
    }
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", sc, &a->port);
    b.RegisterService(a->service.get());
    a->server = b.BuildAndStart();
    auto channel = tls() ? edge::MtlsChannel(CtlAddress(), cc, pki::kControllerName) : grpc::CreateChannel(CtlAddress(), cc);
    auto* dp = &a->dp;
    auto roles = a->roles;
    a->registrar = std::make_unique<edge::Registrar>(
        channel,
        edge::RegistrationInfo{.device_id = id,
                               .token_file = token_file_,
                               .grpc_address = "127.0.0.1:" + std::to_string(a->port),
                               .capabilities = {"seg6", "table-mode"},
                               .slice_mode = pb::SLICE_MODE_TABLE,
                               .locator = locator,
                               .version = "test",
                               .interfaces = [dp, roles] { return edge::InterfacesToProto(*dp->Links(), roles); },
                               .leader_epoch = [f = a->fence](uint64_t e) { f->Admit(e); }},
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
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<DeviceTrust> trust_;
  std::unique_ptr<GrpcEdgeConnector> connector_;
  std::unique_ptr<Controller> ctl_;
  std::unique_ptr<RegistrationService> registration_;
  std::unique_ptr<grpc::Server> ctl_server_;
  int ctl_port_ = 0;
  std::vector<std::unique_ptr<Agent>> agents_;
  uint64_t epoch_ = 0;  // the controller's as leader of several; 0: alone
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

// The shared token of plaintext mode: instantiated for it alone.
class SouthboundPlaintextTest : public SouthboundTest {};
TEST_P(SouthboundPlaintextTest, AWrongTokenIsRefused) {
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
class SouthboundTlsTest : public SouthboundTest {
 protected:
  // A call to an agent's API with the given client identity.
  grpc::Status ListInterfaces(const Agent& a, const segwan::TlsIdentity& as) {
    auto cc = segwan::MtlsChannelCredentials(as);
    EXPECT_TRUE(cc);
    auto stub = pb::EdgeManager::NewStub(
        segwan::MtlsChannel("127.0.0.1:" + std::to_string(a.port), *cc, pki::DeviceName(a.id)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    pb::ListInterfacesResponse out;
    return stub->ListInterfaces(&ctx, pb::ListInterfacesRequest(), &out);
  }
};

TEST_P(SouthboundTlsTest, AnAgentWithoutACertificateIsRefused) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48", /*with_cert=*/false);
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(a.registrar->state().registered);
  EXPECT_NE(a.registrar->state().last_error.find("certificate"), std::string::npos) << a.registrar->state().last_error;
  EXPECT_FALSE(ctl_->GetDevice("edge-a"));
}

TEST_P(SouthboundTlsTest, TheAgentAnswersOnlyTheControllerAndOperators) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48");
  auto& b = StartAgent("edge-b", "fc00:0:b::/48");
  ASSERT_TRUE(WaitFor([&] { return Connected("edge-a") && Connected("edge-b"); }));
  EXPECT_TRUE(ListInterfaces(a, ControllerIdentity()).ok());
  // Another edge's certificate, from the same CA, is refused by the agent itself.
  auto as_b = ListInterfaces(a, edge::IdentityIn(TlsDir("edge-b")));
  EXPECT_EQ(as_b.error_code(), grpc::StatusCode::UNAUTHENTICATED) << as_b.error_message();
  // No certificate at all: the handshake fails.
  EXPECT_FALSE(ListInterfaces(a, {.ca_file = ControllerIdentity().ca_file}).ok());
  // An operator's certificate (REST hands these out) is accepted.
  auto key = pki::GenerateKey();
  auto op = trust_->IssueOperatorCertificate(*pki::MakeCsr(*key, "ops"));
  ASSERT_TRUE(op);
  const auto opdir = dir_ / "operator";
  std::filesystem::create_directories(opdir);
  std::ofstream(opdir / "key.pem") << *key;
  std::ofstream(opdir / "cert.pem") << op->pem;
  std::ofstream(opdir / "ca.pem") << trust_->ca_pem();
  EXPECT_TRUE(ListInterfaces(a, edge::IdentityIn(opdir.string())).ok());
  // The controller checks whom it reaches: b's name at a's address fails the handshake.
  auto stub = pb::EdgeManager::NewStub(segwan::MtlsChannel("127.0.0.1:" + std::to_string(a.port),
                                                           *segwan::MtlsChannelCredentials(ControllerIdentity()),
                                                           pki::DeviceName(b.id)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 2s);
  pb::ListInterfacesResponse out;
  EXPECT_FALSE(stub->ListInterfaces(&ctx, pb::ListInterfacesRequest(), &out).ok());
}

TEST_P(SouthboundTlsTest, AnEnrolledIdCannotBeClaimedAgain) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48");
  ASSERT_TRUE(WaitFor([&] { return Connected("edge-a"); }));
  const auto address = ctl_->GetDevice("edge-a")->device.grpc_address;
  // No new join token while edge-a holds a valid certificate.
  auto again = trust_->CreateJoinToken("edge-a");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, kConflict);
  // A join token is good once.
  auto t = trust_->CreateJoinToken("edge-c");
  ASSERT_TRUE(t);
  const std::string file = (dir_ / "join-c").string();
  std::ofstream(file) << t->token << "\n";
  edge::EnrolRequest r{.device_id = "edge-c", .controller = CtlAddress(), .ca_file = (dir_ / "ca.pem").string(),
                       .join_token_file = file, .tls_dir = TlsDir("edge-c")};
  ASSERT_TRUE(edge::Enrol(r));
  auto twice = edge::Enrol(r);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) << twice.error().message;
  // edge-c, enrolled, claims to be edge-a: refused, and the real edge-a is untouched.
  auto cc = segwan::MtlsChannelCredentials(edge::IdentityIn(TlsDir("edge-c")));
  auto stub = pb::Registration::NewStub(segwan::MtlsChannel(CtlAddress(), *cc, pki::kControllerName));
  pb::RegisterDeviceRequest req;
  req.set_device_id("edge-a");
  req.set_grpc_address("127.0.0.1:1");
  grpc::ClientContext ctx;
  pb::RegisterDeviceResponse out;
  auto st = stub->RegisterDevice(&ctx, req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_TRUE(Connected("edge-a"));
  EXPECT_EQ(ctl_->GetDevice("edge-a")->device.grpc_address, address);
  EXPECT_TRUE(a.registrar->state().registered);
}

TEST_P(SouthboundTlsTest, ARevokedEdgeCannotRegister) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48");
  // Both sides agree it is registered (the agent learns it when the answer arrives).
  ASSERT_TRUE(WaitFor([&] { return Connected("edge-a") && a.registrar->state().registered; }));
  const auto before = a.registrar->state().registrations;
  ASSERT_TRUE(trust_->Revoke("edge-a"));
  ctl_->Disconnect("edge-a");
  // Its next heartbeat is refused, it tries to register again, and that is refused too.
  ASSERT_TRUE(WaitFor([&] { return !a.registrar->state().registered; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(Connected("edge-a"));
  EXPECT_EQ(a.registrar->state().registrations, before);
  EXPECT_NE(a.registrar->state().last_error.find("revoked"), std::string::npos) << a.registrar->state().last_error;
  // The operator may let it back in: a new join token (and a new enrolment at its restart).
  EXPECT_TRUE(trust_->CreateJoinToken("edge-a"));
}

TEST_P(SouthboundTlsTest, ACertificateIsRenewedWithoutARestart) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48");
  ASSERT_TRUE(WaitFor([&] { return Connected("edge-a"); }));
  const auto old = *pki::ReadCertificate(*segwan::ReadTextFile(edge::IdentityIn(TlsDir("edge-a")).cert_file, ""));
  auto channel = segwan::MtlsChannel(CtlAddress(), *segwan::MtlsChannelCredentials(edge::IdentityIn(TlsDir("edge-a"))),
                                     pki::kControllerName);
  edge::CertificateRenewer renewer(channel, TlsDir("edge-a"));
  auto r = renewer.RenewIfDue();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  auto latest = *pki::ReadCertificate(*segwan::ReadTextFile(edge::IdentityIn(TlsDir("edge-a")).cert_file, ""));
  EXPECT_NE(latest.serial, old.serial);
  EXPECT_EQ(latest.dns_names, old.dns_names);
  EXPECT_TRUE(trust_->Authorise(latest));
  EXPECT_TRUE(trust_->Authorise(old));  // still valid until it expires: connections made with it go on
  // The agent's own TLS picks the new certificate up from the file, with nothing restarted:
  // the controller's next call sees it.
  std::this_thread::sleep_for(std::chrono::seconds(segwan::kTlsReloadSeconds + 1));
  auto stub = pb::EdgeManager::NewStub(segwan::MtlsChannel("127.0.0.1:" + std::to_string(a.port),
                                                           *segwan::MtlsChannelCredentials(ControllerIdentity()),
                                                           pki::DeviceName("edge-a")));
  grpc::ClientContext ctx;
  pb::ListInterfacesResponse out;
  EXPECT_TRUE(stub->ListInterfaces(&ctx, pb::ListInterfacesRequest(), &out).ok());
  auto peer = ctx.auth_context() ? segwan::PeerCertificate(*ctx.auth_context()) : std::nullopt;
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->serial, latest.serial);
}

// The controller leads several with epoch 7 (edge-os/ha): the edges learn it when they
// register, and refuse calls that carry an older one.
class SouthboundFenceTest : public SouthboundTlsTest {
 protected:
  SouthboundFenceTest() { epoch_ = 7; }
  grpc::Status GetStateWithEpoch(const Agent& a, const char* epoch) {
    auto stub = pb::EdgeManager::NewStub(segwan::MtlsChannel("127.0.0.1:" + std::to_string(a.port),
                                                             *segwan::MtlsChannelCredentials(ControllerIdentity()),
                                                             pki::DeviceName(a.id)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    if (epoch) ctx.AddMetadata(kLeaderEpochMetadata, epoch);
    pb::GetStateResponse out;
    return stub->GetState(&ctx, pb::GetStateRequest(), &out);
  }
};

TEST_P(SouthboundFenceTest, AnEdgeRefusesTheCallsOfAnOlderLeader) {
  auto& a = StartAgent("edge-a", "fc00:0:a::/48");
  ASSERT_TRUE(WaitFor([&] { return Connected("edge-a"); }));
  // learnt from the registration's answer (which reaches the agent after the controller counts it connected)
  ASSERT_TRUE(WaitFor([&] { return a.fence->epoch() == 7u; })) << a.fence->epoch();
  auto client = connector_->Connect("edge-a", "127.0.0.1:" + std::to_string(a.port));
  EXPECT_TRUE(client->GetState()) << "the leader's own calls carry its epoch";
  const auto old = GetStateWithEpoch(a, "6");
  EXPECT_EQ(old.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(old.error_message().find("epoch 6 no longer leads: epoch 7 does"), std::string::npos) << old.error_message();
  EXPECT_EQ(GetStateWithEpoch(a, "7x").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(GetStateWithEpoch(a, "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(GetStateWithEpoch(a, nullptr).ok()) << "no epoch: an operator's tool, or a controller alone";
  // A newer leader calls: from then on this controller's calls are refused, whatever it sends.
  EXPECT_TRUE(GetStateWithEpoch(a, "8").ok());
  EXPECT_EQ(a.fence->epoch(), 8u);
  auto refused = client->GetState();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION)) << refused.error().message;
}

INSTANTIATE_TEST_SUITE_P(Transport, SouthboundFenceTest, ::testing::Values(true),
                         [](const auto&) { return "MutualTls"; });
INSTANTIATE_TEST_SUITE_P(Transport, SouthboundTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "MutualTls" : "Plaintext"; });
INSTANTIATE_TEST_SUITE_P(Transport, SouthboundPlaintextTest, ::testing::Values(false),
                         [](const auto&) { return "Plaintext"; });
INSTANTIATE_TEST_SUITE_P(Transport, SouthboundTlsTest, ::testing::Values(true),
                         [](const auto&) { return "MutualTls"; });

}  // namespace
}  // namespace segwan::controller
