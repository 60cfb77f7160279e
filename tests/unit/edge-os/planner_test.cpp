#include "edge-os/slices/planner.h"

#include <gtest/gtest.h>

namespace segwan::controller {
namespace {

Device LabDevice(const std::string& x, const std::string& mode = "table") {
  const int n = x == "a" ? 1 : x == "b" ? 2 : 3;
  Device d;
  d.id = "edge-" + x;
  d.enabled = true;
  d.locator = "fc00:0:" + x + "::/48";
  d.slice_mode = mode;
  d.interfaces = {{"lo", {"127.0.0.1/8", "fc00:0:" + x + "::1/128"}, "", true},
                  {"lan0", {"10.10." + std::to_string(n) + ".1/24", "fd10:" + x + "::1/64", "fe80::1/64"}, "lan", true},
                  {"wan1", {"fd5e:0:" + x + "1::1/64"}, "wan", true}};
  return d;
}

std::map<std::string, Device> Lab(const std::string& mode = "table") {
  return {{"edge-a", LabDevice("a", mode)}, {"edge-b", LabDevice("b", mode)}, {"edge-c", LabDevice("c", mode)}};
}

Slice ThreeSites() {
  Slice s;
  s.id = "sl3";
  s.number = 3;
  s.sites = {{"edge-a", "lan0", "10.10.1.2"}, {"edge-b", "lan0", "10.10.2.2"}, {"edge-c", "lan0", ""}};
  s.paths = {{"edge-a", "edge-b", {"fc00:0:1::e"}}, {"edge-b", "edge-a", {"fc00:0:2::e"}}};
  return s;
}

std::vector<std::string> V(const google::protobuf::RepeatedPtrField<std::string>& r) { return {r.begin(), r.end()}; }
using Strings = std::vector<std::string>;

TEST(SliceSid, NumberAfterThePrefixFunctionAtTheEnd) {
  EXPECT_EQ(SliceSid(*ParsePrefix("fc00:0:a::/48"), 3, kFunctionDt6)->ToString(), "fc00:0:a:3::d6");
  EXPECT_EQ(SliceSid(*ParsePrefix("fc00:0:a::/48"), 0x1234, kFunctionDt4)->ToString(), "fc00:0:a:1234::d4");
  EXPECT_EQ(SliceSid(*ParsePrefix("2001:db8:0:10::/60"), 0xffff, kFunctionDt6)->ToString(), "2001:db8:0:1f:fff0::d6");
  EXPECT_FALSE(SliceSid(*ParsePrefix("fc00::/112"), 1, kFunctionDt6));
  EXPECT_FALSE(SliceSid(*ParsePrefix("fc00::/48"), 0, kFunctionDt6));
}

TEST(StampAddress, TheAddressInsideTheLocator) {
  EXPECT_EQ(StampAddress(LabDevice("b"))->ToString(), "fc00:0:b::1");
  Device d = LabDevice("b");
  d.interfaces.erase(d.interfaces.begin());
  EXPECT_FALSE(StampAddress(d));
}

TEST(PlanSlice, TableModeFullMeshWithPinnedPaths) {
  auto plan = PlanSlice(ThreeSites(), Lab());
  ASSERT_TRUE(plan) << plan.error().ToString();
  ASSERT_EQ(plan->size(), 3u);
  const auto& a = plan->at("edge-a");
  EXPECT_EQ(a.id(), "sl3");
  EXPECT_EQ(a.table(), 1003u);
  EXPECT_EQ(a.mode(), segwan::v1::SLICE_MODE_TABLE);
  EXPECT_EQ(V(a.lan_interfaces()), Strings{"lan0"});
  EXPECT_EQ(V(a.lan_prefixes()), (Strings{"10.10.1.0/24", "fd10:a::/64"}));  // no link-local
  EXPECT_EQ(a.local_sids().sid6(), "fc00:0:a:3::d6");
  EXPECT_EQ(a.local_sids().sid4(), "fc00:0:a:3::d4");
  EXPECT_EQ(a.local_sids().nexthop4(), "10.10.1.2");
  ASSERT_EQ(a.remotes_size(), 2);
  EXPECT_EQ(a.remotes(0).name(), "edge-b");
  EXPECT_EQ(V(a.remotes(0).segments()), (Strings{"fc00:0:1::e", "fc00:0:b:3::d6"}));
  EXPECT_EQ(V(a.remotes(0).segments_v4()), (Strings{"fc00:0:1::e", "fc00:0:b:3::d4"}));
  EXPECT_EQ(V(a.remotes(0).prefixes()), (Strings{"10.10.2.0/24", "fd10:b::/64"}));
  // edge-c has no IPv4 next hop: IPv6 only towards it, no IPv4 SID of its own
  EXPECT_EQ(V(a.remotes(1).segments()), Strings{"fc00:0:c:3::d6"});
  EXPECT_TRUE(a.remotes(1).segments_v4().empty());
  EXPECT_EQ(V(a.remotes(1).prefixes()), Strings{"fd10:c::/64"});
  EXPECT_TRUE(plan->at("edge-c").local_sids().sid4().empty());
  const auto& b = plan->at("edge-b");
  EXPECT_EQ(V(b.remotes(0).segments()), (Strings{"fc00:0:2::e", "fc00:0:a:3::d6"}));
}

TEST(PlanSlice, VrfModeDecapsulatesIpv4WithoutANextHop) {
  auto s = ThreeSites();
  s.sites[2].nexthop4.clear();
  auto plan = PlanSlice(s, Lab("vrf"));
  ASSERT_TRUE(plan);
  const auto& c = plan->at("edge-c");
  EXPECT_EQ(c.mode(), segwan::v1::SLICE_MODE_VRF);
  EXPECT_EQ(c.local_sids().sid4(), "fc00:0:c:3::d4");
  EXPECT_TRUE(c.local_sids().nexthop4().empty());
  EXPECT_EQ(V(plan->at("edge-a").remotes(1).prefixes()), (Strings{"10.10.3.0/24", "fd10:c::/64"}));
}

TEST(PlanSlice, SamePlanEveryTime) {
  auto a = PlanSlice(ThreeSites(), Lab());
  auto b = PlanSlice(ThreeSites(), Lab());
  for (const auto& [id, msg] : *a) EXPECT_EQ(msg.SerializeAsString(), b->at(id).SerializeAsString());
}

TEST(PlanSlice, ErrorsNameTheField) {
  struct Case {
    const char* what;
    std::function<void(Slice&, std::map<std::string, Device>&)> change;
    const char* field;
  };
  const Case cases[] = {
      {"unknown device", [](Slice& s, auto&) { s.sites[1].device = "edge-x"; }, "sites[1].device"},
      {"no such interface", [](Slice& s, auto&) { s.sites[0].interface = "eth9"; }, "sites[0].interface"},
      {"a WAN interface", [](Slice& s, auto&) { s.sites[2].interface = "wan1"; }, "sites[2].interface"},
      {"the loopback", [](Slice& s, auto&) { s.sites[1].interface = "lo"; }, "sites[1].interface"},
      {"an interface without a role",
       [](Slice&, auto& d) { d["edge-a"].interfaces[1].role.clear(); }, "sites[0].interface"},
      {"no locator", [](Slice&, auto& d) { d["edge-b"].locator.clear(); }, "sites[1].device"},
      {"bad next hop", [](Slice& s, auto&) { s.sites[0].nexthop4 = "fd10::1"; }, "sites[0].nexthop4"},
      {"path from outside", [](Slice& s, auto&) { s.paths[0].from = "edge-z"; }, "paths[0].from"},
      {"path to itself", [](Slice& s, auto&) { s.paths[1].to = "edge-b"; }, "paths[1].to"},
      {"bad waypoint", [](Slice& s, auto&) { s.paths[1].waypoints.push_back("p1"); }, "paths[1].waypoints[1]"},
      {"same pair twice", [](Slice& s, auto&) { s.paths.push_back(s.paths[0]); }, "paths[2]"},
      {"too many waypoints",
       [](Slice& s, auto&) { s.paths[0].waypoints.assign(16, "fc00::1"); }, "paths[0].waypoints"},
  };
  for (const auto& c : cases) {
    auto s = ThreeSites();
    auto d = Lab();
    c.change(s, d);
    auto plan = PlanSlice(s, d);
    ASSERT_FALSE(plan) << c.what;
    EXPECT_EQ(plan.error().field, c.field) << c.what << ": " << plan.error().ToString();
  }
}

}  // namespace
}  // namespace segwan::controller
