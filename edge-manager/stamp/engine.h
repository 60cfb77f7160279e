#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "edge-manager/stamp/packet_ring.h"
#include "edge-manager/stamp/xdp_stamp.h"
#include "edge-manager/stamp/ebpf_sender.h"
#include "edge-manager/stamp/reflector.h"
#include "edge-manager/stamp/udp.h"

namespace segwan::stamp {

inline constexpr size_t kDefaultResultQueue = 65'536;

enum class EbpfUse { kWhereAvailable, kNever, kRequired };

// One measurement, as the sender's collector records it (all times TAI ns).
struct Record {
  uint16_t ssid = 0;
  uint32_t sender_seq = 0, reflector_seq = 0;
  uint64_t t1 = 0, t2 = 0, t3 = 0, t4 = 0;
  uint8_t sender_ttl = 0;
  uint32_t flags = 0;  // kRecord* bits (wire.h)
  // When the reply really left the reflector, from the Follow-Up Telemetry TLV of the next
  // reply (RFC 8972 §4.7), in TAI ns; 0: not known. t3 stays what the reply said.
  uint64_t t3_follow_up = 0;
};

struct SenderSessionConfig {
  uint16_t ssid = 0;
  IpAddress source, peer;
  uint16_t reflector_port = kDefaultPort;
  std::vector<IpAddress> segments;        // direct path waypoints
  std::vector<IpAddress> return_request;  // asked for with a Return Path TLV (RFC 9503)
  uint32_t interval_ms = 1000;
  uint64_t packet_count = 0;  // 0 = until stopped
  uint64_t duration_ms = 0;   // 0 = until stopped
  Mode mode = Mode::kUnauthenticated;
  Key key;
  TimestampFormat format = TimestampFormat::kNtp;
  uint32_t padding = 0;
  // Ask for Follow-Up Telemetry (RFC 8972 §4.7): each record waits for the next reply, which
  // says when the reflector really sent it (replies are then read from the socket, not XDP).
  bool follow_up = false;
  // Replies with SSID 0 come from reflectors that know no SSID (RFC 8762 only): taken unless
  // refused. They arrive on the session's own socket, so they cannot belong to another one.
  bool accept_zero_ssid = true;
  // T1 at TC egress and T4 in the XDP collector: where they can, never (sockets only), or
  // required (AddSenderSession fails, changing nothing, when the collector cannot take it).
  EbpfUse ebpf = EbpfUse::kWhereAvailable;
};

// The most sessions one edge runs: reflector sessions as the XDP reflector's table holds,
// sender sessions as sockets and the worker reasonably serve.
inline constexpr size_t kMaxReflectorSessions = STAMP_MAX_SESSIONS;
inline constexpr size_t kMaxSenderSessions = 1024;

// The user-space STAMP engine of an edge: reflector sessions served on one socket per STAMP
// address, sender sessions each with a socket of their own, one worker thread. Thread-safe.
class UserspaceEngine {
 public:
  // With `packet_rings`, reflector ports also get an AF_PACKET ring (PacketRing) for their base
  // test packets where the process may open one; the sockets serve the rest (and everything
  // where it may not). A ring taps every IPv6 packet the host receives: it costs forwarding.
  explicit UserspaceEngine(size_t result_queue = kDefaultResultQueue, bool packet_rings = false);
  ~UserspaceEngine();

  // Hands the engine an XDP reflector for the unauthenticated sessions without TLVs (it must
  // outlive the engine); the user-space sockets stay for everything else.
  // With the XDP reflector, stateful sessions it holds take their sequence numbers from its
  // counter here too, so the packets it leaves to user space do not start a second sequence.
  void UseEbpf(XdpStamp* ebpf);
  bool HasEbpf() const { return ebpf_ != nullptr; }
  // With the T1 stamper, unauthenticated sender sessions get T1 at TC egress.
  void UseEbpfSender(EbpfSender* s) { ebpf_sender_ = s; }
  // Reflector role: listen on address:port (idempotent for the same pair) and, with the XDP
  // reflector, attach it to `interfaces`.
  Status InitReflector(const IpAddress& address, uint16_t port,
                       const std::vector<std::string>& interfaces = {});
  // Whether a reflector session with this configuration is answered in XDP.
  bool InXdp(const ReflectorSessionConfig& c) const { return ebpf_ && c.ebpf && XdpStamp::Fits(c); }
  // Whether a sender session's replies are collected in XDP (T4 there, records by ring buffer).
  bool SenderInXdp(uint16_t ssid) const;
  // Attaches the XDP program (reflector and collector) to `interfaces`; nothing without eBPF.
  Status AttachXdp(const std::vector<std::string>& interfaces);
  void Reset(bool sender);  // every session of that role goes (reflector: its sockets too)

