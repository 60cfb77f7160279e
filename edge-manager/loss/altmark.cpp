#include "edge-manager/loss/altmark.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "altmark.skel.h"
#include "segwan/clock.h"
#include "segwan/log.h"
#include "segwan_altmark.h"

namespace segwan::loss {

namespace {

constexpr uint32_t kTcFilter = 0x5e6a;  // handle and priority of our filters

int Dir(Direction d) { return d == Direction::kIngress ? 0 : 1; }

Error Errno(const std::string& what) { return Error{what + ": " + std::strerror(errno), "", errno}; }

Result<std::vector<uint8_t>> KeyOf(const std::vector<IpAddress>& segments) {
  if (segments.empty() || segments.size() > ALTMARK_MAX_SEGS) {
    return FieldError("flow.segments", "must hold 1 to " + std::to_string(ALTMARK_MAX_SEGS) + " SIDs");
  }
  altmark_flow_key k{};
  k.nsegs = static_cast<uint32_t>(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].family != AF_INET6) {
      return FieldError("flow.segments[" + std::to_string(i) + "]", "must be an IPv6 SID");
    }
    // SRH order: the last SID first
    std::memcpy(k.segs[segments.size() - 1 - i], segments[i].bytes.data(), 16);
  }
  const auto* p = reinterpret_cast<const uint8_t*>(&k);
  return std::vector<uint8_t>(p, p + sizeof k);
}

altmark_addr HeadOf(const std::vector<uint8_t>& key) {
  altmark_flow_key k;
  std::memcpy(&k, key.data(), sizeof k);
  altmark_addr a{};
  std::memcpy(a.addr, k.segs[k.nsegs - 1], 16);  // the first SID: the outer destination
  return a;
}

bool OnBpffs(const std::string& dir) {
  struct statfs st {};
  return statfs(dir.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC;
}

}  // namespace

Result<std::unique_ptr<AltmarkEngine>> AltmarkEngine::Load(const std::string& pin_dir) {
  altmark* skel = altmark__open();
  if (!skel) return Errno("open the alternate-marking programs");
  if (!pin_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(pin_dir, ec);
    if (ec || !OnBpffs(pin_dir)) {
      altmark__destroy(skel);
      return Error{pin_dir + " is not on a bpffs (mount -t bpf bpf /sys/fs/bpf)", "", ENOTSUP};
    }
    for (bpf_map* m : {skel->maps.altmark_tx_heads, skel->maps.altmark_tx_flows, skel->maps.altmark_tx_counters,
                       skel->maps.altmark_rx_flows, skel->maps.altmark_rx_counters}) {
      bpf_map__set_pin_path(m, (pin_dir + "/" + bpf_map__name(m)).c_str());
    }
  }
  if (altmark__load(skel) != 0) {
    const int err = errno;
    altmark__destroy(skel);
    errno = err;
    return Errno("load the alternate-marking programs");
  }
  std::unique_ptr<AltmarkEngine> e(new AltmarkEngine(skel));
  e->Recover();
  e->switcher_ = std::thread([p = e.get()] { p->Switcher(); });
  return e;
}

AltmarkEngine::AltmarkEngine(altmark* skel) : skel_(skel), tc_(kTcFilter) {}

AltmarkEngine::~AltmarkEngine() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (switcher_.joinable()) switcher_.join();
  tc_.DetachAll();
  altmark__destroy(skel_);
}

Status AltmarkEngine::Attach(const std::string& ifname) {
  if (auto st = tc_.Attach(ifname, true, bpf_program__fd(skel_->progs.altmark_tx)); !st) return st;
  if (auto st = tc_.Attach(ifname, false, bpf_program__fd(skel_->progs.altmark_rx_tc)); !st) return st;
  SEGWAN_LOG(kInfo, "loss") << "alternate marking on " << ifname << " (TC egress and ingress)";
  return Status::Ok();
}

void AltmarkEngine::Recover() {
  std::lock_guard lock(mu_);
  for (int d = 0; d < 2; ++d) {
    for (uint32_t i = 0; i < ALTMARK_MAX_FLOWS; ++i) free_slots_[d].insert(i);
    bpf_map* m = d == 0 ? skel_->maps.altmark_tx_flows : skel_->maps.altmark_rx_flows;
    altmark_flow_key k{}, next{};
    const void* prev = nullptr;
    while (bpf_map__get_next_key(m, prev, &next, sizeof next) == 0) {
      altmark_flow v{};
      if (bpf_map__lookup_elem(m, &next, sizeof next, &v, sizeof v, 0) == 0) {
        const auto* p = reinterpret_cast<const uint8_t*>(&next);
        Flow f;
        f.slot = v.slot;
        f.colour = v.colour;
        f.period = kDefaultPeriod;  // until the controller says again
        f.next_switch = std::chrono::steady_clock::now() + f.period;
        flows_[d][Key(p, p + sizeof next)] = f;
        free_slots_[d].erase(v.slot);
      }
      k = next;
      prev = &k;
    }
    if (!flows_[d].empty()) {
      SEGWAN_LOG(kInfo, "loss") << "picked up " << flows_[d].size() << (d == 0 ? " ingress" : " egress")
                                << " flow(s) from the pinned maps";
    }
  }
}

Status AltmarkEngine::WriteFlow(Direction d, const Key& key, const Flow& f) {
  altmark_flow v{f.slot, f.colour};
  bpf_map* m = d == Direction::kIngress ? skel_->maps.altmark_tx_flows : skel_->maps.altmark_rx_flows;
  if (bpf_map__update_elem(m, key.data(), key.size(), &v, sizeof v, BPF_ANY) != 0) return Errno("flow table");
  return Status::Ok();
}

