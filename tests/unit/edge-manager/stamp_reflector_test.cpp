#include "edge-manager/stamp/reflector.h"

#include <gtest/gtest.h>

namespace segwan::stamp {
namespace {

const Key kKey(32, 0x5a);
const IpAddress kLocal = *ParseIp("fc00:0:b::1");
constexpr uint64_t kT2 = 1'800'000'000'123'456'789ULL;

Reflector::Clock TestClock() {
  return {.tai_utc_offset_s = 37, .synchronized = true, .sync_source = kSyncNtp, .error_ns = 1000};
}

const IpAddress kPeer = *ParseIp("fc00:0:a::1");

ReceivedPacket In(const std::vector<uint8_t>& payload, uint8_t tclass = 0) {
  return ReceivedPacket{payload, kT2, 61, tclass, kLocal, 862, kPeer, 40000};
}

Reflection MustReflect(Reflector& r, const std::vector<uint8_t>& payload, uint8_t tclass = 0) {
  auto out = r.Reflect(In(payload, tclass));
  EXPECT_TRUE(std::holds_alternative<Reflection>(out))
      << DropReasonName(std::get<DropReason>(out));
  return std::holds_alternative<Reflection>(out) ? std::get<Reflection>(out) : Reflection{};
}

ReflectorPacket Parse(const Reflection& r, Mode mode = Mode::kUnauthenticated, const Key* key = nullptr) {
  auto p = ParseReflector(r.reply, mode, key);
  EXPECT_TRUE(std::holds_alternative<ReflectorPacket>(p));
  return std::get<ReflectorPacket>(p);
}

TEST(Reflector, StatelessReflectionCopiesTheSenderAndTakesT2) {
  Reflector r(TestClock());
  const std::vector<IpAddress> ret = {*ParseIp("fc00:0:2::e"), *ParseIp("fc00:0:a::5")};
  r.AddSession({.ssid = 42, .return_segments = ret});
  const auto req = BuildSender({.seq = 9, .timestamp = 0x1122334455667788ULL, .error_estimate = 0x4001, .ssid = 42},
                               Mode::kUnauthenticated);
  const Reflection out = MustReflect(r, req);
  EXPECT_EQ(out.reply.size(), req.size());
  EXPECT_EQ(out.return_segments, ret);
  const ReflectorPacket p = Parse(out);
  EXPECT_EQ(p.seq, 9u);  // stateless: the sender's number
  EXPECT_EQ(p.ssid, 42);
  EXPECT_EQ(p.sender_seq, 9u);
  EXPECT_EQ(p.sender_timestamp, 0x1122334455667788ULL);
  EXPECT_EQ(p.sender_error_estimate, 0x4001);
  EXPECT_EQ(p.sender_ttl, 61);
  EXPECT_EQ(DecodeTimestamp(p.receive_timestamp, TimestampFormat::kNtp, 37), kT2);
  EXPECT_EQ(p.error_estimate, 0x8587);  // synchronized, 1 us
}

TEST(Reflector, StatefulCountsItsOwnSequence) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 7, .reflector_mode = ReflectorMode::kStateful, .format = TimestampFormat::kPtp});
  for (uint32_t i = 0; i < 3; ++i) {
    // the sender skips numbers (lost packets): the reflector's own count does not
    const auto req = BuildSender({.seq = i * 10, .ssid = 7}, Mode::kUnauthenticated);
    const ReflectorPacket p = Parse(MustReflect(r, req));
    EXPECT_EQ(p.seq, i);
    EXPECT_EQ(p.sender_seq, i * 10);
    EXPECT_EQ(DecodeTimestamp(p.receive_timestamp, TimestampFormat::kPtp, 37), kT2);
  }
  EXPECT_EQ(r.SessionCounters(7)->reflected, 3u);
}

