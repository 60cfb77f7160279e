#include "segwan/text.h"

#include "segwan/clock.h"

#include <gtest/gtest.h>

namespace segwan {
namespace {

TEST(Text, Utf8IsCheckedToTheLetter) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_EQ(Utf8Length("caf\xc3\xa9"), 4u);
  EXPECT_EQ(Utf8Length("\xf0\x9f\x98\x80"), 1u);
}

TEST(Text, PercentEncodingAndControls) {
  EXPECT_TRUE(IsValidPercentEncoding("/api/v1/slices/sl%31?since=5m"));
  EXPECT_FALSE(IsValidPercentEncoding("/api/%zz"));
  EXPECT_FALSE(IsValidPercentEncoding("/api/%4"));
  EXPECT_FALSE(IsValidPercentEncoding("/api/%"));
  EXPECT_TRUE(HasControl(std::string("a\0b", 3)));
  EXPECT_TRUE(HasControl("a\nb"));
  EXPECT_FALSE(HasControl("a b"));
}

TEST(Text, ListsSplitIntoTheirNonEmptyItems) {
  EXPECT_EQ(SplitList(""), std::vector<std::string>{});
  EXPECT_EQ(SplitList("a,,b,"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SplitList("x+y", '+'), (std::vector<std::string>{"x", "y"}));
}

TEST(Text, NumbersAreParsedWhole) {
  EXPECT_EQ(ParseWholeInt("42"), 42);
  EXPECT_EQ(ParseWholeInt("-7"), -7);
  EXPECT_FALSE(ParseWholeInt("5abc"));
  EXPECT_FALSE(ParseWholeInt(""));
  EXPECT_FALSE(ParseWholeInt(" 5"));
  EXPECT_FALSE(ParseWholeInt("+5"));
  EXPECT_FALSE(ParseWholeInt("99999999999999999999"));
}

TEST(Text, LogEscapingKeepsOneLine) {
  EXPECT_EQ(EscapeForLog("ok"), "ok");
  EXPECT_EQ(EscapeForLog("a\nINFO forged"), "a\\x0aINFO forged");
  EXPECT_EQ(EscapeForLog("\x1b[31m"), "\\x1b[31m");
  EXPECT_EQ(EscapeForLog("a\\b"), "a\\\\b");
}

}  // namespace
}  // namespace segwan

// The one TAI/UTC conversion: exact both ways, and clamped at the TAI epoch.
TEST(TaiUtc, ConvertsBothWaysAndClampsBeforeTheEpoch) {
  const segwan::TaiUtc t{37};
  EXPECT_EQ(t.UtcMs(1'800'000'037'123'456'789ULL), 1'800'000'000'123LL);
  EXPECT_EQ(t.TaiNs(1'800'000'000'123LL), 1'800'000'037'123'000'000ULL);
  EXPECT_EQ(t.UtcMs(t.TaiNs(1'234'567LL)), 1'234'567LL);
  EXPECT_EQ(t.TaiNs(-40'000), 0u);
  EXPECT_EQ(segwan::TaiUtc{0}.TaiNs(0), 0u);
}
