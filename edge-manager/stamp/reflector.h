#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "edge-manager/stamp/wire.h"

namespace segwan::stamp {

enum class ReflectorMode { kStateless, kStateful };

// Timestamp Information TLV codes (RFC 8972 §4.3, IANA registries).
enum SyncSource : uint8_t { kSyncNtp = 1, kSyncPtp = 2, kSyncFreeRunning = 5 };
enum TimestampMethod : uint8_t { kMethodHardware = 1, kMethodSoftware = 2, kMethodControlPlane = 3 };

// One reflector-side session, as CreateStampSession configured it.
struct ReflectorSessionConfig {
  uint16_t ssid = 0;
  Mode mode = Mode::kUnauthenticated;
  Key key;  // authenticated mode
  ReflectorMode reflector_mode = ReflectorMode::kStateless;
  TimestampFormat format = TimestampFormat::kNtp;
  std::vector<IpAddress> return_segments;  // the return SID list (may be empty)
  std::optional<IpAddress> local;          // the STAMP address it is reached at (none: any)
  uint16_t port = kDefaultPort;            // and the UDP port
  bool ebpf = true;                        // may be answered in XDP (false: user space only)
};

// Why a packet was not reflected: named, counted, exported.
enum class DropReason {
  kTooShort,
  kHmacMismatch,
  kUnknownSession,
  kNoReplyRequested,  // RFC 9503 Control Code "no reply"
  kCount
};
const char* DropReasonName(DropReason r);

struct ReceivedPacket {
  std::span<const uint8_t> payload;  // UDP payload
  uint64_t t2_tai_ns = 0;            // as early as possible
  uint8_t hop_limit = 0;             // of the received IP header
  uint8_t traffic_class = 0;         // DSCP << 2 | ECN of the received IP header
  IpAddress local_address;           // the address it was sent to
  uint16_t local_port = 0;           // and the UDP port
  IpAddress peer_address;            // the address it came from
  uint16_t peer_port = 0;            // and the UDP port
};

struct Reflection {
  std::vector<uint8_t> reply;              // T3 still to be written with PatchT3
  std::vector<IpAddress> return_segments;  // SRH of the reply (RFC 9503 request wins)
  std::optional<IpAddress> reply_to;       // RFC 9503 Return Address
  std::optional<uint8_t> dscp;             // Class of Service DSCP1
  uint16_t ssid = 0;
  Mode mode = Mode::kUnauthenticated;  // the session's: how to write T3 (PatchT3)
  TimestampFormat format = TimestampFormat::kNtp;
  Key key;                 // authenticated mode only
  uint32_t seq = 0;        // the reflector's Sequence Number in the reply
  bool follow_up = false;  // asked for Follow-Up Telemetry: tell NoteTransmit when it really left
};

// Writes T3 into a reply as late as possible (and recomputes the HMACs that cover it).
void PatchT3(std::vector<uint8_t>& reply, Mode mode, uint64_t t3_wire, const Key* key);

// The reflector's sessions and logic, independent of how packets arrive. Thread-safe.
class Reflector {
 public:
  struct Clock {
    int32_t tai_utc_offset_s = 0;
    bool synchronized = false;
    SyncSource sync_source = kSyncFreeRunning;
    TimestampMethod method = kMethodSoftware;
    uint64_t error_ns = 1000;
  };
  explicit Reflector(Clock clock) { SetClock(clock); }
  static constexpr size_t kMaxPeers = 64;  // senders kept per SSID (see Session)
  // Sessions AcceptAnySession makes on first sight, at most: past that the least recently
  // seen of them is forgotten (anyone can send any SSID; configured sessions are never
  // forgotten). With kMaxPeers, what strangers can make a reflector keep stays bounded.
  static constexpr size_t kMaxSessionsOnFirstSight = 1024;

  void AddSession(const ReflectorSessionConfig& s);
  // Reflects packets of any SSID with this template (a session is made per SSID on first
  // sight). For a reflector run by hand; the agent configures its sessions one by one.
  void AcceptAnySession(const ReflectorSessionConfig& templ);
  bool RemoveSession(uint16_t ssid);
  void Clear();
  void SetClock(Clock c);
  // Where stateful sessions take their sequence numbers when another path (the XDP reflector)
  // answers the same session: the next number when this sender owns the shared counter, or
  // nothing to use this reflector's own for that sender.
  using SharedSequence = std::function<std::optional<uint32_t>(uint16_t ssid, const IpAddress& sender, uint16_t port)>;
  void SetSharedSequence(SharedSequence next);

  // The SSID is read from the packet; both modes are tried in the session's mode only.
  std::variant<Reflection, DropReason> Reflect(const ReceivedPacket& in);
  // The reply with `reflector_seq` to this sender left at `tx_tai_ns` (the kernel's transmit
  // timestamp): what the next Follow-Up Telemetry TLV of that sender reports (RFC 8972 §4.7).
  void NoteTransmit(uint16_t ssid, const IpAddress& peer, uint16_t peer_port, uint32_t reflector_seq,
                    uint64_t tx_tai_ns);

  uint64_t drops(DropReason r) const;
  struct Counters {
    uint64_t received = 0, reflected = 0;
  };
  std::optional<Counters> SessionCounters(uint16_t ssid) const;

 private:
  // RFC 8972 §3: a session is its SSID with the addresses and ports. Each sender seen with a
  // session's SSID has its own stateful sequence and counters (two senders that pick the same
  // SSID no longer share one); the first is the session's owner, the one whose sequence the
  // XDP path shares. At most kMaxPeers per session: past that the least recently seen other
  // sender's state is forgotten.
  struct Peer {
    IpAddress address;
    uint16_t port = 0;
    auto operator<=>(const Peer&) const = default;
  };
  struct PeerState {
    uint32_t next_seq = 0;
    Counters counters;
    uint64_t last_seen = 0;  // a tick of this reflector
    // The last reply whose transmit time is known (Follow-Up Telemetry); 0: none.
    uint32_t sent_seq = 0;
    uint64_t sent_tai_ns = 0;
  };
  struct Session {
    ReflectorSessionConfig config;
    bool first_sight = false;  // made by AcceptAnySession's template
    uint64_t last_seen = 0;    // a tick of this reflector
    Counters counters;  // all of its senders
    std::optional<Peer> owner;
    std::map<Peer, PeerState> peers;
  };
  PeerState& PeerOf(Session& s, const Peer& p);  // locked: mu_
  std::optional<DropReason> ProcessTlvs(const ParsedSender& sp, const ReceivedPacket& in,
                                        const ReflectorSessionConfig& cfg, const PeerState& peer,
                                        ReflectorPacket* r, Reflection* out) const;  // locked: mu_
  mutable std::mutex mu_;  // guards sessions_, clock_ and drops_
  std::map<uint16_t, Session> sessions_;
  std::optional<ReflectorSessionConfig> any_;
  SharedSequence shared_seq_;
  Clock clock_;
  uint16_t error_estimate_[2] = {};  // encoded from clock_, NTP and PTP: not per packet
  uint64_t tick_ = 0;
  uint64_t drops_[static_cast<int>(DropReason::kCount)] = {};
};

// SSID of a received test packet, or nothing when it is too short for `mode`.
std::optional<uint16_t> PeekSsid(std::span<const uint8_t> payload, Mode mode);

}  // namespace segwan::stamp
