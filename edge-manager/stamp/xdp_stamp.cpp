#include "edge-manager/stamp/xdp_stamp.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <bpf/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "edge-manager/ebpf/tc_filters.h"
#include "segwan/log.h"
#include "stamp_xdp.skel.h"

namespace segwan::stamp {

static_assert(sizeof(stamp_reflector_session) == 56 + 16 * STAMP_MAX_SEGS);
static_assert(sizeof(stamp_listener_key) == 20);
static_assert(sizeof(stamp_collector_session) == 48);
static_assert(sizeof(stamp_collect_record) == 48);

Result<std::unique_ptr<XdpStamp>> XdpStamp::Load() {
  stamp_xdp* skel = stamp_xdp__open_and_load();
  if (!skel) {
    return Error{std::string("cannot load the XDP STAMP reflector: ") + std::strerror(errno), "", errno};
  }
  std::unique_ptr<XdpStamp> r(new XdpStamp(skel));
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  r->sessions_map_len_ = (sizeof(stamp_reflector_session) * STAMP_MAX_SESSIONS + page - 1) / page * page;
  void* p = mmap(nullptr, r->sessions_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED,
                 bpf_map__fd(skel->maps.stamp_sessions), 0);
  if (p == MAP_FAILED) return Error{std::string("cannot map the reflector's sessions: ") + std::strerror(errno), "", errno};
  r->sessions_map_ = static_cast<stamp_reflector_session*>(p);
  r->records_ = ring_buffer__new(bpf_map__fd(skel->maps.stamp_records), &XdpStamp::OnRecord, r.get(), nullptr);
  if (!r->records_) return Error{std::string("cannot open the collector's ring buffer: ") + std::strerror(errno), "", errno};
  return r;
}

XdpStamp::XdpStamp(stamp_xdp* skel) : skel_(skel) {
  for (uint32_t i = 0; i < STAMP_MAX_SESSIONS; ++i) free_slots_.insert(i);
}

std::optional<uint32_t> XdpStamp::NextSeq(uint16_t ssid, const IpAddress& sender, uint16_t sender_port) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(ssid);
  if (it == slots_.end() || !sessions_map_) return std::nullopt;
  stamp_reflector_session& s = sessions_map_[it->second];
  if (!(s.flags & STAMP_F_STATEFUL) || sender.family != AF_INET6) return std::nullopt;
  if (!stamp_owned_by(&s, sender.bytes.data(), htons(sender_port))) return std::nullopt;
  return __atomic_fetch_add(&s.next_seq, 1, __ATOMIC_RELAXED);
}

XdpStamp::~XdpStamp() {
  for (const auto& [ifindex, name] : attached_) {
    if (bpf_xdp_detach(ifindex, attach_flags_[ifindex], nullptr) != 0) {
      SEGWAN_LOG(kWarn, "stamp") << "could not detach the XDP reflector from " << name;
    }
  }
  if (records_) ring_buffer__free(records_);
  if (sessions_map_) munmap(sessions_map_, sessions_map_len_);
  stamp_xdp__destroy(skel_);
}

namespace {
// True when the XDP program on `ifindex` is a reflector like ours: one an agent that died
// without detaching (SIGKILL, crash) left behind. Anybody else's program is never replaced.
bool StaleReflectorOn(int ifindex, uint32_t mode) {
  uint32_t id = 0;
  if (bpf_xdp_query_id(ifindex, static_cast<int>(mode), &id) != 0 || id == 0) return false;
  const int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return false;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  const bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                    std::strncmp(info.name, "stamp_xdp", sizeof info.name) == 0;
  close(fd);
  return ours;
}
}  // namespace

Status XdpStamp::Attach(const std::string& ifname) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return Error{"no interface " + ifname, "interfaces", ENODEV};
  std::lock_guard lock(mu_);
  if (attached_.count(ifindex)) return Status::Ok();
  const int fd = bpf_program__fd(skel_->progs.stamp_xdp);
  uint32_t flags = XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST;
  int err = bpf_xdp_attach(ifindex, fd, flags, nullptr);
  if (err == -EOPNOTSUPP) {
    flags = XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST;
    err = bpf_xdp_attach(ifindex, fd, flags, nullptr);
  }
  if (err == -EBUSY && StaleReflectorOn(ifindex, flags & XDP_FLAGS_MODES)) {
    flags &= ~XDP_FLAGS_UPDATE_IF_NOEXIST;
    err = bpf_xdp_attach(ifindex, fd, flags, nullptr);
    if (!err) SEGWAN_LOG(kWarn, "stamp") << "replaced a reflector left on " << ifname << " by an earlier agent";
  }
  if (err) return Error{"attach XDP reflector to " + ifname + ": " + std::strerror(-err), "", -err};
  attached_[ifindex] = ifname;
  attach_flags_[ifindex] = flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST;
  SEGWAN_LOG(kInfo, "stamp") << "XDP reflector on " << ifname
                             << ((flags & XDP_FLAGS_DRV_MODE) ? " (native)" : " (generic)");
  return Status::Ok();
}