// When the XDP reflector holds the same session, user space numbers its replies from the
// shared counter, so the packets XDP passes up do not start a second sequence.
TEST(Reflector, StatefulTakesTheSharedSequenceWhenThereIsOne) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 7, .reflector_mode = ReflectorMode::kStateful});
  r.AddSession({.ssid = 8, .reflector_mode = ReflectorMode::kStateful});
  uint32_t shared = 41;
  // As the XDP counter's owner rule does: the first sender (port 40000) owns it.
  r.SetSharedSequence([&](uint16_t ssid, const IpAddress&, uint16_t port) -> std::optional<uint32_t> {
    if (ssid != 7 || port != 40000) return std::nullopt;  // session 8 is not in XDP
    return shared++;
  });
  EXPECT_EQ(Parse(MustReflect(r, BuildSender({.seq = 0, .ssid = 7}, Mode::kUnauthenticated))).seq, 41u);
  EXPECT_EQ(Parse(MustReflect(r, BuildSender({.seq = 1, .ssid = 7}, Mode::kUnauthenticated))).seq, 42u);
  EXPECT_EQ(Parse(MustReflect(r, BuildSender({.seq = 0, .ssid = 8}, Mode::kUnauthenticated))).seq, 0u);
  EXPECT_EQ(shared, 43u);
  // Another sender with SSID 7 is another session: its own sequence, not the owner's.
  const auto bytes = BuildSender({.seq = 0, .ssid = 7}, Mode::kUnauthenticated);
  ReceivedPacket other = In(bytes);
  other.peer_port = 40001;
  EXPECT_EQ(Parse(std::get<Reflection>(r.Reflect(other))).seq, 0u);
  EXPECT_EQ(shared, 43u);
}

// A reflector that answers any SSID keeps at most kMaxSessionsOnFirstSight sessions it made on
// first sight: anyone can send every SSID, and before, each one made a session for good (with up
// to kMaxPeers senders each: hundreds of megabytes a stranger could make it hold). The least
// recently seen goes first; configured sessions stay.
TEST(Reflector, SessionsMadeOnFirstSightAreBounded) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1, .reflector_mode = ReflectorMode::kStateful});
  r.AcceptAnySession({.reflector_mode = ReflectorMode::kStateful});
  auto send = [&](uint16_t ssid, uint32_t seq) {
    const auto bytes = BuildSender({.seq = seq, .ssid = ssid}, Mode::kUnauthenticated);
    return Parse(std::get<Reflection>(r.Reflect(In(bytes))));
  };
  send(1, 0);
  send(2, 0);
  send(3, 0);
  for (uint16_t ssid = 100; ssid < 100 + Reflector::kMaxSessionsOnFirstSight - 2; ++ssid) send(ssid, 0);  // 2, 3 and these: the bound
  EXPECT_EQ(send(3, 1).seq, 1u) << "3 seen again: now the most recent";
  EXPECT_TRUE(r.SessionCounters(2)) << "at the bound, nothing forgotten yet";
  send(60000, 0);  // one more than the bound
  EXPECT_FALSE(r.SessionCounters(2)) << "the least recently seen session made on first sight is forgotten";
  EXPECT_TRUE(r.SessionCounters(3));
  EXPECT_TRUE(r.SessionCounters(60000));
  EXPECT_EQ(send(1, 1).seq, 1u) << "a configured session is never forgotten";
  EXPECT_EQ(send(2, 5).seq, 0u) << "a forgotten session starts again";
}

// RFC 8972 §3: a session is its SSID with the addresses and ports. Two senders that pick the
// same SSID each get their own stateful sequence and Direct Measurement counters. Before: one
// sequence for both, so each saw the other's packets as its own losses.
TEST(Reflector, TwoSendersWithTheSameSsidAreTwoSessions) {
  Reflector r(TestClock());
  r.AcceptAnySession({.reflector_mode = ReflectorMode::kStateful});
  auto from = [&](uint16_t port, uint32_t seq) {
    const auto bytes = BuildSender({.seq = seq, .ssid = 5, .tlvs = {DirectMeasurementTlv(seq + 1)}}, Mode::kUnauthenticated);
    ReceivedPacket p = In(bytes);
    p.peer_port = port;
    return Parse(std::get<Reflection>(r.Reflect(p)));
  };
  for (uint32_t i = 0; i < 3; ++i) {
    const auto a = from(40000, i), b = from(40001, i);
    EXPECT_EQ(a.seq, i);
    EXPECT_EQ(b.seq, i);
    // R_RxC of each: only its own packets
    EXPECT_EQ(b.tlvs[0].value[7], static_cast<uint8_t>(i + 1));
  }
  EXPECT_EQ(r.SessionCounters(5)->reflected, 6u) << "the SSID's total";
  // Past kMaxPeers senders, the oldest other one is forgotten (the owner is kept).
  for (uint16_t port = 50000; port < 50000 + Reflector::kMaxPeers; ++port) from(port, 0);
  EXPECT_EQ(from(40000, 3).seq, 3u) << "the owner's sequence survives";
  EXPECT_EQ(from(40001, 3).seq, 0u) << "a forgotten sender starts again";
}

