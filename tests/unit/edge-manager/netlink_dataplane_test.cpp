// The real rtnetlink dataplane against the kernel, inside a network namespace of the test's
// own (unshare): needs root, skips with the reason otherwise. Label "privileged".
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include "edge-manager/agent/kernel_check.h"
#include "edge-manager/netlink/dataplane.h"

namespace segwan::netlink {
namespace {

class NetlinkDataplaneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      skip_reason_ = "needs root to create a network namespace";
    } else if (unshare(CLONE_NEWNET) != 0) {
      skip_reason_ = std::string("unshare(CLONE_NEWNET) failed: ") + strerror(errno);
    } else {
      kernel_ = edge::ProbeKernel();
    }
  }
  // Skips (with the reason) unless the kernel has every feature named.
  static std::string Lacking(std::initializer_list<edge::KernelFeature> features) {
    for (auto f : features) {
      if (!kernel_.Has(f)) return kernel_.Missing(f);
    }
    return "";
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    auto dp = OpenNetlinkDataplane();
    ASSERT_TRUE(dp) << dp.error().ToString();
    dp_ = std::move(*dp);
    ASSERT_TRUE(dp_->SetLinkUp("lo", true));
  }
  const Link* Find(const std::vector<Link>& links, const std::string& name) {
    for (const auto& l : links) if (l.name == name) return &l;
    return nullptr;
  }
  static std::string skip_reason_;
  static edge::KernelReport kernel_;
  std::unique_ptr<Dataplane> dp_;
};
std::string NetlinkDataplaneTest::skip_reason_;
edge::KernelReport NetlinkDataplaneTest::kernel_;

IpAddress A(const char* s) { return *ParseIp(s); }
IpPrefix P(const char* s) { return *ParsePrefix(s); }

TEST_F(NetlinkDataplaneTest, SidDeviceLinksAndAddresses) {
  auto idx = dp_->EnsureSidDevice("sr9");
  ASSERT_TRUE(idx) << idx.error().ToString();
  auto again = dp_->EnsureSidDevice("sr9");
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *idx);
  const IpPrefix addr{A("fd10:a::1"), 64};
  ASSERT_TRUE(dp_->AddAddress("sr9", addr));
  ASSERT_TRUE(dp_->AddAddress("sr9", addr)) << "adding twice must succeed";
  auto links = dp_->Links();
  ASSERT_TRUE(links);
  const Link* l = Find(*links, "sr9");
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->up);
  EXPECT_EQ(l->kind, "veth");
  EXPECT_NE(std::find(l->addresses.begin(), l->addresses.end(), addr), l->addresses.end());
  ASSERT_TRUE(dp_->SetLinkUp("sr9", false));
  ASSERT_TRUE(dp_->DeleteAddress("sr9", addr));
  ASSERT_TRUE(dp_->DeleteAddress("sr9", addr)) << "deleting twice must succeed";
  links = dp_->Links();
  l = Find(*links, "sr9");
  EXPECT_FALSE(l->up);
  EXPECT_EQ(std::find(l->addresses.begin(), l->addresses.end(), addr), l->addresses.end());
  auto st = dp_->SetLinkUp("nosuch0", true);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ENODEV);
}

