// The controller's services under concurrency, with in-memory edges one of which is frozen
// (every call to it waits): no lock is held across an edge call, so a REST change stuck on
// that edge holds only itself; the marks it leaves (a reserved session, a slice being
// created) keep concurrent requests from taking the same interface, the last place of a
// share, or the slice from under it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "edge-os/controller/controller.h"
#include "edge-os/store/store.h"
#include "test_store.h"
#include "fake_edges.h"

namespace segwan::controller {
namespace {

using namespace std::chrono_literals;
using testing::FakeConnector;
using testing::LabRegistration;
namespace pb = segwan::v1;

constexpr const char* kDeviceToken = "device-secret";

// A fourth edge, with addresses of its own.
pb::RegisterDeviceRequest EdgeD() {
  auto r = LabRegistration("c", kDeviceToken);
  r.set_device_id("edge-d");
  r.set_grpc_address("[fd5e:ff::d]:50061");
  r.set_locator("fc00:0:d::/48");
  r.mutable_interfaces(0)->set_addresses(1, "fc00:0:d::1/128");
  r.mutable_interfaces(1)->clear_addresses();
  r.mutable_interfaces(1)->add_addresses("10.10.4.1/24");
  r.mutable_interfaces(1)->add_addresses("fd10:d::1/64");
  r.mutable_interfaces(2)->set_addresses(0, "fd5e:0:d1::1/64");
  return r;
}

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("segwan-services-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::move(*testing::OpenTestStore(dir_));
    ControllerOptions o;
    o.device_token = kDeviceToken;
    o.auto_enable = true;
    o.start_threads = false;
    o.max_sessions_per_tenant = 2;
    ctl_ = std::make_unique<Controller>(store_.get(), &edges_, o);
    ASSERT_FALSE(ctl_->load_error());
    for (const char* x : {"a", "b", "c"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
    ASSERT_TRUE(ctl_->Register(EdgeD(), "test"));
    auto t = ctl_->CreateTenant(op_, "acme");
    ASSERT_TRUE(t);
    p_ = Principal{.tenant_id = t->first.id};
  }
  void TearDown() override {
    for (const char* x : {"edge-a", "edge-b", "edge-c", "edge-d"}) edges_.Edge(x)->Thaw();
    ctl_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static SliceRequest Sites(const std::string& x, const std::string& y) {
    return SliceRequest{.name = x + y, .sites = {{"edge-" + x, "lan0", ""}, {"edge-" + y, "lan0", ""}}};
  }
  template <typename T>
  static bool Ready(std::future<T>& f) {
    return f.wait_for(10s) == std::future_status::ready;
  }

  std::filesystem::path dir_;
  FakeConnector edges_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Controller> ctl_;
  Principal op_{.is_operator = true};
  Principal p_;
};

TEST_F(ServicesTest, ASessionStuckOnAFrozenEdgeHoldsOnlyItselfAndKeepsItsPlaces) {
  auto ab = ctl_->CreateSlice(p_, Sites("a", "b"));
  ASSERT_TRUE(ab) << ab.error().message;
  edges_.Edge("edge-a")->Freeze();
  auto stuck = std::async(std::launch::async, [&] {
    return ctl_->CreateSession(p_, SessionRequest{.slice = ab->slice.id, .sender = "edge-a", .reflector = "edge-b"});
  });
  ASSERT_TRUE(edges_.Edge("edge-a")->WaitStuck());

  // Other edges are served meanwhile: a slice on c and d, and a session on it.
  auto cd = std::async(std::launch::async, [&] { return ctl_->CreateSlice(p_, Sites("c", "d")); });
  ASSERT_TRUE(Ready(cd)) << "a slice on other edges waited for the frozen one";
  auto cd_slice = cd.get();
  ASSERT_TRUE(cd_slice) << cd_slice.error().message;
  auto second = ctl_->CreateSession(p_, SessionRequest{.slice = cd_slice->slice.id, .sender = "edge-c", .reflector = "edge-d"});
  ASSERT_TRUE(second) << second.error().message;

  // The stuck session is not shown, but it holds its place: the share (2) is full, and its
  // slice cannot go from under it.
  EXPECT_EQ(ctl_->Sessions(p_).size(), 1u);
  auto third = ctl_->CreateSession(p_, SessionRequest{.slice = cd_slice->slice.id, .sender = "edge-d", .reflector = "edge-c"});
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, kTooMany) << third.error().message;
  auto del = ctl_->DeleteSlice(p_, ab->slice.id);
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code, kConflict);
  EXPECT_NE(del.error().message.find("being created"), std::string::npos) << del.error().message;
  auto dev = ctl_->DeleteDevice(op_, "edge-a");
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.error().code, kConflict);