TEST(Reflector, DropsAreNamedAndCounted) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1});
  auto req = BuildSender({.seq = 1, .ssid = 1}, Mode::kUnauthenticated);
  auto unknown = BuildSender({.seq = 1, .ssid = 2}, Mode::kUnauthenticated);
  EXPECT_EQ(std::get<DropReason>(r.Reflect(In(unknown))), DropReason::kUnknownSession);
  std::vector<uint8_t> short_pkt(req.begin(), req.begin() + 20);
  EXPECT_EQ(std::get<DropReason>(r.Reflect(In(short_pkt))), DropReason::kTooShort);
  EXPECT_EQ(r.drops(DropReason::kUnknownSession), 1u);
  EXPECT_EQ(r.drops(DropReason::kTooShort), 1u);
  EXPECT_EQ(r.SessionCounters(1)->reflected, 0u);
}

// RFC 8972 §4: "the remaining length of the extended STAMP packet is less than the size of the
// TLV" is a malformed TLV, answered with M set, not a packet to drop. Before: dropped.
TEST(Reflector, ATlvCutShortIsAnsweredWithMAndTheRequestsSize) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1});
  auto req = BuildSender({.seq = 1, .ssid = 1, .tlvs = {ClassOfServiceTlv(46), ExtraPaddingTlv(8)}}, Mode::kUnauthenticated);
  req.resize(req.size() - 3);
  const Reflection out = MustReflect(r, req);
  ASSERT_EQ(out.reply.size(), req.size()) << "symmetric";
  const auto got = Parse(out);
  ASSERT_EQ(got.tlvs.size(), 1u) << "the sender stops at the M flag";
  EXPECT_EQ(got.tlvs[0].flags, 0) << "understood";
  // The cut TLV and what follows: copied as they came, M set.
  ASSERT_EQ(got.trailer.size(), 4u + 5);
  EXPECT_EQ(got.trailer[0], kTlvFlagMalformed) << "an Extra Padding: understood, malformed";
  EXPECT_TRUE(std::equal(got.trailer.begin() + 1, got.trailer.end(), req.end() - 8));
  // 1-3 bytes after the last TLV: answered, the bytes sent back as they came.
  auto tail = BuildSender({.seq = 2, .ssid = 1, .tlvs = {ExtraPaddingTlv(4)}}, Mode::kUnauthenticated);
  tail.insert(tail.end(), {0xaa, 0xbb});
  const Reflection t = MustReflect(r, tail);
  ASSERT_EQ(t.reply.size(), tail.size());
  EXPECT_EQ(t.reply[t.reply.size() - 2], 0xaa);
  EXPECT_EQ(r.SessionCounters(1)->reflected, 2u);
}

// RFC 8972 §4.2: the Location TLV is answered in place, same length: the ports and the
// addresses the reflector saw, in the sub-TLV types of their family. Before: returned with U.
TEST(Reflector, LocationIsAnsweredWithWhatTheReflectorSaw) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1});
  Tlv loc = LocationRequestTlv();
  loc.value.insert(loc.value.end(), {0, kLocSourceMac, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0});  // Source MAC
  loc.value.insert(loc.value.end(), {0, 99, 0, 2, 7, 7});                               // unknown sub-TLV
  const auto req = BuildSender({.seq = 1, .ssid = 1, .tlvs = {loc}}, Mode::kUnauthenticated);
  const Reflection out = MustReflect(r, req);
  ASSERT_EQ(out.reply.size(), req.size());
  const auto got = Parse(out).tlvs;
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].flags, 0);
  const auto& v = got[0].value;
  ASSERT_EQ(v.size(), loc.value.size());
  EXPECT_EQ(v[0] << 8 | v[1], 862) << "destination port";
  EXPECT_EQ(v[2] << 8 | v[3], 40000) << "source port";
  EXPECT_EQ(v[5], kLocDestinationIpv6);
  EXPECT_TRUE(std::equal(kLocal.bytes.begin(), kLocal.bytes.end(), v.begin() + 8));
  EXPECT_EQ(v[4 + 20 + 1], kLocSourceIpv6);
  EXPECT_TRUE(std::equal(kPeer.bytes.begin(), kPeer.bytes.end(), v.begin() + 4 + 20 + 4));
  EXPECT_EQ(v[4 + 40 + 1], kLocSourceEui64) << "no MAC on a UDP socket: EUI-64, zeroed";
  EXPECT_EQ(v[4 + 40], 0);
  EXPECT_EQ(v[4 + 52], kTlvFlagUnrecognized) << "the unknown sub-TLV";

  // IPv4: the IPv4 sub-TLV types, the address in the first 4 of the 16 bytes.
  ReceivedPacket v4 = In(req);
  v4.local_address = *ParseIp("10.0.0.2");
  v4.peer_address = *ParseIp("10.0.0.1");
  auto out4 = std::get<Reflection>(r.Reflect(v4));
  const auto w = Parse(out4).tlvs[0].value;
  EXPECT_EQ(w[5], kLocDestinationIpv4);
  EXPECT_EQ(std::vector<uint8_t>(w.begin() + 8, w.begin() + 12), (std::vector<uint8_t>{10, 0, 0, 2}));
  EXPECT_EQ(w[4 + 20 + 1], kLocSourceIpv4);

  // Shorter than its ports: malformed.
  const auto bad = BuildSender({.seq = 2, .ssid = 1, .tlvs = {Tlv{0, kTlvLocation, {0, 0}}}}, Mode::kUnauthenticated);
  const auto pb = Parse(MustReflect(r, bad));
  ASSERT_FALSE(pb.trailer.empty());
  EXPECT_EQ(pb.trailer[0], kTlvFlagMalformed);
}

