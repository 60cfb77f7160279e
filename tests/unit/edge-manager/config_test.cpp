#include "edge-manager/agent/config.h"

#include <gtest/gtest.h>

namespace segwan::edge {
namespace {

Result<AgentConfig> Load(std::vector<std::string> args) {
  FlagSet f("edge-manager", "");
  AddAgentFlags(f);
  if (auto err = f.Parse(args)) return Error{*err, "", 0};
  return AgentConfigFromFlags(f);
}

// The example shipped in deploy/config/ is a valid configuration.
TEST(AgentConfig, ShippedExampleParses) {
  FlagSet f("edge-manager", "");
  AddAgentFlags(f);
  ASSERT_FALSE(f.ParseConfigFile(std::string(SEGWAN_SOURCE_DIR) + "/deploy/config/edge-manager.conf"));
  auto c = AgentConfigFromFlags(f);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->device_id, "branch-17");
  EXPECT_EQ(c->wan_interfaces, (std::vector<std::string>{"wan1", "wan2"}));
  EXPECT_EQ(c->locator->ToString(), "2001:db8:17::/48");
  EXPECT_FALSE(c->insecure);
  EXPECT_EQ(c->tls_dir, "/var/lib/segwan/edge/tls");
  EXPECT_EQ(c->join_token_file, "/etc/segwan/join.token");
}

TEST(AgentConfig, FullConfiguration) {
  auto c = Load({"--device-id", "edge-a", "--controller", "[fd5e:ff::1]:50051", "--token-file",
                 "/t", "--wan", "wan1,wan2", "--lan", "lan0", "--mgmt", "mgmt0", "--locator", "fc00:0:a::/48",
                 "--advertise", "[fd5e:ff::a]:50061"});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->device_id, "edge-a");
  EXPECT_EQ(c->controller->port, 50051);
  EXPECT_EQ(c->wan_interfaces, (std::vector<std::string>{"wan1", "wan2"}));
  EXPECT_EQ(c->locator->length, 48);
  EXPECT_EQ(c->listen.port, 50061);
  EXPECT_TRUE(c->listen_on_mgmt);  // no --listen: the management address, found at start
  EXPECT_EQ(c->advertise, "[fd5e:ff::a]:50061");
  EXPECT_FALSE(c->insecure);
  EXPECT_EQ(c->tls_dir, std::string(kDefaultStateDir) + "/tls");
}

TEST(AgentConfig, ErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string field;
  } cases[] = {
      {{}, "--device-id"},
      {{"--device-id", "e"}, "--listen"},  // neither --listen nor --mgmt
      {{"--device-id", "Edge_A"}, "--device-id"},
      {{"--device-id", "e", "--controller", "nowhere"}, "--controller"},
      {{"--device-id", "e", "--controller", "h:1", "--insecure"}, "--token-file"},
      {{"--device-id", "e", "--listen", "::1:80"}, "--listen"},
      {{"--device-id", "e", "--locator", "10.0.0.0/8"}, "--locator"},
      {{"--device-id", "e", "--locator", "fc00::1/48"}, "--locator"},
      {{"--device-id", "e", "--locator", "fc00::/120"}, "--locator"},
      {{"--device-id", "e", "--wan", "a/b"}, "--wan"},
      {{"--device-id", "e", "--lan", "averyveryverylongname"}, "--lan"},
      {{"--device-id", "e", "--controller", "h:1", "--token-file", "t", "--listen", "[::]:50061"}, "--advertise"},
      {{"--device-id", "e", "--slice-mode", "vrrf"}, "--slice-mode"},
      {{"--device-id", "e", "--sid-dev", "a b"}, "--sid-dev"},
  };
  for (const auto& tc : cases) {
    auto c = Load(tc.args);
    ASSERT_FALSE(c) << tc.field;
    EXPECT_EQ(c.error().field, tc.field) << c.error().ToString();
  }
}

}  // namespace
}  // namespace segwan::edge
