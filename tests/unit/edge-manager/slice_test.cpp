#include "edge-manager/slices/slice.h"

#include <gtest/gtest.h>

#include <functional>

#include "fake_dataplane.h"

namespace segwan::edge {
namespace {

using netlink::EncapMode;
using netlink::FakeDataplane;
using netlink::Route;
using netlink::RouteType;
using netlink::Seg6Action;
using netlink::Seg6Encap;
using netlink::Seg6Local;

IpAddress A(const char* s) { return *ParseIp(s); }
IpPrefix P(const char* s) { return *ParsePrefix(s); }

SliceSpec SiteA() {
  return SliceSpec{
      .id = "blue",
      .table = 100,
      .lan_interfaces = {"lan0"},
      .lan_prefixes = {P("10.10.1.0/24"), P("fd10:a::/64")},
      .sid6 = A("fc00:0:a::d6"),
      .sid4 = A("fc00:0:a::d4"),
      .nexthop4 = A("10.10.1.2"),
      .remotes = {RemoteSite{.name = "edge-b",
                             .prefixes = {P("10.10.2.0/24"), P("fd10:b::/64")},
                             .segments = {A("fc00:0:2::e"), A("fc00:0:b::d6")},
                             .segments_v4 = {A("fc00:0:2::e"), A("fc00:0:b::d4")}}},
  };
}

const Route* FindRoute(const FakeDataplane& dp, const char* dst, uint32_t table) {
  for (const auto& r : dp.routes()) {
    if (r.dst == P(dst) && r.table == table) return &r;
  }
  return nullptr;
}

TEST(SliceManager, TableModeInstallsTheWholeSlice) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  auto counts = sm.Apply(SiteA());
  ASSERT_TRUE(counts) << counts.error().ToString();
  const int lan0 = dp.Find("lan0")->ifindex;
  const int sr0 = dp.Find("sr0")->ifindex;

  // ip rules for both families select the slice table for traffic from the LAN; one more,
  // just before them, lets the encapsulated packet's outer header (to the first SID) use main
  ASSERT_EQ(dp.rules().size(), 3u);
  int slice_rules = 0;
  for (const auto& r : dp.rules()) {
    EXPECT_EQ(r.iif, "lan0");
    if (r.table == 100u) {
      ++slice_rules;
      EXPECT_FALSE(r.dst);
    } else {
      EXPECT_EQ(r.table, netlink::kTableMain);
      EXPECT_EQ(r.priority, kUnderlayRulePriority);
      EXPECT_EQ(r.dst, P("fc00:0:2::e/128"));
    }
  }
  EXPECT_EQ(slice_rules, 2);
  // remote prefixes: H.Encaps, IPv4 towards the remote End.DX4 SID
  const Route* v6 = FindRoute(dp, "fd10:b::/64", 100);
  ASSERT_TRUE(v6);
  EXPECT_EQ(std::get<Seg6Encap>(v6->encap).segments, SiteA().remotes[0].segments);
  const Route* v4 = FindRoute(dp, "10.10.2.0/24", 100);
  ASSERT_TRUE(v4);
  EXPECT_EQ(std::get<Seg6Encap>(v4->encap).segments.back(), A("fc00:0:b::d4"));
  // local prefixes in the slice table, on the LAN
  ASSERT_TRUE(FindRoute(dp, "fd10:a::/64", 100));
  EXPECT_EQ(FindRoute(dp, "fd10:a::/64", 100)->oif, lan0);
  // isolation: nothing falls through to the main table
  ASSERT_TRUE(FindRoute(dp, "::/0", 100));
  EXPECT_EQ(FindRoute(dp, "::/0", 100)->type, RouteType::kUnreachable);
  ASSERT_TRUE(FindRoute(dp, "0.0.0.0/0", 100));
  // SIDs in the main table: End.DT6 (table 100) on sr0, End.DX4 towards the site on lan0
  const Route* dt6 = FindRoute(dp, "fc00:0:a::d6/128", netlink::kTableMain);
  ASSERT_TRUE(dt6);
  EXPECT_EQ(std::get<Seg6Local>(dt6->encap), (Seg6Local{.action = Seg6Action::kEndDT6, .table = 100}));
  EXPECT_EQ(dt6->oif, sr0);
  const Route* dx4 = FindRoute(dp, "fc00:0:a::d4/128", netlink::kTableMain);
  ASSERT_TRUE(dx4);
  EXPECT_EQ(std::get<Seg6Local>(dx4->encap).nh4, A("10.10.1.2"));
  EXPECT_EQ(dx4->oif, lan0);
  EXPECT_EQ(counts->added, dp.routes().size() + dp.rules().size());
  EXPECT_EQ(counts->removed, 0u);
}

TEST(SliceManager, ApplyingTwiceChangesNothing) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  ASSERT_TRUE(sm.Apply(SiteA()));
  const auto routes = dp.routes();
  const auto rules = dp.rules();
  const int before = dp.mutations();
  auto again = sm.Apply(SiteA());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->added, 0u);
  EXPECT_EQ(again->removed, 0u);
  EXPECT_EQ(dp.mutations(), before) << "a second identical apply touched the kernel";
  EXPECT_EQ(dp.routes(), routes);
  EXPECT_EQ(dp.rules(), rules);
}