// RFC 8972 §4: processing stops at a malformed TLV; what follows is not acted on. Before: a
// Class of Service after a malformed TLV was still applied (DSCP set, U clear).
TEST(Reflector, ProcessingStopsAtAMalformedTlv) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1});
  const auto req = BuildSender({.seq = 1, .ssid = 1,
                                .tlvs = {TimestampInfoTlv(), Tlv{0, kTlvDirectMeasurement, {1, 2}}, ClassOfServiceTlv(46)}},
                               Mode::kUnauthenticated);
  const Reflection out = MustReflect(r, req);
  EXPECT_FALSE(out.dscp) << "the Class of Service after the malformed TLV is not acted on";
  ASSERT_EQ(out.reply.size(), req.size());
  const auto got = Parse(out);
  ASSERT_EQ(got.tlvs.size(), 1u);
  EXPECT_EQ(got.tlvs[0].flags, 0);
  // From the malformed TLV on, the request's bytes; that TLV's flags: M (its type is understood).
  const size_t from = kUnauthenticatedLength + 8;
  std::vector<uint8_t> want(req.begin() + from, req.end());
  want[0] = kTlvFlagMalformed;
  EXPECT_EQ(got.trailer, want);
}

// RFC 8972 §4: the reflector clears U on a TLV it understands, sets it on one it does not, and
// zeroes the reserved flags, whatever the sender sent. Before: flags were echoed as received.
TEST(Reflector, FlagsAreTheReflectorsNotTheSendersEcho) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1});
  auto req = BuildSender({.seq = 1, .ssid = 1, .tlvs = {ExtraPaddingTlv(4), Tlv{0, 200, {1}}}}, Mode::kUnauthenticated);
  req[44] = 0xff;      // padding: every flag set, reserved ones too
  req[44 + 8] = 0x00;  // unknown type sent with U clear (an older sender)
  const auto got = Parse(MustReflect(r, req)).tlvs;
  EXPECT_EQ(got[0].flags, 0);
  EXPECT_EQ(got[1].flags, kTlvFlagUnrecognized);
}

TEST(Reflector, AuthenticatedModeVerifiesAndSigns) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 5, .mode = Mode::kAuthenticated, .key = kKey});
  const auto req = BuildSender({.seq = 3, .ssid = 5}, Mode::kAuthenticated, &kKey);
  const Reflection out = MustReflect(r, req);
  ASSERT_EQ(out.reply.size(), kAuthenticatedLength);
  EXPECT_EQ(Parse(out, Mode::kAuthenticated, &kKey).sender_seq, 3u);  // its HMAC verifies
  const Key wrong(32, 0x00);
  auto forged = BuildSender({.seq = 3, .ssid = 5}, Mode::kAuthenticated, &wrong);
  EXPECT_EQ(std::get<DropReason>(r.Reflect(In(forged))), DropReason::kHmacMismatch);
}