Status XdpStamp::AddListener(const IpAddress& address, uint16_t port) {
  if (address.family != AF_INET6) return FieldError("stamp_source_address", "the XDP reflector speaks IPv6");
  stamp_listener_key k{};
  std::memcpy(k.addr, address.bytes.data(), 16);
  k.port = port;
  uint32_t one = 1;
  std::lock_guard lock(mu_);
  if (bpf_map__update_elem(skel_->maps.stamp_listeners, &k, sizeof k, &one, sizeof one, BPF_ANY)) {
    return Error{std::string("listener map: ") + std::strerror(errno), "", errno};
  }
  skel_->bss->stamp_port_bits[port >> 6] |= 1ULL << (port & 63);
  return Status::Ok();
}

bool XdpStamp::Fits(const ReflectorSessionConfig& c) {
  return c.mode == Mode::kUnauthenticated && c.return_segments.size() <= STAMP_MAX_SEGS;
}

Status XdpStamp::SetSession(const ReflectorSessionConfig& c, const IpAddress& address,
                                 uint16_t port) {
  if (!Fits(c)) return Error{"session does not fit the XDP reflector", "", EINVAL};
  stamp_reflector_session s{};
  std::memcpy(s.addr, address.bytes.data(), 16);
  s.port = port;
  s.ssid = c.ssid;
  s.flags = (c.reflector_mode == ReflectorMode::kStateful ? STAMP_F_STATEFUL : 0u) |
            (c.format == TimestampFormat::kPtp ? STAMP_F_PTP : 0u);
  s.nsegs = static_cast<uint8_t>(c.return_segments.size());
  for (size_t i = 0; i < c.return_segments.size(); ++i) {
    std::memcpy(s.segs[i], c.return_segments[i].bytes.data(), 16);
  }
  std::lock_guard lock(mu_);
  s.error_estimate = htons(ErrorEstimate::ForError(clock_.error_ns, clock_.synchronized, c.format).Encode());
  uint32_t slot;
  if (auto it = slots_.find(c.ssid); it != slots_.end()) {
    slot = it->second;
  } else {
    if (free_slots_.empty()) return Error{"no free XDP reflector session slot", "", ENOSPC};
    slot = *free_slots_.begin();
    free_slots_.erase(free_slots_.begin());
  }
  const uint32_t key = c.ssid, slot1 = slot + 1;
  if (bpf_map__update_elem(skel_->maps.stamp_sessions, &slot, sizeof slot, &s, sizeof s, BPF_ANY) ||
      bpf_map__update_elem(skel_->maps.stamp_ssid_slots, &key, sizeof key, &slot1, sizeof slot1, BPF_ANY)) {
    free_slots_.insert(slot);
    return Error{std::string("session maps: ") + std::strerror(errno), "", errno};
  }
  slots_[c.ssid] = slot;
  return Status::Ok();
}

void XdpStamp::RemoveSession(uint16_t ssid) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(ssid);
  if (it == slots_.end()) return;
  const uint32_t key = ssid, none = 0;
  bpf_map__update_elem(skel_->maps.stamp_ssid_slots, &key, sizeof key, &none, sizeof none, BPF_ANY);
  free_slots_.insert(it->second);
  slots_.erase(it);
}

void XdpStamp::SetClock(const ClockSync& c) {
  std::lock_guard lock(mu_);
  clock_ = c;
  if (!sessions_map_) return;
  // In place, one 16-bit store each: a copy written back would undo the counters XDP moved.
  for (const auto& [ssid, slot] : slots_) {
    stamp_reflector_session& s = sessions_map_[slot];
    const auto f = (s.flags & STAMP_F_PTP) ? TimestampFormat::kPtp : TimestampFormat::kNtp;
    __atomic_store_n(&s.error_estimate, htons(ErrorEstimate::ForError(c.error_ns, c.synchronized, f).Encode()),
                     __ATOMIC_RELAXED);
  }
}