TEST(SliceManager, ChangedRequestConverges) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  ASSERT_TRUE(sm.Apply(SiteA()));
  SliceSpec changed = SiteA();
  changed.remotes[0].prefixes = {P("fd10:b::/64")};             // IPv4 prefix dropped
  changed.remotes[0].segments = {A("fc00:0:1::e"), A("fc00:0:b::d6")};  // repinned via p1
  changed.sid6 = A("fc00:0:a::d60");                            // SID moved
  auto counts = sm.Apply(changed);
  ASSERT_TRUE(counts) << counts.error().ToString();
  EXPECT_FALSE(FindRoute(dp, "10.10.2.0/24", 100));
  EXPECT_FALSE(FindRoute(dp, "fc00:0:a::d6/128", netlink::kTableMain));
  ASSERT_TRUE(FindRoute(dp, "fc00:0:a::d60/128", netlink::kTableMain));
  EXPECT_EQ(std::get<Seg6Encap>(FindRoute(dp, "fd10:b::/64", 100)->encap).segments[0], A("fc00:0:1::e"));
  EXPECT_EQ(counts->added, 3u);    // new SID, repinned route, underlay rule for the new first SID
  EXPECT_EQ(counts->removed, 2u);  // old SID, IPv4 remote route
}

TEST(SliceManager, DriftIsRepairedByTheNextApply) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  ASSERT_TRUE(sm.Apply(SiteA()));
  const auto routes = dp.routes();
  dp.EraseRouteBehindOurBack(0);
  auto counts = sm.Apply(SiteA());
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->added, 1u);
  EXPECT_EQ(dp.routes().size(), routes.size());
}

TEST(SliceManager, FailureHalfwayLeavesTheRouterAsItWas) {
  for (int fail_at = 1; fail_at <= 8; ++fail_at) {
    SCOPED_TRACE(fail_at);
    FakeDataplane dp;
    SliceManager sm(&dp, SliceMode::kTable, "sr0");
    ASSERT_TRUE(sm.Apply(SiteA()));
    const auto routes = dp.routes();
    const auto rules = dp.rules();
    SliceSpec changed = SiteA();
    changed.table = 200;
    changed.remotes[0].segments = {A("fc00:0:1::e"), A("fc00:0:b::d6")};
    dp.FailMutation(fail_at);
    auto r = sm.Apply(changed);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("injected failure"), std::string::npos);
    EXPECT_EQ(dp.rules(), rules);
    // same set of routes (rollback may restore them in another order)
    ASSERT_EQ(dp.routes().size(), routes.size());
    for (const auto& route : routes) {
      EXPECT_NE(std::find(dp.routes().begin(), dp.routes().end(), route), dp.routes().end())
          << "lost " << route.ToString();
    }
    EXPECT_EQ(sm.Slices().front().table, 100u) << "the failed request was remembered";
  }
}