TEST(Reflector, PatchT3WritesLateAndKeepsTheHmacValid) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 5, .mode = Mode::kAuthenticated, .key = kKey});
  Reflection out = MustReflect(r, BuildSender({.seq = 3, .ssid = 5}, Mode::kAuthenticated, &kKey));
  PatchT3(out.reply, Mode::kAuthenticated, 0xabcdef0123456789ULL, &kKey);
  EXPECT_EQ(Parse(out, Mode::kAuthenticated, &kKey).timestamp, 0xabcdef0123456789ULL);
  Reflector u(TestClock());
  u.AddSession({.ssid = 6});
  Reflection plain = MustReflect(u, BuildSender({.seq = 1, .ssid = 6}, Mode::kUnauthenticated));
  PatchT3(plain.reply, Mode::kUnauthenticated, 42, nullptr);
  EXPECT_EQ(Parse(plain).timestamp, 42u);
}

TEST(Reflector, TlvsAreProcessedOrFlagged) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 8});
  const std::vector<Tlv> tlvs = {
      ExtraPaddingTlv(12),
      ClassOfServiceTlv(46),
      TimestampInfoTlv(),
      DirectMeasurementTlv(1),
      DestinationNodeAddressTlv(*ParseIp("fc00:0:c::1")),  // not this reflector
      Tlv{0, kTlvAccessReport, std::vector<uint8_t>(4, 0)},  // Access ID 0: invalid, discarded
      Tlv{0, 200, {1, 2, 3}},                             // unknown
      Tlv{0, kTlvClassOfService, {0xb8}},                 // malformed length
  };
  const auto req = BuildSender({.seq = 1, .ssid = 8, .tlvs = tlvs}, Mode::kUnauthenticated);
  // received with DSCP 10 (AF11) and ECN 2
  const Reflection out = MustReflect(r, req, static_cast<uint8_t>(10 << 2 | 2));
  EXPECT_EQ(out.reply.size(), req.size());  // symmetric
  EXPECT_EQ(out.dscp, 46);
  const auto reply = Parse(out);
  const auto& got = reply.tlvs;
  ASSERT_EQ(got.size(), tlvs.size() - 1) << "the sender stops at the malformed (M) one, the last";
  ASSERT_EQ(reply.trailer.size(), 5u);
  EXPECT_EQ(reply.trailer[0], kTlvFlagMalformed);
  EXPECT_EQ(got[0], tlvs[0]);
  auto cos = ClassOfService::Decode(got[1].value);
  EXPECT_EQ(cos->dscp1, 46);
  EXPECT_EQ(cos->dscp2, 10);
  EXPECT_EQ(cos->ecn, 2);
  EXPECT_EQ(cos->rp, 0);
  EXPECT_EQ(got[2].value, (std::vector<uint8_t>{kSyncNtp, kMethodSoftware, kSyncNtp, kMethodSoftware}));
  EXPECT_EQ(got[3].value, (std::vector<uint8_t>{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}));  // S-Tx, R-Rx, R-Tx
  EXPECT_EQ(got[4].flags, kTlvFlagUnrecognized);
  EXPECT_EQ(got[5].flags, kTlvFlagUnrecognized);
  EXPECT_EQ(got[6].flags, kTlvFlagUnrecognized);
  EXPECT_EQ(got[6].value, tlvs[6].value);  // echoed untouched
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(got[i].flags, 0) << i;
}

// RFC 8972 §4.6: the Access Report comes back with the Access ID and Return Code received and
// its reserved bits zeroed; an Access ID other than 1 or 2 is discarded (U). Before: every
// Access Report came back with U, as a TLV the reflector did not know.
TEST(Reflector, AccessReportIsReturnedOrDiscarded) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1});
  Tlv valid = AccessReportTlv(2, 1);
  valid.value[0] |= 0x0f;  // reserved bits the sender should not have set
  valid.value[3] = 0x55;
  const auto req = BuildSender({.seq = 1, .ssid = 1, .tlvs = {valid, AccessReportTlv(3, 2), AccessReportTlv(1, 2)}},
                               Mode::kUnauthenticated);
  const auto got = Parse(MustReflect(r, req)).tlvs;
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].flags, 0);
  EXPECT_EQ(got[0].value, (std::vector<uint8_t>{0x20, 1, 0, 0}));
  EXPECT_EQ(got[1].flags, kTlvFlagUnrecognized) << "Access ID 3 is invalid";
  EXPECT_EQ(got[1].value[0] >> 4, 3);
  EXPECT_EQ(got[2].flags, 0);
  EXPECT_EQ(got[2].value, (std::vector<uint8_t>{0x10, 2, 0, 0}));

  const auto bad = BuildSender({.seq = 2, .ssid = 1, .tlvs = {Tlv{0, kTlvAccessReport, {0x10, 1}}}}, Mode::kUnauthenticated);
  const auto pb = Parse(MustReflect(r, bad));
  ASSERT_FALSE(pb.trailer.empty());
  EXPECT_EQ(pb.trailer[0], kTlvFlagMalformed) << "length 2, not 4";
}

