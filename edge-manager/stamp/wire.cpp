#include "edge-manager/stamp/wire.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace segwan::stamp {

void PutBe32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
void PutBe64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

namespace {

constexpr uint64_t kNs = 1'000'000'000ULL;

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
uint64_t Get64(const uint8_t* p) { return uint64_t{Get32(p)} << 32 | Get32(p + 4); }

// Field offsets of the four base packet layouts.
struct SenderLayout {
  size_t seq, ts, ee, ssid;
};
constexpr SenderLayout kSenderUnauth{0, 4, 12, 14};
constexpr SenderLayout kSenderAuth{0, 16, 24, 26};
struct ReflectorLayout {
  size_t seq, ts, ee, ssid, rx, sseq, sts, see, ttl;
};
constexpr ReflectorLayout kReflectorUnauth{0, 4, 12, 14, 16, 24, 28, 36, 40};
constexpr ReflectorLayout kReflectorAuth{0, 16, 24, 26, 32, 48, 64, 72, 80};

// HMAC TLV (RFC 8972 §4.8): over the base packet's Sequence Number and every TLV before it.
void FillTlvHmac(std::vector<uint8_t>& pkt, size_t base_len, const Key& key) {
  size_t off = base_len;
  while (off + 4 <= pkt.size()) {
    const size_t len = Get16(&pkt[off + 2]);
    if (pkt[off + 1] == kTlvHmac && len == kHmacLength && off + 4 + len == pkt.size()) {
      std::vector<uint8_t> text(pkt.begin(), pkt.begin() + 4);
      text.insert(text.end(), pkt.begin() + static_cast<long>(base_len), pkt.begin() + static_cast<long>(off));
      const auto mac = Hmac(key, text);
      std::memcpy(&pkt[off + 4], mac.data(), kHmacLength);
      return;
    }
    off += 4 + len;
  }
}

bool VerifyTlvHmac(std::span<const uint8_t> pkt, size_t base_len, const std::vector<Tlv>& tlvs,
                   const Key& key) {
  size_t off = base_len;
  for (const auto& t : tlvs) {
    if (t.type == kTlvHmac) {
      if (t.value.size() != kHmacLength) return false;
      std::vector<uint8_t> text(pkt.begin(), pkt.begin() + 4);
      text.insert(text.end(), pkt.begin() + static_cast<long>(base_len), pkt.begin() + static_cast<long>(off));
      const auto mac = Hmac(key, text);
      return CRYPTO_memcmp(mac.data(), t.value.data(), kHmacLength) == 0;
    }
    off += t.WireSize();
  }
  return true;
}

bool BaseHmacOk(std::span<const uint8_t> pkt, const Key* key) {
  if (!key) return false;
  const auto mac = Hmac(*key, pkt.subspan(0, kAuthenticatedHmacOffset));
  return CRYPTO_memcmp(mac.data(), pkt.data() + kAuthenticatedHmacOffset, kHmacLength) == 0;
}

}  // namespace

// ---- timestamps -------------------------------------------------------------------------

uint64_t EncodeTimestamp(uint64_t tai_ns, TimestampFormat f, int32_t tai_utc_offset_s) {
  if (f == TimestampFormat::kPtp) {
    return (tai_ns / kNs) << 32 | (tai_ns % kNs);
  }
  const uint64_t utc_ns = tai_ns - static_cast<uint64_t>(static_cast<int64_t>(tai_utc_offset_s)) * kNs;
  const uint64_t sec = (utc_ns / kNs + kNtpUnixOffsetSeconds) & 0xffffffffULL;
  const uint64_t frac = ((utc_ns % kNs) << 32) / kNs;
  return sec << 32 | frac;
}

uint64_t DecodeTimestamp(uint64_t wire, TimestampFormat f, int32_t tai_utc_offset_s) {
  const uint64_t hi = wire >> 32, lo = wire & 0xffffffffULL;
  if (f == TimestampFormat::kPtp) return hi * kNs + lo;
  // NTP era 0 ends in 2036; seconds below the 1970 mark belong to era 1.
  const uint64_t unix_sec = hi >= kNtpUnixOffsetSeconds ? hi - kNtpUnixOffsetSeconds
                                                         : hi + (1ULL << 32) - kNtpUnixOffsetSeconds;
  const uint64_t ns = (lo * kNs + (1ULL << 31)) >> 32;
  return unix_sec * kNs + ns + static_cast<uint64_t>(static_cast<int64_t>(tai_utc_offset_s)) * kNs;
}

