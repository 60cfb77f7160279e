#pragma once

// STAMP wire format: RFC 8762 (base packets, unauthenticated and authenticated modes),
// RFC 8972 (SSID, TLVs, HMAC TLV), RFC 9503 (Destination Node Address, Return Path with the
// SRv6 Segment List sub-TLV). Pure functions over bytes; shared by the user-space engine, the
// CLI, the BPF loader's tests and the controller's decoders.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <string>
#include <vector>

#include "segwan/net.h"
#include "segwan/result.h"

namespace segwan::stamp {

inline constexpr uint16_t kDefaultPort = 862;
inline constexpr size_t kUnauthenticatedLength = 44;
inline constexpr size_t kAuthenticatedLength = 112;
inline constexpr size_t kHmacLength = 16;          // HMAC-SHA-256 truncated to 128 bits
inline constexpr size_t kAuthenticatedHmacOffset = 96;  // the HMAC covers bytes 0..95

enum class Mode { kUnauthenticated, kAuthenticated };
inline size_t BaseLength(Mode m) {
  return m == Mode::kAuthenticated ? kAuthenticatedLength : kUnauthenticatedLength;
}

// ---- timestamps -------------------------------------------------------------------------
// One clock on both sides: TAI nanoseconds (CLOCK_TAI, bpf_ktime_get_tai_ns()). NTP format
// (RFC 5905, seconds since 1900 + 2^-32 fractions) is UTC, so it subtracts the TAI-UTC
// offset; PTPv2 truncated format (seconds + nanoseconds since 1970) is TAI itself.
enum class TimestampFormat { kNtp, kPtp };

inline constexpr uint64_t kNtpUnixOffsetSeconds = 2'208'988'800ULL;  // 1900 -> 1970

uint64_t EncodeTimestamp(uint64_t tai_ns, TimestampFormat f, int32_t tai_utc_offset_s);

// Big-endian writes, for patching built packets in place (sequence numbers, timestamps).
void PutBe32(uint8_t* p, uint32_t v);
void PutBe64(uint8_t* p, uint64_t v);
uint64_t DecodeTimestamp(uint64_t wire, TimestampFormat f, int32_t tai_utc_offset_s);
// A reply's three timestamps in TAI ns, each read in the format its Error Estimate's Z bit
// says (RFC 8762 §4.2.1): T2 and T3 in the reflector's; T1 in the sender's (the engines pass
// their own, rather than trust the echo). A sender and a reflector may use different formats.
struct ReplyTimes {
  uint64_t t1 = 0, t2 = 0, t3 = 0;
};
ReplyTimes DecodeReplyTimes(uint64_t t1, uint16_t sender_error_estimate, uint64_t t2, uint64_t t3,
                            uint16_t reflector_error_estimate, int32_t tai_utc_offset_s);

// Error Estimate (RFC 4656 §4.1.2, Z bit per RFC 8186): S = clock synchronised to an external
// source, Z = 0 NTP / 1 PTP format, error = multiplier * 2^(scale - 32) seconds.
struct ErrorEstimate {
  bool synchronized = false;
  TimestampFormat format = TimestampFormat::kNtp;
  uint8_t scale = 0;       // 6 bits
  uint8_t multiplier = 1;  // must not be 0
  uint16_t Encode() const;
  static ErrorEstimate Decode(uint16_t v);
  // The smallest estimate that covers `error_ns` (at least 1 ns).
  static ErrorEstimate ForError(uint64_t error_ns, bool synchronized, TimestampFormat f);
  double Seconds() const;
  bool operator==(const ErrorEstimate&) const = default;
};

// ---- TLVs (RFC 8972 §4) -----------------------------------------------------------------
enum TlvType : uint8_t {
  kTlvExtraPadding = 1,
  kTlvLocation = 2,
  kTlvTimestampInfo = 3,
  kTlvClassOfService = 4,
  kTlvDirectMeasurement = 5,
  kTlvAccessReport = 6,
  kTlvFollowUpTelemetry = 7,
  kTlvHmac = 8,
  kTlvDestinationNodeAddress = 9,
  kTlvReturnPath = 10,
};
inline constexpr uint8_t kTlvFlagUnrecognized = 0x80;  // U
inline constexpr uint8_t kTlvFlagMalformed = 0x40;     // M
inline constexpr uint8_t kTlvFlagIntegrity = 0x20;     // I: HMAC check failed
inline constexpr uint8_t kTlvFlagsDefined = kTlvFlagUnrecognized | kTlvFlagMalformed | kTlvFlagIntegrity;

// Return Path sub-TLVs (RFC 9503 §5).
enum ReturnPathSubType : uint8_t {
  kSubControlCode = 1,
  kSubReturnAddress = 2,
  kSubSrMplsLabelStack = 3,
  kSubSrv6SegmentList = 4,
};
inline constexpr uint32_t kControlCodeNoReply = 0;
inline constexpr uint32_t kControlCodeSameLink = 1;

struct Tlv {
  uint8_t flags = 0;
  uint8_t type = 0;
  std::vector<uint8_t> value;
  size_t WireSize() const { return 4 + value.size(); }
  bool operator==(const Tlv&) const = default;
};

// TLV builders for what the sender asks for.
Tlv ExtraPaddingTlv(size_t bytes);
Tlv ClassOfServiceTlv(uint8_t dscp1);
Tlv TimestampInfoTlv();
Tlv DirectMeasurementTlv(uint32_t sender_tx);
Tlv DestinationNodeAddressTlv(const IpAddress& a);
// Return Path with an SRv6 Segment List sub-TLV (segments in path order).
Tlv ReturnPathSrv6Tlv(const std::vector<IpAddress>& segments);
Tlv ReturnPathControlCodeTlv(uint32_t code);

// Access Report TLV (RFC 8972 §4.6): Access ID (1 3GPP, 2 non-3GPP; 4 bits), 4 reserved bits,
// Return Code (1 network available, 2 unavailable), 2 reserved bytes. Value 4 bytes.
inline constexpr size_t kAccessReportLength = 4;
Tlv AccessReportTlv(uint8_t access_id, uint8_t return_code);

// Follow-Up Telemetry TLV (RFC 8972 §4.7): the reflector's Sequence Number of the previous
// packet it reflected in this session, the time that packet really left (Follow-Up Timestamp,
// in the format the reply's Error Estimate Z bit says), the Timestamp Mode (the method, as in
// the Timestamp Information TLV) and 3 reserved bytes. The sender sends it zeroed.
inline constexpr size_t kFollowUpLength = 16;
Tlv FollowUpTelemetryTlv();
struct FollowUp {
  uint32_t reflector_seq = 0;
  uint64_t timestamp = 0;  // wire format
  uint8_t mode = 0;
};
// The follow-up a reply carries: a Follow-Up Telemetry TLV the reflector understood (U clear),
// of the right length, with a timestamp (zero: the reflector has none to give).
std::optional<FollowUp> FindFollowUp(const std::vector<Tlv>& reply_tlvs);

// What a Return Path TLV asks for (sub-TLVs that parse; others are left alone).
struct ReturnPathRequest {
  std::optional<uint32_t> control_code;
  std::optional<IpAddress> return_address;
  std::vector<IpAddress> srv6_segments;  // path order
  bool malformed = false;
  bool unsupported = false;  // an SR-MPLS label stack or an unknown sub-TLV
};
// Control Code flags (RFC 9503 §4.1): only the Reply Request bit is defined; the other 31 are
// reserved and ignored on receipt.
inline constexpr uint32_t kControlCodeReplyRequest = 0x1;
ReturnPathRequest ParseReturnPath(std::span<const uint8_t> value);

// Location TLV (RFC 8972 §4.2): the sender asks with sub-TLVs of zeros, the reflector answers
// in place (the TLV keeps its length): the UDP ports it saw, and for Source MAC (1) an EUI-64
// (3), for Destination IP (4) a Destination IPv4 (5) or IPv6 (6), for Source IP (7) a Source
// IPv4 (8) or IPv6 (9) address sub-TLV.
enum LocationSubType : uint8_t {
  kLocSourceMac = 1,
  kLocSourceEui48 = 2,
  kLocSourceEui64 = 3,
  kLocDestinationIp = 4,
  kLocDestinationIpv4 = 5,
  kLocDestinationIpv6 = 6,
  kLocSourceIp = 7,
  kLocSourceIpv4 = 8,
  kLocSourceIpv6 = 9,
};
Tlv LocationRequestTlv();  // asks for both addresses (and gets both ports)
struct LocationSeen {
  uint16_t destination_port = 0, source_port = 0;
  IpAddress destination, source;
};
// Fills a received Location TLV's value in place; false when it is malformed (shorter than
// its ports, or a sub-TLV that runs past it): the caller sets M. A sub-TLV this reflector
// cannot answer gets U, one of the wrong length M (and the rest are left as they are).
bool AnswerLocation(std::vector<uint8_t>& value, const LocationSeen& seen);

// Class of Service TLV fields (RFC 8972 §4.4): DSCP1 asked by the sender, DSCP2 and ECN as
// received by the reflector, RP set by the reflector when it could not use DSCP1.
struct ClassOfService {
  uint8_t dscp1 = 0, dscp2 = 0, ecn = 0, rp = 0;
  static std::optional<ClassOfService> Decode(std::span<const uint8_t> value);
  std::vector<uint8_t> Encode() const;
};

// ---- packets ----------------------------------------------------------------------------
struct SenderPacket {
  uint32_t seq = 0;
  uint64_t timestamp = 0;  // T1, wire format
  uint16_t error_estimate = 0;
  uint16_t ssid = 0;
  std::vector<Tlv> tlvs;
};

struct ReflectorPacket {
  uint32_t seq = 0;
  uint64_t timestamp = 0;  // T3
  uint16_t error_estimate = 0;
  uint16_t ssid = 0;
  uint64_t receive_timestamp = 0;  // T2
  uint32_t sender_seq = 0;
  uint64_t sender_timestamp = 0;  // T1
  uint16_t sender_error_estimate = 0;
  uint8_t sender_ttl = 0;
  std::vector<Tlv> tlvs;
  std::vector<uint8_t> trailer;  // bytes after the TLVs, sent back as they came (symmetric size)
};

// A sender's record of one reply: what the reply says beyond its timestamps (StampResult.flags).
inline constexpr uint32_t kRecordAuthenticated = 1 << 0;   // authenticated mode, HMAC verified
inline constexpr uint32_t kRecordTlvUnrecognized = 1 << 1; // a TLV came back with U
inline constexpr uint32_t kRecordTlvMalformed = 1 << 2;    // the reflector stopped at a malformed TLV (M)
inline constexpr uint32_t kRecordTlvIntegrity = 1 << 3;    // the reflector failed the TLVs' HMAC check (I)
inline constexpr uint32_t kRecordUnsynchronized = 1 << 4;  // the reflector's clock is not synchronised (S clear)
uint32_t RecordFlags(const ReflectorPacket& reply, bool authenticated);

// HMAC-SHA-256 key (RFC 8762 §4.4: established out of band per session).
using Key = std::vector<uint8_t>;
std::array<uint8_t, kHmacLength> Hmac(const Key& key, std::span<const uint8_t> data);

// Builders. In authenticated mode `key` is required; the base HMAC is computed, and an HMAC
// TLV, if present in `tlvs`, is filled in (it must be the last TLV). BuildSender sends every
// TLV with U set and M and I clear, as RFC 8972 §4 asks of a Session-Sender: a reflector that
// understands a TLV clears U, so a U still set in the reply means "not understood".
std::vector<uint8_t> BuildSender(const SenderPacket& p, Mode mode, const Key* key = nullptr);
std::vector<uint8_t> BuildReflector(const ReflectorPacket& p, Mode mode, const Key* key = nullptr);

enum class ParseError {
  kTooShort,         // shorter than the base packet of the mode
  kTlvOverrun,       // a TLV header or value runs past the end
  kHmacMismatch,     // base HMAC does not verify (authenticated mode)
};
const char* ParseErrorName(ParseError e);

struct ParsedSender {
  SenderPacket packet;
  bool tlv_hmac_ok = true;  // false when an HMAC TLV is present and does not verify
  // RFC 8972 §4: a reflector answers a packet whose last TLV runs past its end. That TLV is
  // kept with the bytes there are (its length made to fit) and `truncated` says so; 1-3 bytes
  // after the last TLV, too few for a TLV header, are the `trailer`.
  bool truncated = false;
  std::vector<uint8_t> trailer;
};
// Parses a received test packet. Authenticated mode verifies the base HMAC with `key`. A
// last TLV that runs past the end is kept (see ParsedSender), not refused.
std::variant<ParsedSender, ParseError> ParseSender(std::span<const uint8_t> bytes, Mode mode,
                                                  const Key* key = nullptr);
// A reply's TLVs are read up to the first with M or I set (RFC 8972 §4: the sender stops
// there); the bytes from there on are the reply's `trailer`, and the TLV HMAC is then not
// checked. 1-3 bytes after the last TLV (too few for a TLV header: a reflector returns a test
// packet's such bytes as they came) are the trailer too, and the TLV HMAC is checked. Other
// TLVs that overrun are an error.
std::variant<ReflectorPacket, ParseError> ParseReflector(std::span<const uint8_t> bytes,
                                                         Mode mode, const Key* key = nullptr);

// The TLV area of a packet as it came, with `flag` set in every TLV's header (walking by their
// Length fields, as far as they go): what a reflector returns for TLVs that failed the
// integrity check (RFC 8972 §4.8).
std::vector<uint8_t> FlaggedCopy(std::span<const uint8_t> tlv_area, uint8_t flag);

// TLVs after a base packet: every TLV must fit exactly. On overrun, nothing is returned.
std::optional<std::vector<Tlv>> ParseTlvs(std::span<const uint8_t> bytes);
void AppendTlvs(std::vector<uint8_t>& out, const std::vector<Tlv>& tlvs);

}  // namespace segwan::stamp