TEST(SliceManager, RemoveLeavesNothingAndIsIdempotent) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  ASSERT_TRUE(sm.Apply(SiteA()));
  const size_t objects = dp.routes().size() + dp.rules().size();
  auto removed = sm.Remove("blue");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->removed, objects);
  EXPECT_TRUE(dp.routes().empty());
  EXPECT_TRUE(dp.rules().empty());
  EXPECT_TRUE(sm.Slices().empty());
  auto again = sm.Remove("blue");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->removed, 0u);
}

TEST(SliceManager, OtherSlicesAreNotTouched) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  ASSERT_TRUE(sm.Apply(SiteA()));
  const auto blue_routes = dp.routes();
  const auto blue_rules = dp.rules();
  SliceSpec red{.id = "red", .table = 101, .lan_interfaces = {"lan1"},
                .lan_prefixes = {P("10.20.1.0/24")}, .sid6 = A("fc00:0:a::d7"),
                // overlapping tenant address space is fine: it is another table
                .remotes = {RemoteSite{.prefixes = {P("fd10:b::/64")}, .segments = {A("fc00:0:b::d7")}}}};
  ASSERT_TRUE(sm.Apply(red));
  EXPECT_GT(dp.routes().size(), blue_routes.size());
  ASSERT_TRUE(sm.Remove("red"));
  EXPECT_EQ(dp.routes(), blue_routes);
  EXPECT_EQ(dp.rules(), blue_rules);
}

TEST(SliceManager, ConflictsNameTheField) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  ASSERT_TRUE(sm.Apply(SiteA()));
  SliceSpec same_table = SiteA();
  same_table.id = "red";
  same_table.lan_interfaces = {"lan1"};
  same_table.sid6 = A("fc00:0:a::d7");
  same_table.sid4.reset();
  auto r = sm.Apply(same_table);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "slice.table");
  SliceSpec same_sid = same_table;
  same_sid.table = 101;
  same_sid.sid6 = A("fc00:0:a::d6");
  r = sm.Apply(same_sid);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "slice.local_sids");
  SliceSpec same_lan = same_table;
  same_lan.table = 101;
  same_lan.lan_interfaces = {"lan0"};
  r = sm.Apply(same_lan);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "slice.lan_interfaces");
  SliceSpec no_such_lan = same_lan;
  no_such_lan.lan_interfaces = {"eth9"};
  r = sm.Apply(no_such_lan);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "slice.lan_interfaces[0]");
  EXPECT_EQ(sm.Slices().size(), 1u);
}