// RFC 8972 §4.7: a stateful reflector reports, per sender, the sequence number of the previous
// reply and when it really left; a stateless one, or one that knows of no earlier reply,
// zeros; a wrong length gets M with the Sequence Number and Timestamp zeroed. Before: U.
TEST(Reflector, FollowUpTelemetryReportsThePreviousReply) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 1, .reflector_mode = ReflectorMode::kStateful});
  r.AddSession({.ssid = 2});  // stateless
  auto ask = [](uint16_t ssid, uint32_t seq) {
    Tlv fu = FollowUpTelemetryTlv();
    fu.value.assign(16, 0xee);  // the reflector must ignore what the sender put there
    return BuildSender({.seq = seq, .ssid = ssid, .tlvs = {fu}}, Mode::kUnauthenticated);
  };
  const Reflection first = MustReflect(r, ask(1, 0));
  EXPECT_TRUE(first.follow_up);
  auto fu = Parse(first).tlvs.at(0);
  EXPECT_EQ(fu.flags, 0);
  EXPECT_EQ(fu.value, std::vector<uint8_t>(16, 0)) << "no earlier reply known";
  EXPECT_FALSE(FindFollowUp(Parse(first).tlvs));

  const uint64_t sent = kT2 + 40'000;
  r.NoteTransmit(1, kPeer, 40000, first.seq, sent);
  const Reflection second = MustReflect(r, ask(1, 1));
  const auto second_tlvs = Parse(second).tlvs;
  const auto f = FindFollowUp(second_tlvs);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->reflector_seq, first.seq);
  EXPECT_EQ(f->timestamp, EncodeTimestamp(sent, TimestampFormat::kNtp, 37));
  EXPECT_EQ(f->mode, kMethodSoftware);
  const auto& v = second_tlvs.at(0).value;
  EXPECT_EQ(std::vector<uint8_t>(v.begin() + 13, v.end()), std::vector<uint8_t>(3, 0)) << "reserved";

  // Another sender of the same SSID has its own previous reply (none yet).
  const auto other_bytes = ask(1, 0);
  ReceivedPacket other = In(other_bytes);
  other.peer_port = 40001;
  EXPECT_FALSE(FindFollowUp(Parse(std::get<Reflection>(r.Reflect(other))).tlvs));

  // Stateless: zeros even after a transmit time is known.
  const Reflection s1 = MustReflect(r, ask(2, 5));
  r.NoteTransmit(2, kPeer, 40000, s1.seq, sent);
  EXPECT_EQ(Parse(MustReflect(r, ask(2, 6))).tlvs.at(0).value, std::vector<uint8_t>(16, 0));

  // Length 12: M, and the Sequence Number and Timestamp it has zeroed.
  const auto bad = BuildSender({.seq = 3, .ssid = 1, .tlvs = {Tlv{0, kTlvFollowUpTelemetry, std::vector<uint8_t>(12, 0xee)}}},
                               Mode::kUnauthenticated);
  const auto pb = Parse(MustReflect(r, bad));
  ASSERT_EQ(pb.trailer.size(), 16u);
  EXPECT_EQ(pb.trailer[0], kTlvFlagMalformed);
  EXPECT_EQ(std::vector<uint8_t>(pb.trailer.begin() + 4, pb.trailer.end()), std::vector<uint8_t>(12, 0));
}

TEST(Reflector, DestinationNodeAddressMatchingUsIsAccepted) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 8});
  const auto req = BuildSender({.seq = 1, .ssid = 8, .tlvs = {DestinationNodeAddressTlv(kLocal)}},
                               Mode::kUnauthenticated);
  EXPECT_EQ(Parse(MustReflect(r, req)).tlvs[0].flags, 0);
}