ReplyTimes DecodeReplyTimes(uint64_t t1, uint16_t sender_error_estimate, uint64_t t2, uint64_t t3,
                            uint16_t reflector_error_estimate, int32_t tai_utc_offset_s) {
  const auto sender = ErrorEstimate::Decode(sender_error_estimate).format;
  const auto reflector = ErrorEstimate::Decode(reflector_error_estimate).format;
  return {DecodeTimestamp(t1, sender, tai_utc_offset_s), DecodeTimestamp(t2, reflector, tai_utc_offset_s),
          DecodeTimestamp(t3, reflector, tai_utc_offset_s)};
}

uint16_t ErrorEstimate::Encode() const {
  return static_cast<uint16_t>((synchronized ? 0x8000 : 0) |
                               (format == TimestampFormat::kPtp ? 0x4000 : 0) |
                               (scale & 0x3f) << 8 | multiplier);
}

ErrorEstimate ErrorEstimate::Decode(uint16_t v) {
  return {.synchronized = (v & 0x8000) != 0,
          .format = (v & 0x4000) ? TimestampFormat::kPtp : TimestampFormat::kNtp,
          .scale = static_cast<uint8_t>((v >> 8) & 0x3f),
          .multiplier = static_cast<uint8_t>(v & 0xff)};
}

ErrorEstimate ErrorEstimate::ForError(uint64_t error_ns, bool synchronized, TimestampFormat f) {
  if (error_ns == 0) error_ns = 1;
  // the error in units of 2^-32 s, rounded up
  const unsigned __int128 units = ((static_cast<unsigned __int128>(error_ns) << 32) + kNs - 1) / kNs;
  for (uint8_t scale = 0; scale < 64; ++scale) {
    const unsigned __int128 m = (units + ((static_cast<unsigned __int128>(1) << scale) - 1)) >> scale;
    if (m <= 255) {
      return {synchronized, f, scale, static_cast<uint8_t>(m == 0 ? 1 : m)};
    }
  }
  return {synchronized, f, 63, 255};
}

double ErrorEstimate::Seconds() const { return multiplier * std::ldexp(1.0, scale - 32); }

// ---- TLVs -------------------------------------------------------------------------------

Tlv ExtraPaddingTlv(size_t bytes) { return Tlv{0, kTlvExtraPadding, std::vector<uint8_t>(bytes, 0)}; }

Tlv ClassOfServiceTlv(uint8_t dscp1) {
  return Tlv{0, kTlvClassOfService, ClassOfService{.dscp1 = dscp1}.Encode()};
}

Tlv TimestampInfoTlv() { return Tlv{0, kTlvTimestampInfo, std::vector<uint8_t>(4, 0)}; }

Tlv DirectMeasurementTlv(uint32_t sender_tx) {
  std::vector<uint8_t> v(12, 0);
  PutBe32(v.data(), sender_tx);
  return Tlv{0, kTlvDirectMeasurement, v};
}

Tlv AccessReportTlv(uint8_t access_id, uint8_t return_code) {
  return Tlv{0, kTlvAccessReport, {static_cast<uint8_t>(access_id << 4), return_code, 0, 0}};
}

Tlv FollowUpTelemetryTlv() { return Tlv{0, kTlvFollowUpTelemetry, std::vector<uint8_t>(kFollowUpLength, 0)}; }

std::optional<FollowUp> FindFollowUp(const std::vector<Tlv>& tlvs) {
  for (const auto& t : tlvs) {
    if (t.type != kTlvFollowUpTelemetry || (t.flags & kTlvFlagsDefined) || t.value.size() != kFollowUpLength) continue;
    FollowUp f{Get32(t.value.data()), Get64(t.value.data() + 4), t.value[12]};
    if (f.timestamp == 0) return std::nullopt;
    return f;
  }
  return std::nullopt;
}

Tlv DestinationNodeAddressTlv(const IpAddress& a) {
  return Tlv{0, kTlvDestinationNodeAddress, std::vector<uint8_t>(a.bytes.begin(), a.bytes.begin() + static_cast<long>(a.size()))};
}

static void AppendSub(std::vector<uint8_t>& v, uint8_t type, std::span<const uint8_t> value) {
  const size_t off = v.size();
  v.resize(off + 4 + value.size());
  v[off] = 0;
  v[off + 1] = type;
  Put16(&v[off + 2], static_cast<uint16_t>(value.size()));
  std::memcpy(&v[off + 4], value.data(), value.size());
}

Tlv ReturnPathSrv6Tlv(const std::vector<IpAddress>& segments) {
  std::vector<uint8_t> sids;
  for (const auto& s : segments) sids.insert(sids.end(), s.bytes.begin(), s.bytes.end());
  Tlv t{0, kTlvReturnPath, {}};
  AppendSub(t.value, kSubSrv6SegmentList, sids);
  return t;
}