// The second line of defence behind the controller: nothing a slice asks for may take the
// router's own plumbing, and a refusal leaves the kernel as it was.
TEST(SliceManager, RefusesTheRoutersOwnPlumbing) {
  FakeDataplane dp;
  dp.AddLink("mgmt0", {"fd00:ff::a/64"});
  dp.AddLink("lan9", {"10.99.0.1/24"});
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  sm.SetInterfaceRoles({{"wan1", "wan"}, {"mgmt0", "mgmt"}, {"lan0", "lan"}, {"lan1", "lan"}});
  ASSERT_TRUE(sm.Apply(SiteA()));  // sr0 now exists
  const auto routes = dp.routes();
  const auto rules = dp.rules();
  struct Case {
    const char* what;
    std::function<void(SliceSpec&)> change;
    const char* field;
  };
  const Case cases[] = {
      {"loopback", [](SliceSpec& s) { s.lan_interfaces = {"lo"}; }, "slice.lan_interfaces[0]"},
      {"wan", [](SliceSpec& s) { s.lan_interfaces = {"lan1", "wan1"}; }, "slice.lan_interfaces[1]"},
      {"mgmt", [](SliceSpec& s) { s.lan_interfaces = {"mgmt0"}; }, "slice.lan_interfaces[0]"},
      {"SID device", [](SliceSpec& s) { s.lan_interfaces = {"sr0"}; }, "slice.lan_interfaces[0]"},
      {"not a declared LAN", [](SliceSpec& s) { s.lan_interfaces = {"lan9"}; }, "slice.lan_interfaces[0]"},
      {"remote prefix over the WAN address",
       [](SliceSpec& s) { s.remotes[0].prefixes.push_back(P("fd5e::/32")); }, "slice.remotes[0].prefixes[2]"},
      {"local prefix over the management address",
       [](SliceSpec& s) { s.lan_prefixes.push_back(P("fd00:ff::a/128")); }, "slice.lan_prefixes[2]"},
      {"remote prefix over the loopback",
       [](SliceSpec& s) { s.remotes[0].prefixes.push_back(P("127.0.0.0/8")); }, "slice.remotes[0].prefixes[2]"},
  };
  auto red = [] {  // a second slice on lan1 that would be fine as it is
    SliceSpec s = SiteA();
    s.id = "red";
    s.table = 101;
    s.sid6 = A("fc00:0:a::e6");
    s.sid4.reset();
    s.lan_interfaces = {"lan1"};
    return s;
  };
  for (const auto& c : cases) {
    SliceSpec s = red();
    c.change(s);
    auto r = sm.Apply(s);
    ASSERT_FALSE(r) << c.what;
    EXPECT_EQ(r.error().field, c.field) << c.what << ": " << r.error().message;
    EXPECT_EQ(dp.routes(), routes) << c.what;
    EXPECT_EQ(dp.rules(), rules) << c.what;
  }
  // A default route through a remote site stays possible: the local table still wins for
  // the router's own addresses.
  SliceSpec hub = red();
  hub.lan_prefixes = {P("10.20.1.0/24")};
  hub.remotes[0].prefixes = {P("::/0")};
  auto r = sm.Apply(hub);
  EXPECT_TRUE(r) << r.error().ToString();
  // Without declared roles the loopback is still refused.
  SliceManager bare(&dp, SliceMode::kTable, "sr0");
  SliceSpec lo = SiteA();
  lo.lan_interfaces = {"lo"};
  EXPECT_FALSE(bare.Apply(lo));
}

TEST(SliceManager, VrfModeUsesAVrfAndVrftableSids) {
  FakeDataplane dp;
  dp.vrf_supported = true;
  SliceManager sm(&dp, SliceMode::kVrf, "sr0");
  SliceSpec s = SiteA();
  s.sid4.reset();
  s.nexthop4.reset();
  s.sid6.reset();
  s.sid46 = A("fc00:0:a::d46");
  ASSERT_TRUE(sm.Apply(s));
  const auto* vrf = dp.Find("vrf100");
  ASSERT_TRUE(vrf);
  EXPECT_EQ(vrf->vrf_table, 100u);
  EXPECT_EQ(dp.Find("lan0")->master, vrf->ifindex);
  EXPECT_TRUE(dp.rules().empty());
  const Route* dt46 = FindRoute(dp, "fc00:0:a::d46/128", netlink::kTableMain);
  ASSERT_TRUE(dt46);
  EXPECT_EQ(std::get<Seg6Local>(dt46->encap), (Seg6Local{.action = Seg6Action::kEndDT46, .vrf_table = 100}));
  ASSERT_TRUE(sm.Remove("blue"));
  EXPECT_FALSE(dp.Find("vrf100"));
  EXPECT_EQ(dp.Find("lan0")->master, 0);
}

TEST(SliceManager, TableModeRefusesDt46) {
  FakeDataplane dp;
  SliceManager sm(&dp, SliceMode::kTable, "sr0");
  SliceSpec s = SiteA();
  s.sid46 = A("fc00:0:a::d46");
  auto r = sm.Apply(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "slice.local_sids.sid46");
  EXPECT_TRUE(dp.routes().empty());
}

}  // namespace
}  // namespace segwan::edge
