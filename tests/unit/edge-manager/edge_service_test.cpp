// The EdgeManager service over real gRPC (in-process channel) with a fake dataplane: no root.
#include "edge-manager/api/edge_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "fake_dataplane.h"

namespace segwan::edge {
namespace {

namespace pb = segwan::v1;

pb::Slice Blue() {
  pb::Slice s;
  s.set_id("blue");
  s.set_table(100);
  s.add_lan_interfaces("lan0");
  s.add_lan_prefixes("fd10:a::/64");
  s.add_lan_prefixes("10.10.1.0/24");
  s.mutable_local_sids()->set_sid6("fc00:0:a::d6");
  s.mutable_local_sids()->set_sid4("fc00:0:a::d4");
  s.mutable_local_sids()->set_nexthop4("10.10.1.2");
  auto* r = s.add_remotes();
  r->set_name("edge-b");
  r->add_prefixes("fd10:b::/64");
  r->add_segments("fc00:0:2::e");
  r->add_segments("fc00:0:b::d6");
  return s;
}

class EdgeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = ::testing::TempDir() + "/edge_service_test_" + std::to_string(::getpid());
    std::filesystem::remove_all(state_dir_);
    Start();
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(state_dir_);
  }
  void Start() {
    slices_ = std::make_unique<SliceManager>(&dp_, SliceMode::kTable, "sr0");
    service_ = std::make_unique<EdgeService>(&dp_, slices_.get(),
                                             InterfaceRoles{{"lan0", "lan"}, {"wan1", "wan"}},
                                             state_dir_);
    grpc::ServerBuilder b;
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    stub_ = pb::EdgeManager::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void Stop() {
    server_->Shutdown();
    server_.reset();
  }
  grpc::Status Apply(const pb::Slice& s, pb::ApplySliceResponse* out = nullptr) {
    grpc::ClientContext ctx;
    pb::ApplySliceRequest req;
    *req.mutable_slice() = s;
    pb::ApplySliceResponse resp;
    auto st = stub_->ApplySlice(&ctx, req, &resp);
    if (out) *out = resp;
    return st;
  }

  netlink::FakeDataplane dp_;
  std::string state_dir_;
  std::unique_ptr<SliceManager> slices_;
  std::unique_ptr<EdgeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::EdgeManager::Stub> stub_;
};

TEST_F(EdgeServiceTest, ListInterfacesReportsAddressesAndRoles) {
  grpc::ClientContext ctx;
  pb::ListInterfacesResponse resp;
  ASSERT_TRUE(stub_->ListInterfaces(&ctx, {}, &resp).ok());
  bool saw_lan = false;
  for (const auto& i : resp.interfaces()) {
    if (i.name() == "lan0") {
      saw_lan = true;
      EXPECT_EQ(i.role(), "lan");
      ASSERT_EQ(i.addresses_size(), 2);
      EXPECT_EQ(i.addresses(0), "10.10.1.1/24");
    }
  }
  EXPECT_TRUE(saw_lan);
}

TEST_F(EdgeServiceTest, ApplyIsIdempotentAndGetStateShowsIt) {
  pb::ApplySliceResponse first, second;
  ASSERT_TRUE(Apply(Blue(), &first).ok());
  EXPECT_EQ(first.mode(), pb::SLICE_MODE_TABLE);
  EXPECT_GT(first.routes_added(), 0u);
  const auto routes = dp_.routes();
  ASSERT_TRUE(Apply(Blue(), &second).ok());
  EXPECT_EQ(second.routes_added(), 0u);
  EXPECT_EQ(second.routes_removed(), 0u);
  EXPECT_EQ(dp_.routes(), routes);

  grpc::ClientContext ctx;
  pb::GetStateResponse state;
  ASSERT_TRUE(stub_->GetState(&ctx, {}, &state).ok());
  ASSERT_EQ(state.slices_size(), 1);
  EXPECT_EQ(state.slices(0).id(), "blue");
  EXPECT_EQ(state.routes_size(), static_cast<int>(routes.size()));
}

TEST_F(EdgeServiceTest, ChangedRequestConverges) {
  ASSERT_TRUE(Apply(Blue()).ok());
  pb::Slice changed = Blue();
  changed.mutable_remotes(0)->set_segments(0, "fc00:0:1::e");
  changed.clear_lan_prefixes();
  changed.add_lan_prefixes("fd10:a::/64");
  pb::ApplySliceResponse resp;
  ASSERT_TRUE(Apply(changed, &resp).ok());
  EXPECT_GT(resp.routes_removed(), 0u);
  for (const auto& r : dp_.routes()) {
    EXPECT_NE(r.dst.ToString(), "10.10.1.0/24") << "a prefix no longer wanted is still installed";
  }
}

TEST_F(EdgeServiceTest, InvalidRequestsNameTheFieldAndChangeNothing) {
  ASSERT_TRUE(Apply(Blue()).ok());
  const auto routes = dp_.routes();
  const auto rules = dp_.rules();
  struct Case {
    std::function<void(pb::Slice&)> mutate;
    std::string field;
  } cases[] = {
      {[](pb::Slice& s) { s.set_id("Blue!"); }, "slice.id"},
      {[](pb::Slice& s) { s.set_table(0); }, "slice.table"},
      {[](pb::Slice& s) { s.set_table(255); }, "slice.table"},
      {[](pb::Slice& s) { s.clear_lan_interfaces(); }, "slice.lan_interfaces"},
      {[](pb::Slice& s) { s.set_lan_interfaces(0, "eth9"); }, "slice.lan_interfaces"},
      {[](pb::Slice& s) { s.add_lan_interfaces("lan0"); }, "slice.lan_interfaces[1]"},
      {[](pb::Slice& s) { s.set_lan_prefixes(1, "10.10.1.1/24"); }, "slice.lan_prefixes[1]"},
      {[](pb::Slice& s) { s.mutable_local_sids()->set_sid6("fc00::zz"); }, "slice.local_sids.sid6"},
      {[](pb::Slice& s) { s.mutable_local_sids()->Clear(); }, "slice.local_sids"},
      {[](pb::Slice& s) { s.mutable_local_sids()->clear_nexthop4(); }, "slice.local_sids.nexthop4"},
      {[](pb::Slice& s) { s.mutable_local_sids()->set_sid46("fc00:0:a::d46"); }, "slice.local_sids.sid46"},
      {[](pb::Slice& s) { s.mutable_remotes(0)->clear_segments(); }, "slice.remotes[0].segments"},
      {[](pb::Slice& s) {
         for (int i = 0; i < 16; ++i) s.mutable_remotes(0)->add_segments("fc00::1");
       }, "slice.remotes[0].segments"},
      {[](pb::Slice& s) { s.mutable_remotes(0)->set_segments(1, "10.0.0.1"); }, "slice.remotes[0].segments[1]"},
      {[](pb::Slice& s) { s.mutable_remotes(0)->clear_prefixes(); }, "slice.remotes[0].prefixes"},
      {[](pb::Slice& s) {
         s.mutable_remotes(0)->add_prefixes("10.10.2.0/24");
         s.mutable_remotes(0)->set_encap_mode(pb::ENCAP_MODE_INLINE);
       }, "slice.remotes[0].encap_mode"},
      {[](pb::Slice& s) { s.set_mode(pb::SLICE_MODE_VRF); }, "slice.mode"},
  };
  for (const auto& c : cases) {
    pb::Slice s = Blue();
    c.mutate(s);
    auto st = Apply(s);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field << ": " << st.error_message();
    EXPECT_EQ(st.error_message().rfind(c.field, 0), 0u) << "expected the message to start with "
                                                        << c.field << ", got: " << st.error_message();
    EXPECT_EQ(dp_.routes(), routes) << c.field;
    EXPECT_EQ(dp_.rules(), rules) << c.field;
  }
  grpc::ClientContext ctx;
  pb::ApplySliceRequest empty;
  pb::ApplySliceResponse resp;
  EXPECT_EQ(stub_->ApplySlice(&ctx, empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(EdgeServiceTest, KernelRefusalIsFailedPreconditionAndRollsBack) {
  ASSERT_TRUE(Apply(Blue()).ok());
  const auto routes = dp_.routes();
  pb::Slice changed = Blue();
  changed.mutable_remotes(0)->set_segments(0, "fc00:0:1::e");
  dp_.FailMutation(2);
  auto st = Apply(changed);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("injected failure"), std::string::npos);
  EXPECT_EQ(dp_.routes().size(), routes.size());
}

TEST_F(EdgeServiceTest, RemoveIsIdempotent) {
  ASSERT_TRUE(Apply(Blue()).ok());
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    pb::RemoveSliceRequest req;
    req.set_id("blue");
    pb::RemoveSliceResponse resp;
    ASSERT_TRUE(stub_->RemoveSlice(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.routes_removed() > 0, i == 0);
  }
  EXPECT_TRUE(dp_.routes().empty());
  EXPECT_TRUE(dp_.rules().empty());
  grpc::ClientContext ctx;
  pb::RemoveSliceRequest bad;
  bad.set_id("../etc");
  pb::RemoveSliceResponse resp;
  EXPECT_EQ(stub_->RemoveSlice(&ctx, bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(EdgeServiceTest, SavedSlicesAreRestoredAfterARestart) {
  ASSERT_TRUE(Apply(Blue()).ok());
  const auto routes = dp_.routes();
  Stop();
  // the agent is gone and its routes were wiped; a new one restores them from the state folder
  for (const auto& r : routes) dp_.DeleteRoute(r);
  ASSERT_TRUE(dp_.routes().empty());
  Start();
  auto restored = service_->RestoreSavedSlices();
  ASSERT_TRUE(restored);
  EXPECT_EQ(*restored, 1);
  EXPECT_EQ(dp_.routes().size(), routes.size());
  EXPECT_EQ(slices_->Slices().size(), 1u);
}

}  // namespace
}  // namespace segwan::edge

namespace segwan::edge {
namespace {

// Loss RPCs check their input by field before anything else; without the BPF programs the
// agent says so rather than pretending.
TEST_F(EdgeServiceTest, LossRpcsCheckTheirInputAndSayWhenUnavailable) {
  auto start = [&](const pb::StartLossMonitoringRequest& req) {
    grpc::ClientContext ctx;
    pb::StartLossMonitoringResponse resp;
    return stub_->StartLossMonitoring(&ctx, req, &resp);
  };
  pb::StartLossMonitoringRequest req;
  req.set_direction(pb::LOSS_DIRECTION_INGRESS);
  auto st = start(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("flow.segments"), std::string::npos) << st.error_message();
  req.mutable_flow()->add_segments("fc00:0:1::e");
  req.mutable_flow()->add_segments("not-a-sid");
  st = start(req);
  EXPECT_NE(st.error_message().find("flow.segments[1]"), std::string::npos) << st.error_message();
  req.mutable_flow()->set_segments(1, "fc00:0:b::d6");
  req.set_direction(pb::LOSS_DIRECTION_UNSPECIFIED);
  st = start(req);
  EXPECT_NE(st.error_message().find("direction"), std::string::npos) << st.error_message();
  req.set_direction(pb::LOSS_DIRECTION_EGRESS);
  st = start(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  grpc::ClientContext ctx;
  pb::ReadLossCountersRequest read;
  *read.mutable_flow() = req.flow();
  read.set_direction(pb::LOSS_DIRECTION_EGRESS);
  pb::ReadLossCountersResponse out;
  EXPECT_EQ(stub_->ReadLossCounters(&ctx, read, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace segwan::edge