Tlv ReturnPathControlCodeTlv(uint32_t code) {
  uint8_t v[4];
  PutBe32(v, code);
  Tlv t{0, kTlvReturnPath, {}};
  AppendSub(t.value, kSubControlCode, v);
  return t;
}

ReturnPathRequest ParseReturnPath(std::span<const uint8_t> value) {
  ReturnPathRequest r;
  size_t off = 0;
  while (off < value.size()) {
    if (off + 4 > value.size()) return r.malformed = true, r;
    const uint8_t type = value[off + 1];
    const size_t len = Get16(&value[off + 2]);
    if (off + 4 + len > value.size()) return r.malformed = true, r;
    const uint8_t* v = &value[off + 4];
    switch (type) {
      case kSubControlCode:
        if (len != 4) return r.malformed = true, r;
        r.control_code = Get32(v);
        break;
      case kSubReturnAddress:
        if (len != 4 && len != 16) return r.malformed = true, r;
        r.return_address = IpAddress{len == 4 ? AF_INET : AF_INET6, {}};
        std::memcpy(r.return_address->bytes.data(), v, len);
        break;
      case kSubSrv6SegmentList:
        if (len == 0 || len % 16 != 0 || len / 16 > 16) return r.malformed = true, r;
        for (size_t i = 0; i < len; i += 16) {
          IpAddress a{AF_INET6, {}};
          std::memcpy(a.bytes.data(), v + i, 16);
          r.srv6_segments.push_back(a);
        }
        break;
      default:
        r.unsupported = true;  // SR-MPLS and unknown sub-TLVs: not for an SRv6 reflector
        break;
    }
    off += 4 + len;
  }
  return r;
}

Tlv LocationRequestTlv() {
  Tlv t{0, kTlvLocation, std::vector<uint8_t>(4, 0)};  // the ports, zero
  for (uint8_t sub : {kLocDestinationIp, kLocSourceIp}) AppendSub(t.value, sub, std::vector<uint8_t>(16, 0));
  return t;
}

bool AnswerLocation(std::vector<uint8_t>& v, const LocationSeen& seen) {
  if (v.size() < 4) return false;
  Put16(&v[0], seen.destination_port);
  Put16(&v[2], seen.source_port);
  for (size_t off = 4; off < v.size();) {
    if (off + 4 > v.size()) return false;
    const size_t len = Get16(&v[off + 2]);
    if (off + 4 + len > v.size()) return false;
    uint8_t* flags = &v[off];
    uint8_t* type = &v[off + 1];
    uint8_t* value = &v[off + 4];
    auto address = [&](const IpAddress& a, uint8_t v4_type, uint8_t v6_type) {
      if (len != 16) {
        *flags = kTlvFlagMalformed;
        return false;
      }
      *flags = 0;
      *type = a.family == AF_INET ? v4_type : v6_type;
      std::memset(value, 0, 16);
      std::memcpy(value, a.bytes.data(), a.family == AF_INET ? 4 : 16);
      return true;
    };
    bool stop = false;
    switch (*type) {
      case kLocSourceMac:
        // A UDP socket does not see the frame: the EUI-64 answer, zeroed (§4.2.2).
        if (len != 8) {
          *flags = kTlvFlagMalformed;
          stop = true;
          break;
        }
        *flags = 0;
        *type = kLocSourceEui64;
        std::memset(value, 0, 8);
        break;
      case kLocDestinationIp:
        stop = !address(seen.destination, kLocDestinationIpv4, kLocDestinationIpv6);
        break;
      case kLocSourceIp:
        stop = !address(seen.source, kLocSourceIpv4, kLocSourceIpv6);
        break;
      default:
        *flags = kTlvFlagUnrecognized;
        break;
    }
    if (stop) break;  // a malformed sub-TLV: the rest as it came
    off += 4 + len;
  }
  return true;
}

std::optional<ClassOfService> ClassOfService::Decode(std::span<const uint8_t> v) {
  if (v.size() != 4) return std::nullopt;
  const uint16_t w = Get16(v.data());
  return ClassOfService{static_cast<uint8_t>(w >> 10), static_cast<uint8_t>((w >> 4) & 0x3f),
                        static_cast<uint8_t>((w >> 2) & 0x3), static_cast<uint8_t>(w & 0x3)};
}