Status AltmarkEngine::Start(const std::vector<IpAddress>& segments, Direction d, std::chrono::milliseconds period) {
  auto key = KeyOf(segments);
  if (!key) return key.error();
  if (period < std::chrono::milliseconds(100) || period > std::chrono::hours(1)) {
    return FieldError("period_ms", "must be 100 to 3600000");
  }
  {
    std::lock_guard lock(mu_);
    auto& flows = flows_[Dir(d)];
    if (auto it = flows.find(*key); it != flows.end()) {
      it->second.period = period;
      it->second.next_switch = std::min(it->second.next_switch, std::chrono::steady_clock::now() + period);
      ++generation_;
      cv_.notify_all();
      return Status::Ok();
    }
    auto& free = free_slots_[Dir(d)];
    if (free.empty()) return Error{"no free flow slot (at most " + std::to_string(ALTMARK_MAX_FLOWS) + ")", "", ENOSPC};
    Flow f;
    f.slot = *free.begin();
    f.period = period;
    f.next_switch = std::chrono::steady_clock::now() + period;
    f.switched_at_ns = NowTaiNs();
    // a slot starts from zero
    const int cpus = libbpf_num_possible_cpus();
    std::vector<altmark_counter> zero(static_cast<size_t>(cpus));
    bpf_map* counters = d == Direction::kIngress ? skel_->maps.altmark_tx_counters : skel_->maps.altmark_rx_counters;
    for (uint32_t c = 0; c < 2; ++c) {
      const uint32_t idx = f.slot * 2 + c;
      if (bpf_map__update_elem(counters, &idx, sizeof idx, zero.data(), zero.size() * sizeof(altmark_counter), BPF_ANY) != 0) {
        return Errno("counters");
      }
    }
    if (d == Direction::kIngress) {
      // the head filter counts the flows behind each outer destination
      const altmark_addr head = HeadOf(*key);
      uint32_t n = 0;
      bpf_map__lookup_elem(skel_->maps.altmark_tx_heads, &head, sizeof head, &n, sizeof n, 0);
      ++n;
      if (bpf_map__update_elem(skel_->maps.altmark_tx_heads, &head, sizeof head, &n, sizeof n, BPF_ANY) != 0) {
        return Errno("head filter");
      }
    }
    if (auto st = WriteFlow(d, *key, f); !st) return st;
    free.erase(free.begin());
    flows[*key] = f;
    ++generation_;
  }
  cv_.notify_all();
  return Status::Ok();
}

Status AltmarkEngine::Stop(const std::vector<IpAddress>& segments, Direction d) {
  auto key = KeyOf(segments);
  if (!key) return key.error();
  std::lock_guard lock(mu_);
  auto& flows = flows_[Dir(d)];
  auto it = flows.find(*key);
  if (it == flows.end()) return Error{"this flow is not monitored in that direction", "", ENOENT};
  bpf_map* m = d == Direction::kIngress ? skel_->maps.altmark_tx_flows : skel_->maps.altmark_rx_flows;
  bpf_map__delete_elem(m, key->data(), key->size(), 0);
  if (d == Direction::kIngress) {
    const altmark_addr head = HeadOf(*key);
    uint32_t n = 0;
    bpf_map__lookup_elem(skel_->maps.altmark_tx_heads, &head, sizeof head, &n, sizeof n, 0);
    if (n <= 1) {
      bpf_map__delete_elem(skel_->maps.altmark_tx_heads, &head, sizeof head, 0);
    } else {
      --n;
      bpf_map__update_elem(skel_->maps.altmark_tx_heads, &head, sizeof head, &n, sizeof n, BPF_ANY);
    }
  }
  free_slots_[Dir(d)].insert(it->second.slot);
  flows.erase(it);
  return Status::Ok();
}

Result<FlowCounters> AltmarkEngine::Read(const std::vector<IpAddress>& segments, Direction d) {
  auto key = KeyOf(segments);
  if (!key) return key.error();
  std::lock_guard lock(mu_);
  auto it = flows_[Dir(d)].find(*key);
  if (it == flows_[Dir(d)].end()) return Error{"this flow is not monitored in that direction", "", ENOENT};
  FlowCounters out;
  const bpf_map* counters = d == Direction::kIngress ? skel_->maps.altmark_tx_counters : skel_->maps.altmark_rx_counters;
  for (uint32_t c = 0; c < 2; ++c) {
    auto per_cpu = ebpf::ReadPerCpu<altmark_counter>(counters, it->second.slot * 2 + c);
    if (!per_cpu) return Errno("counters");
    for (const auto& v : *per_cpu) {
      out.packets[c] += v.packets;
      out.bytes[c] += v.bytes;
    }
  }
  out.active_colour = it->second.colour;
  out.switched_at_ns = it->second.switched_at_ns;
  out.period_index = it->second.period_index;
  return out;
}

size_t AltmarkEngine::flows() const {
  std::lock_guard lock(mu_);
  return flows_[0].size() + flows_[1].size();
}

void AltmarkEngine::Switcher() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (const auto& [k, f] : flows_[0]) next = std::min(next, f.next_switch);
    // a Start() may bring an earlier deadline: it bumps the generation and wakes us
    const uint64_t seen = generation_;
    cv_.wait_until(lock, next, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [k, f] : flows_[0]) {
      if (now < f.next_switch) continue;
      f.colour ^= 1;
      f.switched_at_ns = NowTaiNs();
      ++f.period_index;
      f.next_switch += f.period;
      if (f.next_switch < now) f.next_switch = now + f.period;  // late: do not catch up in a burst
      if (auto st = WriteFlow(Direction::kIngress, k, f); !st) {
        SEGWAN_LOG(kWarn, "loss") << "colour switch: " << st.error().message;
      }
    }
  }
}

}  // namespace segwan::loss
