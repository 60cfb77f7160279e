// The kernel preflight's decisions on hand-made reports (no root): which mode `auto` picks,
// what a mode requires, and what a missing feature's line says. The probe itself runs against
// real kernels in netlink_dataplane_test and in the lab (here and in the VM).
#include <gtest/gtest.h>

#include "edge-manager/agent/kernel_check.h"

namespace segwan::edge {
namespace {

using F = KernelFeature;

KernelReport AllPresent() {
  KernelReport r;
  r.release = "6.1.0-test";
  for (F f : {F::kSeg6Encap6, F::kSeg6Encap4, F::kSeg6LocalEnd, F::kEndDT6Table, F::kEndDX4, F::kVrf,
              F::kVrfStrictMode, F::kEndDT4Vrf, F::kEndDT6Vrf, F::kEndDT46Vrf, F::kBpfXdp, F::kBpfTc,
              F::kBpfRingbuf, F::kBpfTaiClock, F::kBtf, F::kNftables}) {
    r.checks.push_back(FeatureCheck{f, "feature " + std::to_string(static_cast<int>(f)), true, "", "CONFIG_X"});
  }
  return r;
}

void Lose(KernelReport& r, F f, const std::string& why) {
  for (auto& c : r.checks) {
    if (c.feature == f) {
      c.present = false;
      c.detail = why;
    }
  }
}

TEST(KernelCheckTest, AutoIsVrfOnlyWhenAllOfVrfModeWorks) {
  auto r = AllPresent();
  EXPECT_EQ(ChooseSliceMode("auto", r), SliceMode::kVrf);
  EXPECT_TRUE(MissingFor(r, SliceMode::kVrf).empty());
  // VRF devices but End.DT46 refused (a 5.11-5.13 kernel): table mode, which does not need it
  Lose(r, F::kEndDT46Vrf, "Invalid argument");
  EXPECT_EQ(ChooseSliceMode("auto", r), SliceMode::kTable);
  EXPECT_TRUE(MissingFor(r, SliceMode::kTable).empty());
  // asked for explicitly, VRF mode stays VRF mode and says what it lacks
  EXPECT_EQ(ChooseSliceMode("vrf", r), SliceMode::kVrf);
  EXPECT_NE(MissingFor(r, SliceMode::kVrf).find("Invalid argument"), std::string::npos);
  EXPECT_EQ(ChooseSliceMode("table", AllPresent()), SliceMode::kTable);
}

TEST(KernelCheckTest, WithoutSeg6NoModeRunsAndTheLineSaysWhatProvidesIt) {
  auto r = AllPresent();
  Lose(r, F::kSeg6Encap6, "lwt encapsulation type not supported");
  for (auto mode : {SliceMode::kVrf, SliceMode::kTable}) {
    const auto missing = MissingFor(r, mode);
    EXPECT_NE(missing.find("lwt encapsulation type not supported"), std::string::npos) << missing;
    EXPECT_NE(missing.find("6.1.0-test"), std::string::npos) << missing;
    EXPECT_NE(missing.find("provided by CONFIG_X"), std::string::npos) << missing;
  }
  EXPECT_EQ(r.Missing(F::kSeg6Encap4), "") << "a present feature has no missing line";
}

TEST(KernelCheckTest, OptionalFeaturesDoNotStopTheAgent) {
  auto r = AllPresent();
  for (F f : {F::kBpfXdp, F::kBpfTc, F::kBpfRingbuf, F::kBpfTaiClock, F::kBtf, F::kNftables}) Lose(r, f, "no");
  EXPECT_EQ(ChooseSliceMode("auto", r), SliceMode::kVrf);
  EXPECT_TRUE(MissingFor(r, SliceMode::kVrf).empty());
  const auto text = FormatKernelReport(r, SliceMode::kVrf);
  EXPECT_NE(text.find("MISSING  optional"), std::string::npos) << text;
  EXPECT_EQ(text.find("MISSING  required"), std::string::npos) << text;
}

TEST(KernelCheckTest, AProbeThatCouldNotRunFindsNothingPresent) {
  auto r = AllPresent();
  r.probe_error = "cannot make a network namespace to probe in (needs root): Operation not permitted";
  EXPECT_FALSE(r.Has(F::kSeg6Encap6));
  EXPECT_EQ(ChooseSliceMode("auto", r), SliceMode::kTable);
  EXPECT_NE(MissingFor(r, SliceMode::kTable).find("needs root"), std::string::npos);
}

}  // namespace
}  // namespace segwan::edge