std::vector<uint8_t> ClassOfService::Encode() const {
  std::vector<uint8_t> v(4, 0);
  Put16(v.data(), static_cast<uint16_t>((dscp1 & 0x3f) << 10 | (dscp2 & 0x3f) << 4 |
                                        (ecn & 0x3) << 2 | (rp & 0x3)));
  return v;
}

// Reads whole TLVs from `b` into `out` until the end, a TLV that does not fit, or one with
// any of `stop_flags`; returns where it stopped.
static size_t ReadTlvs(std::span<const uint8_t> b, std::vector<Tlv>* out, uint8_t stop_flags = 0) {
  size_t off = 0;
  while (off + 4 <= b.size() && !(b[off] & stop_flags)) {
    const size_t len = Get16(&b[off + 2]);
    if (off + 4 + len > b.size()) break;
    out->push_back(Tlv{b[off], b[off + 1], std::vector<uint8_t>(b.begin() + static_cast<long>(off + 4),
                                                               b.begin() + static_cast<long>(off + 4 + len))});
    off += 4 + len;
  }
  return off;
}

// The reflector's reading (RFC 8972 §4): whole TLVs, then a last one cut short (kept with
// what there is), or a trailer too short for a TLV header.
static std::vector<Tlv> ParseTlvsLenient(std::span<const uint8_t> b, bool* truncated, std::vector<uint8_t>* trailer) {
  std::vector<Tlv> out;
  const auto rest = b.subspan(ReadTlvs(b, &out));
  if (rest.size() >= 4) {
    *truncated = true;
    out.push_back(Tlv{rest[0], rest[1], std::vector<uint8_t>(rest.begin() + 4, rest.end())});
  } else {
    trailer->assign(rest.begin(), rest.end());
  }
  return out;
}

std::vector<uint8_t> FlaggedCopy(std::span<const uint8_t> area, uint8_t flag) {
  std::vector<uint8_t> out(area.begin(), area.end());
  for (size_t off = 0; off + 4 <= out.size(); off += 4 + Get16(&out[off + 2])) out[off] |= flag;
  return out;
}

std::optional<std::vector<Tlv>> ParseTlvs(std::span<const uint8_t> b) {
  std::vector<Tlv> out;
  if (ReadTlvs(b, &out) != b.size()) return std::nullopt;
  return out;
}

void AppendTlvs(std::vector<uint8_t>& out, const std::vector<Tlv>& tlvs) {
  for (const auto& t : tlvs) {
    const size_t off = out.size();
    out.resize(off + t.WireSize());
    out[off] = t.flags;
    out[off + 1] = t.type;
    Put16(&out[off + 2], static_cast<uint16_t>(t.value.size()));
    if (!t.value.empty()) std::memcpy(&out[off + 4], t.value.data(), t.value.size());
  }
}

// ---- packets ----------------------------------------------------------------------------

std::array<uint8_t, kHmacLength> Hmac(const Key& key, std::span<const uint8_t> data) {
  unsigned char full[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), full, &len);
  std::array<uint8_t, kHmacLength> out{};
  std::memcpy(out.data(), full, kHmacLength);
  return out;
}

const char* ParseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kTooShort: return "too-short";
    case ParseError::kTlvOverrun: return "tlv-overrun";
    case ParseError::kHmacMismatch: return "hmac-mismatch";
  }
  return "?";
}

// The end of both builders: the base HMAC (authenticated mode), the TLVs, the HMAC TLV.
static void Seal(std::vector<uint8_t>& out, size_t base, Mode mode, const std::vector<Tlv>& tlvs,
                 const Key* key) {
  if (mode == Mode::kAuthenticated && key) {
    const auto mac = Hmac(*key, std::span(out).subspan(0, kAuthenticatedHmacOffset));
    std::memcpy(&out[kAuthenticatedHmacOffset], mac.data(), kHmacLength);
  }
  AppendTlvs(out, tlvs);
  if (key) FillTlvHmac(out, base, *key);
}

std::vector<uint8_t> BuildSender(const SenderPacket& p, Mode mode, const Key* key) {
  const size_t base = BaseLength(mode);
  const SenderLayout& l = mode == Mode::kAuthenticated ? kSenderAuth : kSenderUnauth;
  std::vector<uint8_t> out(base, 0);
  PutBe32(&out[l.seq], p.seq);
  PutBe64(&out[l.ts], p.timestamp);
  Put16(&out[l.ee], p.error_estimate);
  Put16(&out[l.ssid], p.ssid);
  std::vector<Tlv> tlvs = p.tlvs;
  for (auto& t : tlvs) t.flags = kTlvFlagUnrecognized;  // RFC 8972 §4: U set, M and I clear
  Seal(out, base, mode, tlvs, key);
  return out;
}