TEST(Reflector, ReturnPathRequestWins) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 8, .return_segments = {*ParseIp("fc00:0:1::e")}});
  const std::vector<IpAddress> asked = {*ParseIp("fc00:0:2::e"), *ParseIp("fc00:0:a::5")};
  auto req = BuildSender({.seq = 1, .ssid = 8, .tlvs = {ReturnPathSrv6Tlv(asked)}}, Mode::kUnauthenticated);
  const Reflection out = MustReflect(r, req);
  EXPECT_EQ(out.return_segments, asked);
  EXPECT_EQ(Parse(out).tlvs[0].flags, 0);
  auto no_reply = BuildSender({.seq = 2, .ssid = 8, .tlvs = {ReturnPathControlCodeTlv(kControlCodeNoReply)}},
                              Mode::kUnauthenticated);
  EXPECT_EQ(std::get<DropReason>(r.Reflect(In(no_reply))), DropReason::kNoReplyRequested);
  Tlv broken{0, kTlvReturnPath, {0, kSubSrv6SegmentList, 0, 20, 1, 2}};
  auto malformed = BuildSender({.seq = 3, .ssid = 8, .tlvs = {broken}}, Mode::kUnauthenticated);
  const Reflection m = MustReflect(r, malformed);
  const auto mp = Parse(m);
  EXPECT_TRUE(mp.tlvs.empty());
  ASSERT_FALSE(mp.trailer.empty());
  EXPECT_EQ(mp.trailer[0], kTlvFlagMalformed);
  EXPECT_EQ(m.return_segments, (std::vector<IpAddress>{*ParseIp("fc00:0:1::e")}));
}

// RFC 9503: reserved Control Code bits are ignored; only the first Return Path is acted on; an
// SR-MPLS-only return path is not understood here; a return hop that would send the reply to
// nowhere, to a loopback, a link-local or multicast address or back to this reflector is
// refused. A refused or unsupported return path gets U and the reply takes the session's path.
TEST(Reflector, ReturnPathEdgeCases) {
  Reflector r(TestClock());
  const IpAddress own_path = *ParseIp("fc00:0:1::e");
  r.AddSession({.ssid = 8, .return_segments = {own_path}});
  // Reply Request with reserved bits set: a reply (before: no reply, the code was not 1 or 0 as a whole).
  auto reserved = BuildSender({.seq = 1, .ssid = 8, .tlvs = {ReturnPathControlCodeTlv(0x80000001)}}, Mode::kUnauthenticated);
  EXPECT_EQ(Parse(MustReflect(r, reserved)).tlvs[0].flags, 0);
  auto no_reply = BuildSender({.seq = 2, .ssid = 8, .tlvs = {ReturnPathControlCodeTlv(0x80000000)}}, Mode::kUnauthenticated);
  EXPECT_EQ(std::get<DropReason>(r.Reflect(In(no_reply))), DropReason::kNoReplyRequested);
  // Two Return Paths: the first wins, the second is returned with U.
  const std::vector<IpAddress> first = {*ParseIp("fc00:0:2::e")}, second = {*ParseIp("fc00:0:3::e")};
  auto two = BuildSender({.seq = 3, .ssid = 8, .tlvs = {ReturnPathSrv6Tlv(first), ReturnPathSrv6Tlv(second)}},
                         Mode::kUnauthenticated);
  Reflection out = MustReflect(r, two);
  EXPECT_EQ(out.return_segments, first);
  EXPECT_EQ(Parse(out).tlvs[1].flags, kTlvFlagUnrecognized);
  // SR-MPLS label stack only.
  Tlv mpls{0, kTlvReturnPath, {0, kSubSrMplsLabelStack, 0, 4, 0, 1, 0x01, 0xff}};
  out = MustReflect(r, BuildSender({.seq = 4, .ssid = 8, .tlvs = {mpls}}, Mode::kUnauthenticated));
  EXPECT_EQ(Parse(out).tlvs[0].flags, kTlvFlagUnrecognized);
  EXPECT_EQ(out.return_segments, std::vector<IpAddress>{own_path});
  // Hops the reflector will not take.
  for (const char* hop : {"::1", "::", "fe80::1", "ff02::1", "fc00:0:b::1", "::ffff:10.0.0.1"}) {
    const std::vector<IpAddress> bad = {*ParseIp("fc00:0:2::e"), *ParseIp(hop)};
    out = MustReflect(r, BuildSender({.seq = 5, .ssid = 8, .tlvs = {ReturnPathSrv6Tlv(bad)}}, Mode::kUnauthenticated));
    EXPECT_EQ(out.return_segments, std::vector<IpAddress>{own_path}) << hop;
    EXPECT_EQ(Parse(out).tlvs[0].flags, kTlvFlagUnrecognized) << hop;
  }
  for (const char* to : {"127.0.0.1", "224.0.0.1", "169.254.1.1", "0.0.0.0"}) {
    Tlv addr{0, kTlvReturnPath, {0, kSubReturnAddress, 0, 4}};
    const auto a = *ParseIp(to);
    addr.value.insert(addr.value.end(), a.bytes.begin(), a.bytes.begin() + 4);
    out = MustReflect(r, BuildSender({.seq = 6, .ssid = 8, .tlvs = {addr}}, Mode::kUnauthenticated));
    EXPECT_FALSE(out.reply_to) << to;
    EXPECT_EQ(Parse(out).tlvs[0].flags, kTlvFlagUnrecognized) << to;
  }
}