TEST_F(NetlinkDataplaneTest, RoutesRoundTripThroughTheKernel) {
  using F = edge::KernelFeature;
  if (auto why = Lacking({F::kSeg6Encap6, F::kSeg6Encap4, F::kSeg6LocalEnd, F::kEndDT6Table}); !why.empty()) {
    GTEST_SKIP() << why;
  }
  auto sr = dp_->EnsureSidDevice("sr0");
  ASSERT_TRUE(sr);
  const std::vector<Route> routes = {
      Route{.dst = P("fd10:b::/64"), .table = 100, .oif = *sr,
            .encap = Seg6Encap{EncapMode::kEncap, {A("fc00:0:2::e"), A("fc00:0:b::d6")}}},
      Route{.dst = P("fd10:c::/64"), .table = 100, .oif = *sr,
            .encap = Seg6Encap{EncapMode::kEncapRed, {A("fc00:0:1::e"), A("fc00:0:c::d6")}}},
      Route{.dst = P("10.10.2.0/24"), .table = 100, .oif = *sr,
            .encap = Seg6Encap{EncapMode::kEncap, {A("fc00:0:b::d4")}}},
      Route{.dst = P("fc00:0:a::d6/128"), .oif = *sr,
            .encap = Seg6Local{.action = Seg6Action::kEndDT6, .table = 100}},
      Route{.dst = P("fc00:0:a::e/128"), .oif = *sr, .encap = Seg6Local{.action = Seg6Action::kEnd}},
      Route{.dst = P("::/0"), .table = 100, .type = RouteType::kUnreachable, .priority = 0xff000000},
  };
  for (const auto& r : routes) {
    ASSERT_TRUE(dp_->ReplaceRoute(r)) << r.ToString();
    ASSERT_TRUE(dp_->ReplaceRoute(r)) << "replacing twice must succeed: " << r.ToString();
  }
  auto dumped = dp_->Routes(kProtoSegwan);
  ASSERT_TRUE(dumped);
  EXPECT_EQ(dumped->size(), routes.size());
  for (const auto& r : routes) {
    EXPECT_NE(std::find(dumped->begin(), dumped->end(), r), dumped->end())
        << "the kernel does not give back " << r.ToString();
  }
  for (const auto& r : routes) {
    ASSERT_TRUE(dp_->DeleteRoute(r));
    ASSERT_TRUE(dp_->DeleteRoute(r)) << "deleting twice must succeed";
  }
  EXPECT_TRUE(dp_->Routes(kProtoSegwan)->empty());
}

TEST_F(NetlinkDataplaneTest, RulesRoundTripThroughTheKernel) {
  const Rule slice{.family = AF_INET6, .priority = 1000, .iif = "lo", .table = 100};
  const Rule underlay{.family = AF_INET6, .priority = 999, .iif = "lo", .table = 254,
                      .dst = P("fc00:0:2::e/128")};
  for (const auto& r : {slice, underlay}) {
    ASSERT_TRUE(dp_->AddRule(r));
    ASSERT_TRUE(dp_->AddRule(r)) << "adding twice must succeed";
  }
  auto rules = dp_->Rules(kProtoSegwan);
  ASSERT_TRUE(rules);
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_NE(std::find(rules->begin(), rules->end(), underlay), rules->end());
  for (const auto& r : {slice, underlay}) {
    ASSERT_TRUE(dp_->DeleteRule(r));
    ASSERT_TRUE(dp_->DeleteRule(r));
  }
  EXPECT_TRUE(dp_->Rules(kProtoSegwan)->empty());
}

TEST_F(NetlinkDataplaneTest, KernelRefusalCarriesItsReason) {
  auto sr = dp_->EnsureSidDevice("sr0");
  ASSERT_TRUE(sr);
  // End.DT4 by vrftable in a namespace without a VRF in strict mode is refused by every kernel,
  // each for its own reason: no seg6local at all, no VRF, or VRF with strict mode off (the
  // default in a new namespace; the agent turns it on).
  Route dt4{.dst = P("fc00:0:a::d4/128"), .oif = *sr,
            .encap = Seg6Local{.action = Seg6Action::kEndDT4, .vrf_table = 100}};
  auto st = dp_->ReplaceRoute(dt4);
  ASSERT_FALSE(st);
  const std::string& m = st.error().message;
  // the message names the object it was about
  EXPECT_NE(m.find("fc00:0:a::d4/128"), std::string::npos) << m;
  if (!kernel_.Has(edge::KernelFeature::kSeg6LocalEnd)) {
    EXPECT_EQ(st.error().code, EOPNOTSUPP) << m;
    EXPECT_NE(m.find("lwt encapsulation type not supported"), std::string::npos) << m;
  } else if (!kernel_.Has(edge::KernelFeature::kVrf)) {
    EXPECT_EQ(st.error().code, EINVAL) << m;
    EXPECT_NE(m.find("Invalid argument"), std::string::npos) << m;
  } else {
    EXPECT_EQ(st.error().code, EPERM) << m;
    EXPECT_NE(m.find("Strict mode for VRF is disabled"), std::string::npos) << m;
  }
  EXPECT_TRUE(dp_->Routes(kProtoSegwan)->empty()) << "a refused route must not be half-installed";
}

}  // namespace
}  // namespace segwan::netlink