std::vector<uint8_t> BuildReflector(const ReflectorPacket& p, Mode mode, const Key* key) {
  const size_t base = BaseLength(mode);
  const ReflectorLayout& l = mode == Mode::kAuthenticated ? kReflectorAuth : kReflectorUnauth;
  std::vector<uint8_t> out(base, 0);
  PutBe32(&out[l.seq], p.seq);
  PutBe64(&out[l.ts], p.timestamp);
  Put16(&out[l.ee], p.error_estimate);
  Put16(&out[l.ssid], p.ssid);
  PutBe64(&out[l.rx], p.receive_timestamp);
  PutBe32(&out[l.sseq], p.sender_seq);
  PutBe64(&out[l.sts], p.sender_timestamp);
  Put16(&out[l.see], p.sender_error_estimate);
  out[l.ttl] = p.sender_ttl;
  Seal(out, base, mode, p.tlvs, key);
  out.insert(out.end(), p.trailer.begin(), p.trailer.end());
  return out;
}

std::variant<ParsedSender, ParseError> ParseSender(std::span<const uint8_t> b, Mode mode,
                                                  const Key* key) {
  const size_t base = BaseLength(mode);
  if (b.size() < base) return ParseError::kTooShort;
  if (mode == Mode::kAuthenticated && !BaseHmacOk(b, key)) return ParseError::kHmacMismatch;
  const SenderLayout& l = mode == Mode::kAuthenticated ? kSenderAuth : kSenderUnauth;
  ParsedSender out;
  auto tlvs = ParseTlvsLenient(b.subspan(base), &out.truncated, &out.trailer);
  out.packet = SenderPacket{Get32(&b[l.seq]), Get64(&b[l.ts]), Get16(&b[l.ee]), Get16(&b[l.ssid]), std::move(tlvs)};
  if (key) out.tlv_hmac_ok = VerifyTlvHmac(b, base, out.packet.tlvs, *key);
  return out;
}

uint32_t RecordFlags(const ReflectorPacket& reply, bool authenticated) {
  uint32_t f = authenticated ? kRecordAuthenticated : 0;
  for (const auto& t : reply.tlvs) {
    if (t.flags & kTlvFlagUnrecognized) f |= kRecordTlvUnrecognized;
  }
  if (reply.trailer.size() >= 4) {  // where the sender stopped reading: the flag that made it stop
    if (reply.trailer[0] & kTlvFlagMalformed) f |= kRecordTlvMalformed;
    if (reply.trailer[0] & kTlvFlagIntegrity) f |= kRecordTlvIntegrity;
  }
  if (!ErrorEstimate::Decode(reply.error_estimate).synchronized) f |= kRecordUnsynchronized;
  return f;
}

std::variant<ReflectorPacket, ParseError> ParseReflector(std::span<const uint8_t> b, Mode mode,
                                                         const Key* key) {
  const size_t base = BaseLength(mode);
  if (b.size() < base) return ParseError::kTooShort;
  if (mode == Mode::kAuthenticated && !BaseHmacOk(b, key)) return ParseError::kHmacMismatch;
  std::vector<Tlv> tlvs;
  std::vector<uint8_t> trailer;
  const auto area = b.subspan(base);
  const auto rest = area.subspan(ReadTlvs(area, &tlvs, kTlvFlagMalformed | kTlvFlagIntegrity));
  // What follows the TLVs read: the TLV the reflector stopped at (it set M or I), or 1-3 bytes,
  // too few for a TLV header, that a reflector sends back as they came (ours does, ParseSender's
  // trailer). Anything else overruns.
  const bool stopped = rest.size() >= 4 && (rest[0] & (kTlvFlagMalformed | kTlvFlagIntegrity));
  if (rest.size() >= 4 && !stopped) return ParseError::kTlvOverrun;
  trailer.assign(rest.begin(), rest.end());
  if (key && !stopped && !VerifyTlvHmac(b, base, tlvs, *key)) return ParseError::kHmacMismatch;
  const ReflectorLayout& l = mode == Mode::kAuthenticated ? kReflectorAuth : kReflectorUnauth;
  return ReflectorPacket{Get32(&b[l.seq]),  Get64(&b[l.ts]),  Get16(&b[l.ee]),
                         Get16(&b[l.ssid]), Get64(&b[l.rx]),  Get32(&b[l.sseq]),
                         Get64(&b[l.sts]),  Get16(&b[l.see]), b[l.ttl],
                         std::move(tlvs),   std::move(trailer)};
}

}  // namespace segwan::stamp