  edges_.Edge("edge-a")->Thaw();
  ASSERT_TRUE(Ready(stuck));
  auto first = stuck.get();
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(ctl_->Sessions(p_).size(), 2u);
  EXPECT_TRUE(ctl_->GetSession(p_, first->session.id));
}

TEST_F(ServicesTest, ASliceBeingCreatedHoldsItsInterfacesAndIsNotShownYet) {
  edges_.Edge("edge-d")->Freeze();
  auto stuck = std::async(std::launch::async, [&] { return ctl_->CreateSlice(p_, Sites("c", "d")); });
  ASSERT_TRUE(edges_.Edge("edge-d")->WaitStuck());

  EXPECT_TRUE(ctl_->Slices(p_).empty());
  auto again = ctl_->CreateSlice(p_, Sites("c", "d"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, kConflict);
  EXPECT_EQ(again.error().field, "sites[0].interface") << again.error().message;
  auto dev = ctl_->DeleteDevice(op_, "edge-c");
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.error().code, kConflict) << dev.error().message;
  // Edges a and b are not held by d.
  auto ab = ctl_->CreateSlice(p_, Sites("a", "b"));
  ASSERT_TRUE(ab) << ab.error().message;

  edges_.Edge("edge-d")->Thaw();
  ASSERT_TRUE(Ready(stuck));
  auto cd = stuck.get();
  ASSERT_TRUE(cd) << cd.error().message;
  EXPECT_EQ(cd->edges.at("edge-d").state, "applied");
  EXPECT_EQ(ctl_->Slices(p_).size(), 2u);
}

TEST_F(ServicesTest, ASliceBeingChangedRefusesASecondChangeAndNewSessions) {
  auto ab = ctl_->CreateSlice(p_, Sites("a", "b"));
  ASSERT_TRUE(ab) << ab.error().message;
  edges_.Edge("edge-b")->Freeze();
  auto req = Sites("a", "b");
  req.name = "renamed";
  auto stuck = std::async(std::launch::async, [&] { return ctl_->UpdateSlice(p_, ab->slice.id, req); });
  ASSERT_TRUE(edges_.Edge("edge-b")->WaitStuck());

  auto second = ctl_->UpdateSlice(p_, ab->slice.id, Sites("a", "b"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, kConflict);
  auto session = ctl_->CreateSession(p_, SessionRequest{.slice = ab->slice.id, .sender = "edge-a", .reflector = "edge-c"});
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().field, "slice");
  EXPECT_EQ(session.error().code, kConflict);
  EXPECT_EQ(ctl_->GetSlice(p_, ab->slice.id)->slice.name, "ab");  // the stored one until the change lands

  edges_.Edge("edge-b")->Thaw();
  ASSERT_TRUE(Ready(stuck));
  ASSERT_TRUE(stuck.get());
  EXPECT_EQ(ctl_->GetSlice(p_, ab->slice.id)->slice.name, "renamed");
  EXPECT_TRUE(ctl_->CreateSession(p_, SessionRequest{.slice = ab->slice.id, .sender = "edge-a", .reflector = "edge-b"}));
}

// The time-keeping thread and the loss polls wake each other: a poll tells the loop when its
// flow is next due, and the loop asks the loss service for that time before it sleeps. The
// loop's lock must never be held while it asks (a poll holding the service's lock could then
// wait for the loop's): a controller once stopped for good that way in the lab.
TEST_F(ServicesTest, LossPollsAndTheTimeKeepingThreadNeverWaitForEachOther) {
  auto sl = ctl_->CreateSlice(p_, Sites("a", "b"));
  ASSERT_TRUE(sl) << sl.error().message;
  ASSERT_TRUE(ctl_->CreateLossSession(p_, {.slice = sl->slice.id, .from = "edge-a", .to = "edge-b", .period_ms = 1000}));
  ASSERT_TRUE(ctl_->CreateLossSession(p_, {.slice = sl->slice.id, .from = "edge-b", .to = "edge-a", .period_ms = 1000}));
  ctl_.reset();
  ControllerOptions o;
  o.device_token = kDeviceToken;
  o.auto_enable = true;
  o.poll_interval = 1ms;  // a poll per edge and a wake-up of the loop every millisecond
  ctl_ = std::make_unique<Controller>(store_.get(), &edges_, o);
  ASSERT_FALSE(ctl_->load_error());
  for (const char* x : {"a", "b", "c"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
  ctl_->Start();
  const auto polls = [&] {
    size_t n = 0;
    for (const auto& c : edges_.Edge("edge-a")->Calls()) n += c == "ReadLoss:ingress";
    return n;
  };
  const auto end = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < end) {
    auto alive = std::async(std::launch::async, [&] { return ctl_->LossSessions(p_).size(); });
    if (alive.wait_for(10s) != std::future_status::ready) {
      ADD_FAILURE() << "the controller stopped answering: its loop and a loss poll wait for each other";
      std::_Exit(1);  // its threads cannot be joined
    }
    EXPECT_EQ(alive.get(), 2u);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(polls(), 100u) << "the loss polls ran";
}

}  // namespace
}  // namespace segwan::controller
