#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "edge-manager/stamp/reflector.h"
#include "segwan/result.h"
#include "segwan_stamp.h"

struct stamp_reflector;  // the skeleton

namespace segwan::stamp {

// The XDP STAMP reflector (bpf/stamp_reflector.bpf.c), loaded and attached. Neither copyable
// nor movable; destroying it detaches it from every interface and unloads it. Thread-safe.
// It reflects unauthenticated sessions without TLVs; everything else goes up the stack to the
// user-space engine, which keeps listening on the same addresses.
class EbpfReflector {
 public:
  static Result<std::unique_ptr<EbpfReflector>> Load();
  ~EbpfReflector();
  EbpfReflector(const EbpfReflector&) = delete;
  EbpfReflector& operator=(const EbpfReflector&) = delete;

  Status Attach(const std::string& ifname);  // native XDP, generic if the driver has none
  Status AddListener(const IpAddress& address, uint16_t port);
  // Only unauthenticated sessions with at most STAMP_MAX_SEGS return SIDs fit the fast path.
  static bool Fits(const ReflectorSessionConfig& c);
  Status SetSession(const ReflectorSessionConfig& c, const IpAddress& address, uint16_t port);
  void RemoveSession(uint16_t ssid);
  // The next reflector sequence number of a stateful session that lives here, taken from the
  // counter the XDP program uses (so both paths number one sequence); nothing if the session
  // is not in XDP.
  std::optional<uint32_t> NextSeq(uint16_t ssid);
  void SetTaiUtcOffset(int32_t seconds);
  // Verdict counters by name ("redirect-reflected", ...), summed over CPUs.
  std::vector<std::pair<std::string, uint64_t>> Reasons() const;

 private:
  explicit EbpfReflector(stamp_reflector* skel);
  stamp_reflector* skel_;
  stamp_reflector_session* sessions_map_ = nullptr;  // the mmapped session array
  size_t sessions_map_len_ = 0;
  mutable std::mutex mu_;  // guards everything below and the maps' consistency
  std::map<int, std::string> attached_;  // ifindex -> name
  std::map<int, uint32_t> attach_flags_;
  std::map<uint16_t, uint32_t> slots_;  // ssid -> slot
  std::set<uint32_t> free_slots_;
};

}  // namespace segwan::stamp
