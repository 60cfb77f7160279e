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

}  // namespace
}  // namespace segwan::controller
