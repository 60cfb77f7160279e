// SLA steering in the controller, with in-memory edges and a real SQLite file: a policy puts a
// probe session on every candidate path of a direction; probes that break the SLA for K
// windows move the direction's traffic (the ingress edge's slice routes) to the best
// compliant candidate, with the events kept; the choice survives a controller restart with
// no new switch; a tenant sees only its own policies and events; probes go only with their
// policy, and a steered slice cannot be deleted under it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "edge-os/controller/controller.h"
#include "edge-os/monitoring/prometheus.h"
#include "edge-os/store/store.h"
#include "test_store.h"
#include "fake_edges.h"
#include "segwan/clock.h"

namespace segwan::controller {
namespace {

using testing::FakeConnector;
using testing::LabRegistration;
namespace pb = segwan::v1;

constexpr const char* kDeviceToken = "device-secret";

class SteeringServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("segwan-steering-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Boot();
    for (const char* x : {"a", "b"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
    auto t = ctl_->CreateTenant(op_, "acme");
    ASSERT_TRUE(t);
    p_ = Principal{.tenant_id = t->first.id};
    auto slice = ctl_->CreateSlice(p_, SliceRequest{.name = "blue", .sites = {{"edge-a", "lan0", ""}, {"edge-b", "lan0", ""}}});
    ASSERT_TRUE(slice) << slice.error().message;
    slice_ = slice->slice.id;
    auto sla = ctl_->CreateSla(p_, SlaRequest{.name = "voice", .limits = {.delay_ms = 10, .loss_pct = 20}});
    ASSERT_TRUE(sla) << sla.error().message;
    sla_ = sla->id;
  }
  void TearDown() override {
    ctl_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Boot() {
    ctl_.reset();
    store_.reset();
    store_ = std::move(*testing::OpenTestStore(dir_));
    ControllerOptions o;
    o.device_token = kDeviceToken;
    o.auto_enable = true;
    o.start_threads = false;
    o.core_sids = {{"p1", {"fc00:0:1::e"}}, {"p2", {"fc00:0:2::e"}}};
    o.steering_grace = std::chrono::milliseconds(100);
    ctl_ = std::make_unique<Controller>(store_.get(), &edges_, o);
    ASSERT_FALSE(ctl_->load_error()) << ctl_->load_error()->message;
  }
  PolicyView Steer() {
    auto v = ctl_->CreatePolicy(p_, PolicyRequest{.slice = slice_, .sla = sla_, .pairs = {{"edge-a", "edge-b", {}}},
                                                  .probe = {100, 300, 3, 30}});
    EXPECT_TRUE(v) << v.error().message;
    return *v;
  }
  // One window (300 ms from start_ms) of three probes on each candidate at these one-way delays.
  void Window(int64_t start_ms, const std::map<std::string, double>& delay_ms) {
    auto view = ctl_->GetPolicy(p_, policy_);
    ASSERT_TRUE(view);
    for (const auto& c : view->directions[0].candidates) {
      auto s = ctl_->GetSession(p_, c.session_id);
      ASSERT_TRUE(s);
      for (int i = 0; i < 3; ++i) {
        const uint64_t t1 = static_cast<uint64_t>(start_ms + 100 * i + int64_t{ctl_->tai_offset_s()} * 1000) * 1'000'000;
        pb::StampResult r;
        r.set_ssid(s->session.ssid);
        r.set_sender_seq(seq_[c.candidate.name]++);
        r.set_t1_ns(t1);
        r.set_t2_ns(t1 + static_cast<uint64_t>(delay_ms.at(c.candidate.name) * 1e6));
        r.set_t3_ns(r.t2_ns() + 10'000);
        r.set_t4_ns(r.t3_ns() + 5'000'000);
        edges_.Edge("edge-a")->Push(s->session.ssid, r);
      }
    }
    ctl_->PollOnce();
    ctl_->SteeringTick(start_ms + 300 + 100);  // its end, and the grace
  }
  std::string RouteToB() {
    auto slices = edges_.Edge("edge-a")->GetState();
    for (const auto& s : slices->slices()) {
      if (s.id() != slice_) continue;
      for (const auto& r : s.remotes()) {
        if (r.name() == "edge-b") return r.segments(0);
      }
    }
    return "";
  }

  std::filesystem::path dir_;
  FakeConnector edges_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Controller> ctl_;
  Principal op_{.is_operator = true};
  Principal p_;
  std::string slice_, sla_, policy_;
  std::map<std::string, uint32_t> seq_;
};

TEST_F(SteeringServiceTest, APolicyProbesEveryCandidateAndGoesWithItsProbes) {
  auto v = Steer();
  policy_ = v.policy.id;
  ASSERT_EQ(v.directions.size(), 1u);
  const auto& d = v.directions[0];
  EXPECT_EQ(d.active, "direct");
  ASSERT_EQ(d.candidates.size(), 3u);
  std::map<std::string, std::vector<std::string>> segments;  // by candidate, as edge-a's sender got them
  for (const auto& c : d.candidates) {
    auto s = ctl_->GetSession(p_, c.session_id);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->session.steering, policy_);
    EXPECT_EQ(s->session.interval_ms, 100u);
    auto del = ctl_->DeleteSession(p_, c.session_id);
    ASSERT_FALSE(del);
    EXPECT_EQ(del.error().code, kConflict) << "a probe goes with its policy only";
    const auto& params = edges_.Edge("edge-a")->sessions.at({pb::STAMP_ROLE_SENDER, s->session.ssid});
    segments[c.candidate.name] = {params.segments().begin(), params.segments().end()};
  }
  EXPECT_TRUE(segments["direct"].empty());
  EXPECT_EQ(segments["p1"], std::vector<std::string>{"fc00:0:1::e"});
  EXPECT_EQ(segments["p2"], std::vector<std::string>{"fc00:0:2::e"});
  auto del = ctl_->DeleteSlice(p_, slice_);
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code, kConflict);
  auto again = ctl_->CreatePolicy(p_, PolicyRequest{.slice = slice_, .sla = sla_});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().field, "slice");

  ASSERT_TRUE(ctl_->DeletePolicy(p_, policy_));
  EXPECT_TRUE(ctl_->Sessions(p_).empty());
  EXPECT_TRUE(ctl_->DeleteSlice(p_, slice_));
}

TEST_F(SteeringServiceTest, BadRequestsNameTheirFieldAndChangeNothing) {
  auto bad = [&](PolicyRequest r, const std::string& field) {
    r.slice = r.slice.empty() ? slice_ : r.slice;
    r.sla = r.sla.empty() ? sla_ : r.sla;
    auto v = ctl_->CreatePolicy(p_, r);
    ASSERT_FALSE(v) << field;
    EXPECT_EQ(v.error().field, field) << v.error().message;
  };
  bad(PolicyRequest{.sla = "sla99"}, "sla");
  bad(PolicyRequest{.pairs = {{"edge-a", "edge-c", {}}}}, "pairs[0].to");
  bad(PolicyRequest{.pairs = {{"edge-a", "edge-a", {}}}}, "pairs[0].to");
  bad(PolicyRequest{.candidates = {{"x", {"not-a-sid"}}}}, "candidates[0].waypoints[0]");
  bad(PolicyRequest{.candidates = {{"x", {}}, {"x", {}}}}, "candidates[1].name");
  bad(PolicyRequest{.probe = {5, 300, 3, 30}}, "probe.interval_ms");
  bad(PolicyRequest{.probe = {100, 50, 3, 30}}, "probe.window_ms");
  EXPECT_TRUE(ctl_->Policies(p_).empty());
  EXPECT_TRUE(ctl_->Sessions(p_).empty());
  auto sla = ctl_->CreateSla(p_, SlaRequest{.name = "none"});
  ASSERT_FALSE(sla);
  EXPECT_EQ(sla.error().field, "limits");
  sla = ctl_->CreateSla(p_, SlaRequest{.name = "odd", .limits = {.loss_pct = 101}});
  ASSERT_FALSE(sla);
  EXPECT_EQ(sla.error().field, "limits.loss_pct");
}

TEST_F(SteeringServiceTest, AViolationMovesTheTrafficAndTheChoiceSurvivesARestart) {
  policy_ = Steer().policy.id;
  EXPECT_EQ(RouteToB().rfind("fc00:0:b:", 0), 0u) << "direct: straight to b's SID, got " << RouteToB();
  int64_t t = (NowUtcMs() - 60'000) / 300 * 300;
  for (int i = 0; i < 5; ++i, t += 300) Window(t, {{"direct", 5}, {"p1", 8}, {"p2", 6}});
  EXPECT_EQ(ctl_->GetPolicy(p_, policy_)->directions[0].active, "direct");
  for (int i = 0; i < 3; ++i, t += 300) Window(t, {{"direct", 25}, {"p1", 8}, {"p2", 6}});
  auto v = ctl_->GetPolicy(p_, policy_);
  EXPECT_EQ(v->directions[0].active, "p2");
  EXPECT_TRUE(v->directions[0].candidates[0].last);
  EXPECT_FALSE(v->directions[0].candidates[0].complies);
  EXPECT_EQ(RouteToB(), "fc00:0:2::e") << "edge-a's route to b now goes via p2";
  auto events = ctl_->SteeringEvents(p_, "", 0, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].kind, "clear");  // newest first: on p2 the direction complies again
  EXPECT_EQ((*events)[0].path, "p2");
  EXPECT_EQ((*events)[1].kind, "switch");
  EXPECT_EQ((*events)[1].path, "direct");
  EXPECT_EQ((*events)[1].to_path, "p2");
  EXPECT_NEAR((*events)[1].measured.delay_ms, 25, 1e-6);
  EXPECT_EQ((*events)[2].kind, "violation");
  auto page = ctl_->SteeringEvents(p_, "", (*events)[1].id, 10);
  ASSERT_EQ(page->size(), 1u) << "paging: older than the given id";
  const std::string text = PrometheusText(ctl_->GetMetrics());
  const std::string dir = "policy=\"" + policy_ + "\",tenant=\"" + p_.tenant_id + "\",from=\"edge-a\",to=\"edge-b\"";
  EXPECT_NE(text.find("segwan_steering_switches_total{" + dir + "} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("segwan_steering_active_path{" + dir + ",path=\"p2\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("segwan_steering_active_path{" + dir + ",path=\"direct\"} 0\n"), std::string::npos);

  // Another tenant sees neither the policy nor its events.
  auto other = ctl_->CreateTenant(op_, "globex");
  Principal q{.tenant_id = other->first.id};
  EXPECT_FALSE(ctl_->GetPolicy(q, policy_));
  EXPECT_TRUE(ctl_->SteeringEvents(q, "", 0, 10)->empty());
  EXPECT_TRUE(ctl_->Policies(q).empty());

  // A restart converges to the same choice, with no new event.
  Boot();
  for (const char* x : {"a", "b"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
  EXPECT_EQ(ctl_->GetPolicy(p_, policy_)->directions[0].active, "p2");
  edges_.Edge("edge-a")->Forget();  // an agent that lost everything
  ctl_->RunQueued();
  EXPECT_EQ(RouteToB(), "fc00:0:2::e");
  for (int i = 0; i < 3; ++i, t += 300) Window(t, {{"direct", 25}, {"p1", 8}, {"p2", 6}});
  EXPECT_EQ(ctl_->SteeringEvents(p_, "", 0, 10)->size(), 3u);
}

TEST_F(SteeringServiceTest, ALossSessionFollowsItsFlowToTheSteeredPath) {
  policy_ = Steer().policy.id;
  auto ls = ctl_->CreateLossSession(p_, LossRequest{.slice = slice_, .from = "edge-a", .to = "edge-b", .period_ms = 1000});
  ASSERT_TRUE(ls) << ls.error().message;
  const auto direct = ls->session.segments;
  ASSERT_EQ(direct.size(), 1u);
  const std::vector<std::string> via_p2{"fc00:0:2::e", direct[0]};
  auto monitored = [&](const char* edge, const std::vector<std::string>& segs, pb::LossDirection d) {
    bool found = false;
    edges_.Edge(edge)->WithLoss([&](auto& loss) { found = loss.count({segs, d}) > 0; });
    return found;
  };
  EXPECT_TRUE(monitored("edge-a", direct, pb::LOSS_DIRECTION_INGRESS));

  int64_t t = (NowUtcMs() - 60'000) / 300 * 300;
  for (int i = 0; i < 5; ++i, t += 300) Window(t, {{"direct", 25}, {"p1", 8}, {"p2", 6}});
  ASSERT_EQ(ctl_->GetPolicy(p_, policy_)->directions[0].active, "p2");
  // The switch's own poll may have followed already; one more makes sure.
  ctl_->PollOnce();
  auto after = ctl_->GetLossSession(p_, ls->session.id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->session.segments, via_p2);
  EXPECT_EQ(after->error, "");
  EXPECT_TRUE(monitored("edge-a", via_p2, pb::LOSS_DIRECTION_INGRESS));
  EXPECT_TRUE(monitored("edge-b", via_p2, pb::LOSS_DIRECTION_EGRESS));
  EXPECT_FALSE(monitored("edge-a", direct, pb::LOSS_DIRECTION_INGRESS)) << "the old flow is no longer counted";
  EXPECT_FALSE(monitored("edge-b", direct, pb::LOSS_DIRECTION_EGRESS));

  // An egress that refuses: the session stays on its list, says why, and moves once it can.
  int64_t back = t;
  edges_.Edge("edge-b")->FailWith("StartLoss:egress", kGrpcUnavailable);
  for (int i = 0; i < 110; ++i, back += 300) Window(back, {{"direct", 5}, {"p1", 8}, {"p2", 6}});  // > 30 s hold-down
  ASSERT_EQ(ctl_->GetPolicy(p_, policy_)->directions[0].active, "direct");
  ctl_->PollOnce();
  after = ctl_->GetLossSession(p_, ls->session.id);
  EXPECT_EQ(after->session.segments, via_p2);
  EXPECT_NE(after->error.find("following the flow to its new path"), std::string::npos) << after->error;
  edges_.Edge("edge-b")->ClearFailures();
  ctl_->PollOnce();
  after = ctl_->GetLossSession(p_, ls->session.id);
  EXPECT_EQ(after->session.segments, direct);
  EXPECT_EQ(after->error, "");

  // The move is kept: a restarted controller knows the list the session monitors.
  Boot();
  EXPECT_EQ(ctl_->GetLossSession(p_, ls->session.id)->session.segments, direct);
}

}  // namespace
}  // namespace segwan::controller
