#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "edge-manager/stamp/reflector.h"
#include "segwan/clock.h"
#include "segwan/result.h"
#include "segwan_stamp.h"

struct stamp_xdp;  // the skeleton
struct ring_buffer;

namespace segwan::stamp {

// STAMP on XDP (bpf/stamp_xdp.bpf.c): the reflector and the sender's collector, loaded and
// attached. Neither copyable nor movable; destroying it detaches it from every interface and
// unloads it. Thread-safe.
// It reflects unauthenticated sessions without TLVs, and collects the replies to unauthenticated
// sender sessions (T4 in XDP, records through a ring buffer); everything else goes up the stack
// to the user-space engine, which keeps its sockets on the same addresses and ports.
class XdpStamp {
 public:
  static Result<std::unique_ptr<XdpStamp>> Load();
  ~XdpStamp();
  XdpStamp(const XdpStamp&) = delete;
  XdpStamp& operator=(const XdpStamp&) = delete;

  Status Attach(const std::string& ifname);  // native XDP, generic if the driver has none
  Status AddListener(const IpAddress& address, uint16_t port);
  // Only unauthenticated sessions with at most STAMP_MAX_SEGS return SIDs fit the fast path.
  static bool Fits(const ReflectorSessionConfig& c);
  Status SetSession(const ReflectorSessionConfig& c, const IpAddress& address, uint16_t port);
  void RemoveSession(uint16_t ssid);
  // The next reflector sequence number of a stateful session that lives here, taken from the
  // counter the XDP program uses (so both paths number one sequence) when `sender` (address
  // and UDP port) owns it, claiming it when nobody does yet (stamp_owned_by); nothing if the
  // session is not in XDP or another sender owns it (user space numbers that one's own).
  std::optional<uint32_t> NextSeq(uint16_t ssid, const IpAddress& sender, uint16_t sender_port);
  void SetTaiUtcOffset(int32_t seconds);
  // The Error Estimate the XDP reflector puts in its replies (S and the error), for the
  // sessions it has and the ones it will get.
  void SetClock(const ClockSync& c);

  // Collector: replies to [source]:local_port from [peer]:reflector_port with this SSID are
  // recorded; replies from anywhere else go to the socket.
  // EEXIST when another session already collects on that port.
  Status SetCollector(uint16_t ssid, const IpAddress& source, const IpAddress& peer, uint16_t local_port,
                      uint16_t reflector_port);
  void RemoveCollector(uint16_t local_port);
  // Records lost on that port for want of ring buffer room, since the collector was set.
  uint64_t RingFull(uint16_t local_port) const;
  // Pollable (POLLIN) when records are waiting.
  int RecordsFd() const;
  // Hands every waiting record to `sink`, oldest first; returns how many. One caller at a time.
  size_t DrainRecords(const std::function<void(const stamp_collect_record&)>& sink);
  // Verdict counters by name ("redirect-reflected", ...), summed over CPUs.
  std::vector<std::pair<std::string, uint64_t>> Reasons() const;

 private:
  explicit XdpStamp(stamp_xdp* skel);
  static int OnRecord(void* self, void* data, size_t len);
  stamp_xdp* skel_;
  ring_buffer* records_ = nullptr;
  const std::function<void(const stamp_collect_record&)>* sink_ = nullptr;  // during a drain
  stamp_reflector_session* sessions_map_ = nullptr;  // the mmapped session array
  size_t sessions_map_len_ = 0;
  mutable std::mutex mu_;  // guards everything below and the maps' consistency
  std::map<int, std::string> attached_;  // ifindex -> name
  std::map<int, uint32_t> attach_flags_;
  std::map<uint16_t, uint32_t> slots_;  // ssid -> slot
  ClockSync clock_;
  std::set<uint32_t> free_slots_;
};

}  // namespace segwan::stamp