  Status AddReflectorSession(const ReflectorSessionConfig& c);
  // Reflects test packets of any SSID with this template (segwan-stamp reflect): never in XDP.
  void AcceptAnyReflectorSession(const ReflectorSessionConfig& templ);
  Status AddSenderSession(const SenderSessionConfig& c);
  Status Start(bool sender, uint16_t ssid);
  Status Stop(bool sender, uint16_t ssid);
  Status Destroy(bool sender, uint16_t ssid);
  bool Has(bool sender, uint16_t ssid) const;

  struct Results {
    std::vector<Record> records;
    uint64_t dropped = 0;  // for lack of room since the last call
    uint64_t sent = 0;
    bool running = false;
  };
  // What the reflectors did with packets they did not answer, and what XDP did with every
  // packet to a STAMP port: ("userspace:unknown-session", n), ("xdp:redirect-reflected", n)...
  std::vector<std::pair<std::string, uint64_t>> Counters() const;

  // Returns and removes up to `max` buffered records (0 = all), oldest first.
  Result<Results> TakeResults(uint16_t ssid, size_t max);
  // The same for every sender session at once (one lock, one drain of the XDP ring).
  std::vector<std::pair<uint16_t, Results>> TakeAllResults();

 private:
  struct Sender {
    SenderSessionConfig config;
    StampSocket socket;
    SenderPacket proto;  // the session's test packet
    // Unauthenticated: its bytes, built once; each interval only the sequence number and T1
    // are written into them (authenticated packets are rebuilt: the HMAC covers both).
    std::vector<uint8_t> wire;
    bool running = false;
    uint64_t sent = 0;
    int64_t next_ns = 0, stop_at_ns = 0;
    std::deque<Record> queue;
    uint64_t dropped = 0;
    uint16_t collected_port = 0;  // non-zero: replies collected in XDP on this port
    uint64_t ring_full_seen = 0;  // the collector's ring-full count already added to `dropped`
    // Follow-up: the last record, held until the next reply's follow-up or until `held_until`.
    std::optional<Record> held;
    int64_t held_until = 0;
  };
  struct ReflectorSocket {
    IpAddress address;
    uint16_t port;
    StampSocket socket;
  };
  void Run();
  void ServeReflector(ReflectorSocket& s);
  void ServeRing(PacketRing& ring);
  // Sends a reflection through a listener's UDP socket (T3 written just before).
  void ReplyBySocket(StampSocket& socket, Reflection& refl, const IpAddress& to, uint16_t to_port);
  ReflectorSocket* ListenerFor(const IpAddress& address, uint16_t port);
  SenderPacket Prototype(const SenderSessionConfig& c) const;
  // Reads the clock's synchronisation (every kClockCheckNs) and, when it changed, puts it in
  // every Error Estimate and Timestamp Information TLV from then on (both engines).
  void RefreshClock(int64_t now);
  void SendDue(Sender& s, int64_t now);
  void Collect(Sender& s);
  void Hold(Sender& s, const Record& r, const std::optional<FollowUp>& f, uint16_t reflector_ee);
  void ReleaseHeld(Sender& s, int64_t now);  // a held record whose follow-up is overdue
  void Enqueue(Sender& s, const Record& r);
  void DrainXdp();  // records the XDP collector has waiting, into their sessions' queues
  Results Take(Sender& s, size_t max);  // under mu_, after DrainXdp
  void ForgetSender(const Sender& s);  // out of the eBPF programs' maps

  XdpStamp* ebpf_ = nullptr;
  EbpfSender* ebpf_sender_ = nullptr;
  const size_t queue_limit_;
  const int32_t tai_offset_;
  Reflector reflector_;
  ClockSync clock_;             // under mu_
  int64_t clock_checked_ = 0;   // MonoNs of the last check
  struct ReflectorEntry {
    ReflectorSessionConfig config;
    bool active = false;  // started: answered by reflector_ (and XDP when it fits)
  };
  std::map<uint16_t, ReflectorEntry> reflector_sessions_;
  mutable std::mutex mu_;  // guards senders_, reflector_sockets_, reflector_sessions_
  std::map<uint16_t, std::unique_ptr<Sender>> senders_;
  std::vector<std::unique_ptr<ReflectorSocket>> reflector_sockets_;
  const bool use_rings_;
  std::map<uint16_t, std::unique_ptr<PacketRing>> rings_;  // by port
  struct RingCounters {
    uint64_t reflected = 0, by_socket = 0, refused = 0 /* a bad checksum, or what IPv6 input refuses */, not_listener = 0, send_errors = 0, kernel_drops = 0;
  } mutable ring_counters_;
  struct SenderCounters {
    uint64_t from_elsewhere = 0;  // replies to a sender's socket from another address or port
  } sender_counters_;
  std::atomic<bool> stop_{false};
  int wake_[2] = {-1, -1};  // pipe that interrupts the worker's poll after a change
  std::thread worker_;
};

}  // namespace segwan::stamp
