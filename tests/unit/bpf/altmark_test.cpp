// The alternate-marking programs through BPF_PROG_TEST_RUN: the TC program colours and counts
// exactly the packets of monitored flows and leaves every other byte alone; the XDP program
// counts marked packets per flow and colour and nothing else.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <cstring>

#include "altmark.skel.h"
#include "packet.h"
#include "segwan_altmark.h"

namespace segwan::testing {
namespace {

static_assert(sizeof(altmark_flow_key) == 4 + 16 * ALTMARK_MAX_SEGS);
static_assert(sizeof(altmark_flow) == 8);
static_assert(sizeof(altmark_counter) == 16);

const IpAddress kP1 = *ParseIp("fc00:0:1::e");
const IpAddress kP2 = *ParseIp("fc00:0:2::e");
const IpAddress kDecapB = *ParseIp("fc00:0:b:1::d6");
const IpAddress kDecapC = *ParseIp("fc00:0:c:1::d6");

// A flow key from SIDs in SRH order (segments[0] = the last SID).
altmark_flow_key Key(std::initializer_list<IpAddress> srh_order) {
  altmark_flow_key k{};
  k.nsegs = static_cast<uint32_t>(srh_order.size());
  size_t i = 0;
  for (const auto& a : srh_order) std::memcpy(k.segs[i++], a.bytes.data(), 16);
  return k;
}

// An encapsulated frame as it leaves the ingress edge: outer DA = the first SID.
FrameSpec Encapsulated(std::vector<IpAddress> srh_order, uint8_t tc = 0) {
  FrameSpec s;
  s.srh_segments = srh_order;
  s.segments_left = static_cast<uint8_t>(srh_order.size() - 1);
  s.dst = srh_order.back();
  s.traffic_class = tc;
  s.payload.assign(64, 0x5a);
  return s;
}

uint8_t TrafficClass(const std::vector<uint8_t>& f) {
  return static_cast<uint8_t>(((f[14] & 0x0f) << 4) | (f[15] >> 4));
}

class Altmark : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
    skel_ = altmark__open_and_load();
    ASSERT_TRUE(skel_) << "the kernel refused the alternate-marking programs (see the verifier log above)";
    cpus_ = libbpf_num_possible_cpus();
  }
  void TearDown() override {
    if (skel_) altmark__destroy(skel_);
  }
  void MonitorTx(const altmark_flow_key& k, uint32_t slot, uint32_t colour) {
    altmark_flow f{slot, colour};
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.altmark_tx_flows, &k, sizeof k, &f, sizeof f, BPF_ANY), 0);
    altmark_addr head{};
    std::memcpy(head.addr, k.segs[k.nsegs - 1], 16);  // the first SID: the outer destination
    uint32_t one = 1;
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.altmark_tx_heads, &head, sizeof head, &one, sizeof one, BPF_ANY), 0);
  }
  void MonitorRx(const altmark_flow_key& k, uint32_t slot) {
    altmark_flow f{slot, 0};
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.altmark_rx_flows, &k, sizeof k, &f, sizeof f, BPF_ANY), 0);
  }
  // Sum over CPUs of a counter
  altmark_counter Counter(bpf_map* m, uint32_t slot, uint32_t colour) {
    std::vector<altmark_counter> per_cpu(static_cast<size_t>(cpus_));
    uint32_t idx = slot * 2 + colour;
    altmark_counter sum{};
    if (bpf_map__lookup_elem(m, &idx, sizeof idx, per_cpu.data(), per_cpu.size() * sizeof(altmark_counter), 0) != 0) {
      ADD_FAILURE() << "lookup " << idx;
      return sum;
    }
    for (const auto& c : per_cpu) {
      sum.packets += c.packets;
      sum.bytes += c.bytes;
    }
    return sum;
  }
  RunResult Tx(const std::vector<uint8_t>& frame) {
    auto r = RunXdp(bpf_program__fd(skel_->progs.altmark_tx), frame);
    EXPECT_TRUE(r);
    EXPECT_EQ(r->retval, TC_ACT_UNSPEC);  // the next filter runs too
    return *r;
  }
  RunResult Rx(const std::vector<uint8_t>& frame) {
    auto r = RunXdp(bpf_program__fd(skel_->progs.altmark_rx), frame);
    EXPECT_TRUE(r);
    EXPECT_EQ(r->retval, XDP_PASS);
    EXPECT_EQ(r->out, frame);  // counting never changes a byte
    return *r;
  }

  altmark* skel_ = nullptr;
  int cpus_ = 1;
};

TEST_F(Altmark, TxColoursAndCountsItsFlowOnly) {
  MonitorTx(Key({kDecapB, kP1}), 7, 1);
  const auto frame = BuildFrame(Encapsulated({kDecapB, kP1}, 0xa0));
  auto out = Tx(frame).out;
  // monitored + colour 1 added; the other Traffic Class bits and every other byte kept
  EXPECT_EQ(TrafficClass(out), 0xa0 | ALTMARK_DEFAULT_FLAG | ALTMARK_DEFAULT_COLOUR);
  auto expect = frame;
  expect[14] = out[14];
  expect[15] = out[15];
  EXPECT_EQ(out, expect);
  EXPECT_EQ(out[15] & 0x0f, frame[15] & 0x0f);  // the flow label's first bits survive
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 7, 1).packets, 1u);
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 7, 1).bytes, frame.size());
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 7, 0).packets, 0u);

  // the period switches: colour 0 is painted and counted, and an old colour bit is cleared
  MonitorTx(Key({kDecapB, kP1}), 7, 0);
  out = Tx(BuildFrame(Encapsulated({kDecapB, kP1}, ALTMARK_DEFAULT_COLOUR))).out;
  EXPECT_EQ(TrafficClass(out), ALTMARK_DEFAULT_FLAG);
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 7, 0).packets, 1u);
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 7, 1).packets, 1u);
}