void XdpStamp::SetTaiUtcOffset(int32_t seconds) {
  skel_->bss->tai_utc_offset_s = static_cast<uint64_t>(static_cast<int64_t>(seconds));
}

Status XdpStamp::SetCollector(uint16_t ssid, const IpAddress& source, const IpAddress& peer, uint16_t local_port,
                              uint16_t reflector_port) {
  if (source.family != AF_INET6) return FieldError("source_address", "the XDP collector speaks IPv6");
  if (peer.family != AF_INET6) return FieldError("peer_address", "the XDP collector speaks IPv6");
  stamp_collector_session s{};
  std::memcpy(s.addr, source.bytes.data(), 16);
  std::memcpy(s.peer, peer.bytes.data(), 16);
  s.ssid = ssid;
  s.reflector_port = reflector_port;
  const uint32_t key = local_port;
  auto& word = skel_->bss->stamp_collect_bits[local_port >> 6];
  const uint64_t bit = 1ULL << (local_port & 63);
  std::lock_guard lock(mu_);
  if (word & bit) {
    return Error{"UDP port " + std::to_string(local_port) + " is already collected", "", EEXIST};
  }
  if (bpf_map__update_elem(skel_->maps.stamp_collectors, &key, sizeof key, &s, sizeof s, BPF_ANY)) {
    return Error{std::string("collector map: ") + std::strerror(errno), "", errno};
  }
  __atomic_fetch_or(&word, bit, __ATOMIC_RELAXED);
  return Status::Ok();
}

void XdpStamp::RemoveCollector(uint16_t local_port) {
  auto& word = skel_->bss->stamp_collect_bits[local_port >> 6];
  const uint64_t bit = 1ULL << (local_port & 63);
  std::lock_guard lock(mu_);
  if (!(word & bit)) return;
  // The bit first: a packet that still finds the entry afterwards meets an empty one.
  __atomic_fetch_and(&word, ~bit, __ATOMIC_RELAXED);
  const uint32_t key = local_port;
  const stamp_collector_session none{};
  bpf_map__update_elem(skel_->maps.stamp_collectors, &key, sizeof key, &none, sizeof none, BPF_ANY);
}

uint64_t XdpStamp::RingFull(uint16_t local_port) const {
  const uint32_t key = local_port;
  stamp_collector_session s{};
  if (bpf_map__lookup_elem(skel_->maps.stamp_collectors, &key, sizeof key, &s, sizeof s, 0)) return 0;
  return s.ring_full;
}

int XdpStamp::RecordsFd() const { return ring_buffer__epoll_fd(records_); }

int XdpStamp::OnRecord(void* self, void* data, size_t len) {
  auto* x = static_cast<XdpStamp*>(self);
  if (len >= sizeof(stamp_collect_record) && x->sink_) {
    stamp_collect_record r;
    std::memcpy(&r, data, sizeof r);
    (*x->sink_)(r);
  }
  return 0;
}

size_t XdpStamp::DrainRecords(const std::function<void(const stamp_collect_record&)>& sink) {
  sink_ = &sink;
  const int n = ring_buffer__consume(records_);
  sink_ = nullptr;
  return n > 0 ? static_cast<size_t>(n) : 0;
}

// Names of enum stamp_reason, in its order.
static constexpr const char* kReasonNames[] = {
    "not-listener", "no-session",   "tlvs",         "no-headroom",        "no-route",
    "malformed",    "abort-adjust", "tx-reflected", "redirect-reflected", "collected",
    "collect-passed", "collect-malformed", "collect-ring-full", "collect-checksum-passed",
    "zero-checksum", "checksum-passed", "other-sender",
};
static_assert(std::size(kReasonNames) == STAMP_REASON_MAX, "a reason without a name");

std::vector<std::pair<std::string, uint64_t>> XdpStamp::Reasons() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (uint32_t r = 0; r < STAMP_REASON_MAX; ++r) {
    uint64_t sum = 0;
    for (auto x : ebpf::ReadPerCpu<uint64_t>(skel_->maps.stamp_reasons, r).value_or(std::vector<uint64_t>{})) sum += x;
    out.emplace_back(kReasonNames[r], sum);
  }
  return out;
}

}  // namespace segwan::stamp
