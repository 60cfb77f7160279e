#include "segwan/net.h"

#include <gtest/gtest.h>

namespace segwan {
namespace {

TEST(Net, ParsesAddresses) {
  auto a = ParseIp("fc00:0:a::1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, AF_INET6);
  EXPECT_EQ(a->bytes[1], 0x00);
  EXPECT_EQ(a->bytes[5], 0x0a);
  EXPECT_EQ(a->bytes[15], 0x01);
  EXPECT_EQ(a->ToString(), "fc00:0:a::1");
  auto b = ParseIp("10.1.2.3");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family, AF_INET);
  EXPECT_EQ(b->size(), 4u);
  EXPECT_EQ(b->ToString(), "10.1.2.3");
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "fc00::g", ":::", "fc00::1%eth0"}) {
    EXPECT_FALSE(ParseIp(bad)) << bad;
  }
  EXPECT_FALSE(ParseIpv6("10.0.0.1"));
  EXPECT_FALSE(ParseIpv4("::1"));
}

TEST(Net, ParsesPrefixes) {
  auto p = ParsePrefix("fc00:0:a::/48");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 48);
  EXPECT_EQ(p->ToString(), "fc00:0:a::/48");
  EXPECT_TRUE(p->Contains(*ParseIp("fc00:0:a:ffff::1")));
  EXPECT_FALSE(p->Contains(*ParseIp("fc00:0:b::1")));
  EXPECT_FALSE(p->Contains(*ParseIp("10.0.0.1")));
  EXPECT_EQ(ParsePrefix("10.1.0.0/16")->ToString(), "10.1.0.0/16");
  EXPECT_EQ(ParsePrefix("10.1.2.3")->length, 32);
  EXPECT_FALSE(ParsePrefix("10.1.2.3/16"));  // host bits set
  EXPECT_EQ(ParsePrefix("10.1.2.3/16", true)->ToString(), "10.1.0.0/16");
  EXPECT_EQ(ParsePrefix("10.1.2.3/23", true)->ToString(), "10.1.2.0/23");
  EXPECT_TRUE(ParsePrefix("0.0.0.0/0"));
  for (const char* bad : {"10.0.0.0/33", "fc00::/129", "fc00::/", "fc00::/-1", "x/8", "::/4a"}) {
    EXPECT_FALSE(ParsePrefix(bad)) << bad;
  }
}

TEST(Net, ParsesHostPort) {
  auto a = ParseHostPort("[fd00:ff::1]:50051");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "fd00:ff::1");
  EXPECT_EQ(a->port, 50051);
  EXPECT_EQ(a->ToString(), "[fd00:ff::1]:50051");
  auto b = ParseHostPort("localhost:8080");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->ToString(), "localhost:8080");
  for (const char* bad : {"fd00::1:80", "host", "host:0", "host:65536", ":80", "[::1]80",
                          "[zz]:80", "host:8o"}) {
    EXPECT_FALSE(ParseHostPort(bad)) << bad;
  }
}

TEST(Net, Identifiers) {
  EXPECT_TRUE(IsValidIdentifier("edge-a"));
  EXPECT_TRUE(IsValidIdentifier("a"));
  EXPECT_FALSE(IsValidIdentifier(""));
  EXPECT_FALSE(IsValidIdentifier("-a"));
  EXPECT_FALSE(IsValidIdentifier("Edge"));
  EXPECT_FALSE(IsValidIdentifier("a_b"));
  EXPECT_FALSE(IsValidIdentifier(std::string(64, 'a')));
  EXPECT_TRUE(IsValidIdentifier(std::string(63, 'a')));
}

}  // namespace
}  // namespace segwan
