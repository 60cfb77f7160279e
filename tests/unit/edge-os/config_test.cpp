#include "edge-os/controller/config.h"

#include <gtest/gtest.h>

namespace segwan::controller {
namespace {

TEST(ControllerConfig, DefaultsDeriveFromDataDir) {
  FlagSet f("edge-os", "");
  AddControllerFlags(f);
  ASSERT_FALSE(f.Parse({"--data-dir", "/srv/segwan", "--auto-enable"}));
  auto c = ControllerConfigFromFlags(f);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->db_path, "/srv/segwan/segwan.db");
  EXPECT_EQ(c->operator_token_file, "/srv/segwan/operator.token");
  EXPECT_EQ(c->http_listen.ToString(), "127.0.0.1:8080");
  EXPECT_TRUE(c->auto_enable);
}

// The example shipped in deploy/config/ is a valid configuration.
TEST(ControllerConfig, ShippedExampleParses) {
  FlagSet f("edge-os", "");
  AddControllerFlags(f);
  ASSERT_FALSE(f.ParseConfigFile(std::string(SEGWAN_SOURCE_DIR) + "/deploy/config/edge-os.conf"));
  auto c = ControllerConfigFromFlags(f);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->db_path, "/var/lib/segwan/controller/segwan.db");
  EXPECT_EQ(c->retention_days, 30);
  EXPECT_FALSE(c->insecure);
  EXPECT_EQ(c->device_cert_days, 30);
}

TEST(ControllerConfig, OutOfRangeNumbersNameTheFlag) {
  FlagSet f("edge-os", "");
  AddControllerFlags(f);
  ASSERT_FALSE(f.Parse({"--poll-interval-ms", "5"}));
  EXPECT_EQ(ControllerConfigFromFlags(f).error().field, "--poll-interval-ms");
  FlagSet g("edge-os", "");
  AddControllerFlags(g);
  ASSERT_FALSE(g.Parse({"--device-cert-days", "0"}));
  EXPECT_EQ(ControllerConfigFromFlags(g).error().field, "--device-cert-days");
}

TEST(ControllerConfig, BadListenAddressNamesTheFlag) {
  FlagSet f("edge-os", "");
  AddControllerFlags(f);
  ASSERT_FALSE(f.Parse({"--grpc-listen", "50051"}));
  auto c = ControllerConfigFromFlags(f);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().field, "--grpc-listen");
}

TEST(ControllerConfig, CoreSidsAreNamedCandidatePaths) {
  auto cores = ParseCoreSids("p1=fc00:0:1::e,p2=fc00:0:2::e+fc00:0:3::e");
  ASSERT_TRUE(cores) << cores.error().message;
  ASSERT_EQ(cores->size(), 2u);
  EXPECT_EQ((*cores)[0].name, "p1");
  EXPECT_EQ((*cores)[0].waypoints, std::vector<std::string>{"fc00:0:1::e"});
  EXPECT_EQ((*cores)[1].waypoints, (std::vector<std::string>{"fc00:0:2::e", "fc00:0:3::e"}));
  EXPECT_TRUE(ParseCoreSids("")->empty());
  for (const char* bad : {"p1", "p1=10.0.0.1", "P1=fc00::e", "direct=fc00::e", "p1=fc00::e,p1=fc00::f", "p1="}) {
    auto r = ParseCoreSids(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().field, "--core-sids");
    }
  }
}

}  // namespace
}  // namespace segwan::controller