TEST_F(Altmark, TxLeavesEverythingElseAlone) {
  MonitorTx(Key({kDecapB, kP1}), 3, 1);
  struct Case {
    const char* what;
    std::vector<uint8_t> frame;
  };
  FrameSpec v4;
  v4.ipv4 = true;
  FrameSpec plain;  // no SRH, destination not a monitored head
  auto cut = BuildFrame(Encapsulated({kDecapB, kP1}));
  cut.resize(14 + 40 + 8 + 16);  // the SRH's second SID is missing
  const Case cases[] = {
      {"same first SID, other last SID", BuildFrame(Encapsulated({kDecapC, kP1}))},
      {"other first SID, same last SID", BuildFrame(Encapsulated({kDecapB, kP2}))},
      {"a longer SID list", BuildFrame(Encapsulated({kDecapB, kP2, kP1}))},
      {"no SRH to an unmonitored destination", BuildFrame(plain)},
      {"IPv4", BuildFrame(v4)},
      {"SRH cut short", cut},
  };
  for (const auto& c : cases) {
    auto out = Tx(c.frame).out;
    EXPECT_EQ(out, c.frame) << c.what;
  }
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 3, 0).packets + Counter(skel_->maps.altmark_tx_counters, 3, 1).packets, 0u);
}

TEST_F(Altmark, TxFlowWithoutAnSrhIsKeyedByItsDestination) {
  MonitorTx(Key({kDecapB}), 2, 1);  // encap to a single SID: no SRH on some routes
  FrameSpec s;
  s.dst = kDecapB;
  auto out = Tx(BuildFrame(s)).out;
  EXPECT_EQ(TrafficClass(out), ALTMARK_DEFAULT_FLAG | ALTMARK_DEFAULT_COLOUR);
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 2, 1).packets, 1u);
}

TEST_F(Altmark, RxCountsMarkedPacketsPerFlowAndColour) {
  MonitorRx(Key({kDecapB, kP1}), 5);
  MonitorRx(Key({kDecapB, kP2, kP1}), 6);
  auto at_egress = [](std::vector<IpAddress> segs, uint8_t tc) {
    auto s = Encapsulated(segs, tc);
    s.segments_left = 0;  // arrived: the destination is now the last SID
    s.dst = segs.front();
    return BuildFrame(s);
  };
  const uint8_t flag = ALTMARK_DEFAULT_FLAG, colour = ALTMARK_DEFAULT_COLOUR;
  for (int i = 0; i < 3; ++i) Rx(at_egress({kDecapB, kP1}, flag | colour));
  Rx(at_egress({kDecapB, kP1}, flag));
  Rx(at_egress({kDecapB, kP1}, colour));         // not monitored: colour bit alone means nothing
  Rx(at_egress({kDecapB, kP1}, 0));              // unmarked
  Rx(at_egress({kDecapC, kP1}, flag | colour));  // a flow this edge does not count
  Rx(at_egress({kDecapB, kP2, kP1}, flag));
  const auto frame_len = at_egress({kDecapB, kP1}, 0).size();
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 5, 1).packets, 3u);
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 5, 1).bytes, 3 * frame_len);
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 5, 0).packets, 1u);
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 6, 0).packets, 1u);
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 6, 1).packets, 0u);
}

TEST_F(Altmark, TcIngressCountsLikeXdp) {
  MonitorRx(Key({kDecapB, kP1}), 4);
  auto s = Encapsulated({kDecapB, kP1}, ALTMARK_DEFAULT_FLAG | ALTMARK_DEFAULT_COLOUR);
  const auto frame = BuildFrame(s);
  auto r = RunXdp(bpf_program__fd(skel_->progs.altmark_rx_tc), frame);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->retval, TC_ACT_UNSPEC);  // the next filter runs too
  EXPECT_EQ(r->out, frame);
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 4, 1).packets, 1u);
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 4, 1).bytes, frame.size());
}

TEST_F(Altmark, WhatTxMarksRxCounts) {
  // The same key on both ends: the ingress edge's colouring is what the egress edge reads.
  const auto key = Key({kDecapB, kP2, kP1});
  MonitorTx(key, 9, 1);
  MonitorRx(key, 9);
  auto out = Tx(BuildFrame(Encapsulated({kDecapB, kP2, kP1}))).out;
  Rx(out);
  EXPECT_EQ(Counter(skel_->maps.altmark_tx_counters, 9, 1).packets, 1u);
  EXPECT_EQ(Counter(skel_->maps.altmark_rx_counters, 9, 1).packets, 1u);
}

}  // namespace
}  // namespace segwan::testing
