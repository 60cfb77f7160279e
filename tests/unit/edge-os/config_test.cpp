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