// RFC 8972 §4.8: in authenticated mode the TLVs are trusted only under an HMAC TLV that is
// last and verifies; otherwise every TLV comes back unprocessed with I set. Before: only the
// HMAC TLV got I, and the others were acted on.
TEST(Reflector, WithoutAGoodLastHmacTlvNoTlvIsActedOn) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 5, .mode = Mode::kAuthenticated, .key = kKey});
  const Tlv hmac{0, kTlvHmac, std::vector<uint8_t>(16, 0)};
  struct Case {
    const char* what;
    std::vector<Tlv> tlvs;
  } cases[] = {
      {"no HMAC TLV", {ClassOfServiceTlv(46)}},
      {"HMAC TLV not last", {hmac, ClassOfServiceTlv(46)}},
      {"two HMAC TLVs", {ClassOfServiceTlv(46), hmac, hmac}},
  };
  for (const auto& c : cases) {
    const auto req = BuildSender({.seq = 3, .ssid = 5, .tlvs = c.tlvs}, Mode::kAuthenticated, &kKey);
    const Reflection out = MustReflect(r, req);
    EXPECT_FALSE(out.dscp) << c.what;
    // (read without the TLV HMAC check: an HMAC TLV that is not last is not filled in)
    const auto tlvs = ParseTlvs(std::span(out.reply).subspan(kAuthenticatedLength));
    ASSERT_TRUE(tlvs) << c.what;
    ASSERT_EQ(tlvs->size(), c.tlvs.size()) << c.what;
    for (const auto& t : *tlvs) EXPECT_EQ(t.flags, kTlvFlagIntegrity | kTlvFlagUnrecognized) << c.what;  // as sent, and I
  }
  const auto good = BuildSender({.seq = 4, .ssid = 5, .tlvs = {ClassOfServiceTlv(46), hmac}}, Mode::kAuthenticated, &kKey);
  const Reflection ok = MustReflect(r, good);
  EXPECT_EQ(ok.dscp, 46);
  for (const auto& t : Parse(ok, Mode::kAuthenticated, &kKey).tlvs) EXPECT_EQ(t.flags, 0);
}

TEST(Reflector, HmacTlvFailureSetsTheIntegrityFlag) {
  Reflector r(TestClock());
  r.AddSession({.ssid = 5, .mode = Mode::kAuthenticated, .key = kKey});
  auto req = BuildSender({.seq = 3, .ssid = 5,
                          .tlvs = {ExtraPaddingTlv(4), Tlv{0, kTlvHmac, std::vector<uint8_t>(16, 0)}}},
                         Mode::kAuthenticated, &kKey);
  req[112 + 5] ^= 1;  // tamper with the padding: the base HMAC does not cover it, the TLV HMAC does
  const auto p = Parse(MustReflect(r, req), Mode::kAuthenticated, &kKey);
  EXPECT_TRUE(p.tlvs.empty()) << "the sender reads no TLV under an I flag";
  const auto tlvs = ParseTlvs(p.trailer);
  ASSERT_TRUE(tlvs);
  ASSERT_EQ(tlvs->size(), 2u);
  for (const auto& t : *tlvs) EXPECT_TRUE(t.flags & kTlvFlagIntegrity);
}

}  // namespace
}  // namespace segwan::stamp
