#include "segwan/flags.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace segwan {
namespace {

FlagSet MakeFlags() {
  FlagSet f("prog", "test program");
  f.AddString("name", "dflt", "a string");
  f.AddInt("count", 3, "an int");
  f.AddBool("verbose", false, "a bool");
  return f;
}

TEST(FlagSet, DefaultsWhenNothingGiven) {
  auto f = MakeFlags();
  ASSERT_FALSE(f.Parse(std::vector<std::string>{}));
  EXPECT_EQ(f.GetString("name"), "dflt");
  EXPECT_EQ(f.GetInt("count"), 3);
  EXPECT_FALSE(f.GetBool("verbose"));
  EXPECT_FALSE(f.IsSet("name"));
}

TEST(FlagSet, ParsesAllSpellings) {
  auto f = MakeFlags();
  ASSERT_FALSE(f.Parse({"--name", "x", "--count=42", "--verbose", "pos1", "--", "--pos2"}));
  EXPECT_EQ(f.GetString("name"), "x");
  EXPECT_EQ(f.GetInt("count"), 42);
  EXPECT_TRUE(f.GetBool("verbose"));
  EXPECT_TRUE(f.IsSet("count"));
  EXPECT_EQ(f.Positional(), (std::vector<std::string>{"pos1", "--pos2"}));
}

TEST(FlagSet, NegatedBool) {
  FlagSet f("p", "s");
  f.AddBool("color", true, "c");
  ASSERT_FALSE(f.Parse({"--no-color"}));
  EXPECT_FALSE(f.GetBool("color"));
}

TEST(FlagSet, ErrorsNameTheFlag) {
  auto f = MakeFlags();
  auto err = f.Parse({"--count", "many"});
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("--count"), std::string::npos) << *err;
  auto g = MakeFlags();
  err = g.Parse({"--bogus"});
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("--bogus"), std::string::npos);
  auto h = MakeFlags();
  err = h.Parse({"--name"});
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("needs a value"), std::string::npos);
}

TEST(FlagSet, HelpAndVersionAreReported) {
  auto f = MakeFlags();
  ASSERT_FALSE(f.Parse({"--help", "--version"}));
  EXPECT_TRUE(f.HelpRequested());
  EXPECT_TRUE(f.VersionRequested());
  const auto usage = f.Usage();
  EXPECT_NE(usage.find("--count N"), std::string::npos) << usage;
  EXPECT_NE(usage.find("(default: 3)"), std::string::npos) << usage;
}

TEST(FlagSet, ConfigFileLosesToCommandLine) {
  const std::string path = ::testing::TempDir() + "/flags_test.conf";
  {
    std::ofstream out(path);
    out << "# comment\nname = from-file  # trailing\n\ncount=7\n";
  }
  auto f = MakeFlags();
  ASSERT_FALSE(f.Parse({"--count", "9"}));
  ASSERT_FALSE(f.ParseConfigFile(path));
  EXPECT_EQ(f.GetString("name"), "from-file");
  EXPECT_EQ(f.GetInt("count"), 9);
  EXPECT_TRUE(f.IsSet("name"));
  std::remove(path.c_str());
}

TEST(FlagSet, ConfigFileErrorsSayWhere) {
  const std::string path = ::testing::TempDir() + "/flags_bad.conf";
  {
    std::ofstream out(path);
    out << "name = ok\nnonsense line\n";
  }
  auto f = MakeFlags();
  auto err = f.ParseConfigFile(path);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find(":2:"), std::string::npos) << *err;
  std::remove(path.c_str());
  EXPECT_TRUE(MakeFlags().ParseConfigFile("/nonexistent/file"));
}

}  // namespace
}  // namespace segwan
