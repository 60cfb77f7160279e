// STAMP wire codec against packets written by hand from the RFC figures (RFC 8762 §4.2-4.3,
// RFC 8972 §3-4, RFC 9503 §5). Reference HMACs come from the openssl command line.
#include "edge-manager/stamp/wire.h"

#include <gtest/gtest.h>

namespace segwan::stamp {
namespace {

std::vector<uint8_t> Hex(std::string s) {
  std::vector<uint8_t> out;
  std::string clean;
  for (char c : s) {
    if (std::isxdigit(static_cast<unsigned char>(c))) clean += c;
  }
  for (size_t i = 0; i + 1 < clean.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(clean.substr(i, 2), nullptr, 16)));
  }
  return out;
}

constexpr uint64_t kNtpT = 0xe8fe6f80'80000000ULL;  // 2023-11-14T22:13:20.5Z
const Key kKey = {'s', 'e', 'g', 'w', 'a', 'n', '-', 't', 'e', 's', 't', '-', 'k', 'e', 'y', '!'};

TEST(StampTimestamp, NtpIsUtcSince1900) {
  const uint64_t tai_ns = (1'700'000'000ULL + 37) * 1'000'000'000ULL + 500'000'000ULL;
  EXPECT_EQ(EncodeTimestamp(tai_ns, TimestampFormat::kNtp, 37), kNtpT);
  EXPECT_EQ(DecodeTimestamp(kNtpT, TimestampFormat::kNtp, 37), tai_ns);
}

TEST(StampTimestamp, PtpIsTaiSince1970) {
  const uint64_t tai_ns = 1'700'000'037ULL * 1'000'000'000ULL + 123;
  EXPECT_EQ(EncodeTimestamp(tai_ns, TimestampFormat::kPtp, 37), 0x6553f125'0000007bULL);
  EXPECT_EQ(DecodeTimestamp(0x6553f125'0000007bULL, TimestampFormat::kPtp, 37), tai_ns);
}

TEST(StampTimestamp, NtpRoundTripsNanosecondsAcrossASecond) {  // ~1000 samples
  const uint64_t base = 1'800'000'000ULL * 1'000'000'000ULL;
  for (uint64_t ns = 0; ns < 1'000'000'000ULL; ns += 999'983) {  // a prime stride
    EXPECT_EQ(DecodeTimestamp(EncodeTimestamp(base + ns, TimestampFormat::kNtp, 37),
                              TimestampFormat::kNtp, 37),
              base + ns);
  }
}

TEST(StampTimestamp, NtpEraOneAfter2036) {
  // 2040-01-01T00:00:00Z: the NTP seconds field has wrapped.
  const uint64_t tai_ns = 2'208'988'800ULL * 1'000'000'000ULL;
  const uint64_t wire = EncodeTimestamp(tai_ns, TimestampFormat::kNtp, 0);
  EXPECT_LT(wire >> 32, kNtpUnixOffsetSeconds);
  EXPECT_EQ(DecodeTimestamp(wire, TimestampFormat::kNtp, 0), tai_ns);
}

TEST(StampErrorEstimate, BitsAndSmallestCover) {
  // S=1 Z=0 scale=5 multiplier=135: 135 * 2^-27 s = 1.006 us, the smallest cover of 1 us
  const ErrorEstimate e = ErrorEstimate::ForError(1000, true, TimestampFormat::kNtp);
  EXPECT_EQ(e.Encode(), 0x8587);
  EXPECT_GE(e.Seconds(), 1e-6);
  EXPECT_LT(e.Seconds(), 1.01e-6);
  EXPECT_EQ(ErrorEstimate::Decode(0x8587), e);
  const ErrorEstimate p = ErrorEstimate::ForError(1000, false, TimestampFormat::kPtp);
  EXPECT_EQ(p.Encode(), 0x4587);  // Z bit for PTP, no S
  EXPECT_NE(ErrorEstimate::ForError(0, false, TimestampFormat::kNtp).multiplier, 0);
}

TEST(StampWire, UnauthenticatedSenderMatchesRfc8762Figure) {
  const auto want = Hex(
      "00000007"                  // Sequence Number
      "e8fe6f80 80000000"         // Timestamp (NTP)
      "8587"                      // Error Estimate: S=1, scale 5, multiplier 135
      "0a0b"                      // SSID (RFC 8972)
      "00000000 00000000 00000000 00000000 00000000 00000000 00000000");  // MBZ 28
  ASSERT_EQ(want.size(), kUnauthenticatedLength);
  SenderPacket p{.seq = 7, .timestamp = kNtpT, .error_estimate = 0x8587, .ssid = 0x0a0b};
  EXPECT_EQ(BuildSender(p, Mode::kUnauthenticated), want);
  auto parsed = ParseSender(want, Mode::kUnauthenticated);
  ASSERT_TRUE(std::holds_alternative<ParsedSender>(parsed));
  const auto& got = std::get<ParsedSender>(parsed).packet;
  EXPECT_EQ(got.seq, 7u);
  EXPECT_EQ(got.timestamp, kNtpT);
  EXPECT_EQ(got.error_estimate, 0x8587);
  EXPECT_EQ(got.ssid, 0x0a0b);
  EXPECT_TRUE(got.tlvs.empty());
}

TEST(StampWire, AuthenticatedSenderMatchesRfc8762FigureAndOpensslHmac) {
  const auto want = Hex(
      "00000007"                              // Sequence Number
      "00000000 00000000 00000000"            // MBZ 12
      "e8fe6f80 80000000"                     // Timestamp
      "8587 0a0b"                             // Error Estimate, SSID
      + std::string(68 * 2, '0') +            // MBZ 68
      "b0110d2fece0cc5a8be3c94a2926b986");    // HMAC-SHA-256 (openssl), first 16 bytes
  ASSERT_EQ(want.size(), kAuthenticatedLength);
  SenderPacket p{.seq = 7, .timestamp = kNtpT, .error_estimate = 0x8587, .ssid = 0x0a0b};
  EXPECT_EQ(BuildSender(p, Mode::kAuthenticated, &kKey), want);
  auto parsed = ParseSender(want, Mode::kAuthenticated, &kKey);
  ASSERT_TRUE(std::holds_alternative<ParsedSender>(parsed));
  EXPECT_EQ(std::get<ParsedSender>(parsed).packet.ssid, 0x0a0b);
  auto tampered = want;
  tampered[20] ^= 1;  // one bit of T1
  auto bad = ParseSender(tampered, Mode::kAuthenticated, &kKey);
  ASSERT_TRUE(std::holds_alternative<ParseError>(bad));
  EXPECT_EQ(std::get<ParseError>(bad), ParseError::kHmacMismatch);
  const Key other = {'x'};
  EXPECT_TRUE(std::holds_alternative<ParseError>(ParseSender(want, Mode::kAuthenticated, &other)));
}

TEST(StampWire, UnauthenticatedReflectorMatchesRfc8762Figure) {
  const auto want = Hex(
      "00000003"             // Sequence Number (reflector)
      "e8fe6f81 00000000"    // Timestamp T3
      "8587 0a0b"            // Error Estimate, SSID
      "e8fe6f80 c0000000"    // Receive Timestamp T2
      "00000007"             // Session-Sender Sequence Number
      "e8fe6f80 80000000"    // Session-Sender Timestamp T1
      "4001 0000"            // Session-Sender Error Estimate, MBZ
      "3d 000000");          // Ses-Sender TTL 61, MBZ
  ASSERT_EQ(want.size(), kUnauthenticatedLength);
  ReflectorPacket r{.seq = 3, .timestamp = 0xe8fe6f81'00000000ULL, .error_estimate = 0x8587,
                    .ssid = 0x0a0b, .receive_timestamp = 0xe8fe6f80'c0000000ULL, .sender_seq = 7,
                    .sender_timestamp = kNtpT, .sender_error_estimate = 0x4001, .sender_ttl = 61};
  EXPECT_EQ(BuildReflector(r, Mode::kUnauthenticated), want);
  auto parsed = ParseReflector(want, Mode::kUnauthenticated);
  ASSERT_TRUE(std::holds_alternative<ReflectorPacket>(parsed));
  const auto& got = std::get<ReflectorPacket>(parsed);
  EXPECT_EQ(got.receive_timestamp, 0xe8fe6f80'c0000000ULL);
  EXPECT_EQ(got.sender_timestamp, kNtpT);
  EXPECT_EQ(got.sender_ttl, 61);
}

TEST(StampWire, AuthenticatedReflectorLayout) {
  ReflectorPacket r{.seq = 3, .timestamp = 0x1111111122222222ULL, .error_estimate = 0x8587,
                    .ssid = 0x0a0b, .receive_timestamp = 0x3333333344444444ULL, .sender_seq = 7,
                    .sender_timestamp = 0x5555555566666666ULL, .sender_error_estimate = 0x4001,
                    .sender_ttl = 61};
  const auto b = BuildReflector(r, Mode::kAuthenticated, &kKey);
  ASSERT_EQ(b.size(), kAuthenticatedLength);
  // RFC 8762 §4.3.2: seq 0, MBZ 4-15, T3 16, EE 24, SSID 26, MBZ 28-31, T2 32, MBZ 40-47,
  // sender seq 48, MBZ 52-63, T1 64, sender EE 72, MBZ 74-79, TTL 80, MBZ 81-95, HMAC 96.
  const auto want = Hex(
      "00000003" "000000000000000000000000" "1111111122222222" "8587" "0a0b" "00000000"
      "3333333344444444" "0000000000000000" "00000007" "000000000000000000000000"
      "5555555566666666" "4001" "000000000000" "3d" "000000000000000000000000000000");
  ASSERT_EQ(want.size(), kAuthenticatedHmacOffset);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), b.begin()));
  auto parsed = ParseReflector(b, Mode::kAuthenticated, &kKey);
  ASSERT_TRUE(std::holds_alternative<ReflectorPacket>(parsed));
  EXPECT_EQ(std::get<ReflectorPacket>(parsed).sender_timestamp, 0x5555555566666666ULL);
}

TEST(StampTlv, ClassOfServiceBits) {
  // DSCP1=46 (EF), DSCP2=10 (AF11), ECN=2, RP=1: 101110 001010 10 01 -> b8 a9, reserved 0000
  ClassOfService c{46, 10, 2, 1};
  EXPECT_EQ(c.Encode(), Hex("b8a9 0000"));
  auto back = ClassOfService::Decode(Hex("b8a9 0000"));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->dscp1, 46);
  EXPECT_EQ(back->dscp2, 10);
  EXPECT_EQ(back->ecn, 2);
  EXPECT_EQ(back->rp, 1);
  EXPECT_FALSE(ClassOfService::Decode(Hex("b8a9")));
}

TEST(StampTlv, ReturnPathSrv6SegmentListMatchesRfc9503) {
  const std::vector<IpAddress> segs = {*ParseIp("fc00:0:2::e"), *ParseIp("fc00:0:a::5")};
  std::vector<uint8_t> b;
  AppendTlvs(b, {ReturnPathSrv6Tlv(segs)});
  const auto want = Hex(
      "00 0a 0024"                                 // flags, Return Path (10), length 36
      "00 04 0020"                                 // SRv6 Segment List sub-TLV (4), length 32
      "fc00 0000 0002 0000 0000 0000 0000 000e"    // fc00:0:2::e, first in path order
      "fc00 0000 000a 0000 0000 0000 0000 0005");  // fc00:0:a::5
  EXPECT_EQ(b, want);
  auto tlvs = ParseTlvs(b);
  ASSERT_TRUE(tlvs);
  const auto rp = ParseReturnPath((*tlvs)[0].value);
  EXPECT_FALSE(rp.malformed);
  EXPECT_EQ(rp.srv6_segments, segs);
  EXPECT_FALSE(rp.control_code);
  EXPECT_TRUE(ParseReturnPath(Hex("00040010 00")).malformed);          // overruns
  EXPECT_TRUE(ParseReturnPath(Hex("00040003 000000")).malformed);      // not a multiple of 16
  EXPECT_EQ(*ParseReturnPath(ReturnPathControlCodeTlv(0).value).control_code, 0u);
}

TEST(StampTlv, TlvsFollowTheBasePacket) {
  SenderPacket p{.seq = 1, .ssid = 9,
                 .tlvs = {ExtraPaddingTlv(6), ClassOfServiceTlv(46), DirectMeasurementTlv(1)}};
  const auto b = BuildSender(p, Mode::kUnauthenticated);
  ASSERT_EQ(b.size(), 44u + 10 + 8 + 16);
  // flags 0x80: U set by the sender (RFC 8972 §4)
  EXPECT_EQ(std::vector<uint8_t>(b.begin() + 44, b.begin() + 48), Hex("80010006"));
  EXPECT_EQ(std::vector<uint8_t>(b.begin() + 54, b.begin() + 58), Hex("80040004"));
  EXPECT_EQ(std::vector<uint8_t>(b.begin() + 62, b.begin() + 70), Hex("8005000c 00000001"));
  auto parsed = ParseSender(b, Mode::kUnauthenticated);
  ASSERT_TRUE(std::holds_alternative<ParsedSender>(parsed));
  auto want = p.tlvs;
  for (auto& t : want) t.flags = kTlvFlagUnrecognized;
  EXPECT_EQ(std::get<ParsedSender>(parsed).packet.tlvs, want);
}

TEST(StampTlv, HmacTlvCoversSequenceNumberAndPrecedingTlvs) {
  SenderPacket p{.seq = 0x01020304, .ssid = 9,
                 .tlvs = {ExtraPaddingTlv(4), Tlv{0, kTlvHmac, std::vector<uint8_t>(16, 0)}}};
  const auto b = BuildSender(p, Mode::kAuthenticated, &kKey);
  // independent recomputation: HMAC(key, seq || padding TLV)
  std::vector<uint8_t> text = Hex("01020304 80010004 00000000");  // the TLV as sent: U set
  const auto mac = Hmac(kKey, text);
  EXPECT_TRUE(std::equal(mac.begin(), mac.end(), b.end() - 16));
  auto ok = ParseSender(b, Mode::kAuthenticated, &kKey);
  ASSERT_TRUE(std::holds_alternative<ParsedSender>(ok));
  EXPECT_TRUE(std::get<ParsedSender>(ok).tlv_hmac_ok);
  auto tampered = b;
  tampered[112 + 4] ^= 0xff;  // a padding byte: base HMAC still fine, TLV HMAC is not
  auto bad = ParseSender(tampered, Mode::kAuthenticated, &kKey);
  ASSERT_TRUE(std::holds_alternative<ParsedSender>(bad));
  EXPECT_FALSE(std::get<ParsedSender>(bad).tlv_hmac_ok);
}

TEST(StampWire, MalformedPacketsAreErrors) {
  ReflectorPacket p{.ssid = 9, .tlvs = {ExtraPaddingTlv(8)}};
  auto b = BuildReflector(p, Mode::kUnauthenticated);
  struct Case {
    std::vector<uint8_t> bytes;
    ParseError want;
  } cases[] = {
      {std::vector<uint8_t>(b.begin(), b.begin() + 43), ParseError::kTooShort},
      {std::vector<uint8_t>(b.begin(), b.end() - 1), ParseError::kTlvOverrun},  // value cut
      {{}, ParseError::kTooShort},
  };
  for (const auto& c : cases) {
    auto r = ParseReflector(c.bytes, Mode::kUnauthenticated);
    ASSERT_TRUE(std::holds_alternative<ParseError>(r)) << c.bytes.size();
    EXPECT_EQ(std::get<ParseError>(r), c.want) << c.bytes.size();
  }
  // A header cut after 1-3 bytes is a trailer (OneToThreeBytesAfterAReplysTlvsAreItsTrailer).
  EXPECT_EQ(std::get<ReflectorPacket>(ParseReflector(std::vector<uint8_t>(b.begin(), b.begin() + 46),
                                                     Mode::kUnauthenticated)).trailer.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<ParseError>(ParseSender(std::vector<uint8_t>(43), Mode::kUnauthenticated)));
  EXPECT_TRUE(std::holds_alternative<ParseError>(ParseSender(BuildSender({.ssid = 9}, Mode::kUnauthenticated),
                                                             Mode::kAuthenticated, &kKey)));
}

// RFC 8972 §4: a reflector answers a test packet whose TLVs are cut short; it reads what is
// there (the last TLV cut to fit, or a trailer too short for a header).
TEST(StampWire, ASenderPacketCutShortIsReadAsFarAsItGoes) {
  const auto b = BuildSender({.seq = 1, .ssid = 9, .tlvs = {ExtraPaddingTlv(4), ExtraPaddingTlv(8)}}, Mode::kUnauthenticated);
  auto cut = ParseSender(std::vector<uint8_t>(b.begin(), b.end() - 3), Mode::kUnauthenticated);
  ASSERT_TRUE(std::holds_alternative<ParsedSender>(cut));
  const auto& c = std::get<ParsedSender>(cut);
  ASSERT_EQ(c.packet.tlvs.size(), 2u);
  EXPECT_TRUE(c.truncated);
  EXPECT_EQ(c.packet.tlvs[1].value.size(), 5u);
  auto tail = ParseSender(std::vector<uint8_t>(b.begin(), b.begin() + 44 + 8 + 2), Mode::kUnauthenticated);
  const auto& t = std::get<ParsedSender>(tail);
  ASSERT_EQ(t.packet.tlvs.size(), 1u);
  EXPECT_FALSE(t.truncated);
  EXPECT_EQ(t.trailer.size(), 2u);
  // RFC 8972 §4: a Session-Sender sends U set, M and I clear.
  const auto whole = ParseSender(b, Mode::kUnauthenticated);
  for (const auto& x : std::get<ParsedSender>(whole).packet.tlvs) EXPECT_EQ(x.flags, kTlvFlagUnrecognized);
}


// RFC 8762 §4.2.1: each timestamp is read in the format of the Error Estimate that covers it.
TEST(StampWire, MixedFormatsAreReadByTheirOwnZBit) {
  const uint64_t t1 = 1'700'000'000'000'000'000ULL, t2 = t1 + 12'000'000, t3 = t2 + 40'000;
  const uint16_t ntp = ErrorEstimate{.format = TimestampFormat::kNtp}.Encode();
  const uint16_t ptp = ErrorEstimate{.format = TimestampFormat::kPtp}.Encode();
  for (int offset : {0, 37}) {
    // an NTP sender, a PTP reflector
    auto a = DecodeReplyTimes(EncodeTimestamp(t1, TimestampFormat::kNtp, offset), ntp,
                              EncodeTimestamp(t2, TimestampFormat::kPtp, offset),
                              EncodeTimestamp(t3, TimestampFormat::kPtp, offset), ptp, offset);
    EXPECT_NEAR(static_cast<double>(static_cast<int64_t>(a.t2 - a.t1)), 12e6, 2) << offset;
    EXPECT_EQ(a.t3 - a.t2, 40'000u);
    // a PTP sender, an NTP reflector
    auto b = DecodeReplyTimes(EncodeTimestamp(t1, TimestampFormat::kPtp, offset), ptp,
                              EncodeTimestamp(t2, TimestampFormat::kNtp, offset),
                              EncodeTimestamp(t3, TimestampFormat::kNtp, offset), ntp, offset);
    EXPECT_NEAR(static_cast<double>(static_cast<int64_t>(b.t2 - b.t1)), 12e6, 2) << offset;
    EXPECT_NEAR(static_cast<double>(static_cast<int64_t>(b.t3 - b.t2)), 40e3, 2);
  }
}

// What a sender records of a reply beyond its timestamps: the reflector's unsynchronised clock
// (RFC 4656 §4.1.2 S bit) and the TLV flags that stopped its reading (RFC 8972 §4).
TEST(StampWire, RecordFlagsSayWhatTheReplySaid) {
  ReflectorPacket r{.error_estimate = ErrorEstimate{.synchronized = true}.Encode()};
  EXPECT_EQ(RecordFlags(r, false), 0u);
  EXPECT_EQ(RecordFlags(r, true), kRecordAuthenticated);
  r.error_estimate = ErrorEstimate{.synchronized = false}.Encode();
  EXPECT_EQ(RecordFlags(r, false), kRecordUnsynchronized);
  r.error_estimate = ErrorEstimate{.synchronized = true}.Encode();
  r.tlvs = {Tlv{kTlvFlagUnrecognized, 200, {}}};
  r.trailer = {kTlvFlagMalformed, 4, 0, 0};
  EXPECT_EQ(RecordFlags(r, false), kRecordTlvUnrecognized | kRecordTlvMalformed);
  r.trailer[0] = kTlvFlagIntegrity;
  EXPECT_EQ(RecordFlags(r, false), kRecordTlvUnrecognized | kRecordTlvIntegrity);
}

// Found by fuzz/stamp_reflector_fuzz: a test packet with 1-3 bytes after its TLVs is answered
// with them as they came, and our own sender refused that reply as an overrun.
TEST(StampWire, OneToThreeBytesAfterAReplysTlvsAreItsTrailer) {
  ReflectorPacket r{.seq = 7,
                    .error_estimate = ErrorEstimate{.synchronized = true}.Encode(),
                    .tlvs = {ClassOfServiceTlv(46)},
                    .trailer = {0xab, 0xcd}};
  const auto bytes = BuildReflector(r, Mode::kUnauthenticated);
  ASSERT_EQ(bytes.size(), kUnauthenticatedLength + 8 + 2);
  auto parsed = ParseReflector(bytes, Mode::kUnauthenticated);
  ASSERT_TRUE(std::holds_alternative<ReflectorPacket>(parsed)) << ParseErrorName(std::get<ParseError>(parsed));
  const auto& p = std::get<ReflectorPacket>(parsed);
  EXPECT_EQ(p.seq, 7u);
  ASSERT_EQ(p.tlvs.size(), 1u);
  EXPECT_EQ(p.tlvs[0].type, kTlvClassOfService);
  EXPECT_EQ(p.trailer, (std::vector<uint8_t>{0xab, 0xcd}));
  EXPECT_EQ(RecordFlags(p, false), 0u) << "a short trailer is no M or I";

  // Four bytes or more that are no flagged TLV still overrun: here a TLV header, flags clear,
  // whose 9 bytes of value are missing.
  auto longer = bytes;
  longer.insert(longer.end(), {0, 9});
  longer[longer.size() - 4] = 0;
  longer[longer.size() - 2] = 0;
  EXPECT_EQ(std::get<ParseError>(ParseReflector(longer, Mode::kUnauthenticated)), ParseError::kTlvOverrun);
}

TEST(StampWire, AShortTrailerDoesNotExemptAReplysTlvsFromTheirHmac) {
  const Key key(32, 0x42);
  ReflectorPacket r{.seq = 7,
                    .tlvs = {ClassOfServiceTlv(46), Tlv{.type = kTlvHmac, .value = std::vector<uint8_t>(kHmacLength)}},
                    .trailer = {0xab}};
  auto bytes = BuildReflector(r, Mode::kAuthenticated, &key);
  EXPECT_TRUE(std::holds_alternative<ReflectorPacket>(ParseReflector(bytes, Mode::kAuthenticated, &key)));
  bytes[kAuthenticatedLength + 4] ^= 0x04;  // the Class of Service TLV's DSCP, covered by the TLV HMAC only
  EXPECT_EQ(std::get<ParseError>(ParseReflector(bytes, Mode::kAuthenticated, &key)), ParseError::kHmacMismatch);
}

}  // namespace
}  // namespace segwan::stamp
