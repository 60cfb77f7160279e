#include "edge-manager/stamp/engine.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <unordered_set>

#include "segwan/log.h"

namespace segwan::stamp {

namespace {
// How long past the next interval a held record waits for the reply that carries its
// follow-up (a lost or late reply must not hold it for ever).
constexpr int64_t kFollowUpWaitNs = 1'000'000'000;
// While packets arrive closer together than kRingDenseGapNs on average, a ring keeps being
// looked at up to kRingSpinNs after its last packet (at most kRingServeNs a turn): the next one
// is then cheaper to wait for than to be woken for (on this VM, about 6 µs: 9.3 µs of CPU per
// packet when each one wakes the worker, less 3.4 µs per packet sent one at a time). Sparser
// traffic goes back to poll at once: spinning between packets 100 µs apart cost four times the
// CPU per packet of being woken for each.
constexpr int64_t kRingDenseGapNs = 6'000;
constexpr int64_t kRingSpinNs = 30'000;
constexpr int64_t kRingServeNs = 500'000;
// How often the clock's synchronisation state is read again.
constexpr int64_t kClockCheckNs = 10'000'000'000;

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}
}  // namespace

UserspaceEngine::UserspaceEngine(size_t result_queue, bool packet_rings)
    : queue_limit_(result_queue),
      tai_offset_(TaiUtcOffset()),
      reflector_(Reflector::Clock{.tai_utc_offset_s = TaiUtcOffset()}),
      use_rings_(packet_rings) {
  if (pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
  RefreshClock(MonoNs());  // before the worker: nothing to lock yet
  worker_ = std::thread([this] { Run(); });
}

UserspaceEngine::~UserspaceEngine() {
  stop_ = true;
  if (wake_[1] >= 0) (void)!write(wake_[1], "x", 1);
  worker_.join();
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

static Status AttachAll(XdpStamp& x, const std::vector<std::string>& interfaces) {
  for (const auto& ifname : interfaces) {
    if (auto st = x.Attach(ifname); !st) return st;
  }
  return Status::Ok();
}

static void Wake(int fd) {
  if (fd >= 0) (void)!write(fd, "x", 1);
}

Status UserspaceEngine::InitReflector(const IpAddress& address, uint16_t port,
                                      const std::vector<std::string>& interfaces) {
  std::lock_guard lock(mu_);
  if (ebpf_) {
    if (auto st = ebpf_->AddListener(address, port); !st) return st;
    if (auto st = AttachAll(*ebpf_, interfaces); !st) return st;
  }
  for (const auto& s : reflector_sockets_) {
    if (s->address == address && s->port == port) return Status::Ok();
  }
  auto sock = StampSocket::Open(address, port);
  if (!sock) return sock.error();
  if (use_rings_ && !rings_.count(port)) {
    auto ring = PacketRing::Open(port);
    if (ring) {
      rings_[port] = std::make_unique<PacketRing>(std::move(*ring));
    } else {
      SEGWAN_LOG(kInfo, "stamp") << "port " << port << ": replies from sockets only (" << ring.error().message << ")";
    }
  }
  // The ring answers for listeners on one address only: one on :: would have it answer packets
  // to any address the port sees, which only the kernel can tell are local.
  if (rings_.count(port) && address != IpAddress{AF_INET6, {}}) {
    if (auto st = PacketRing::LeaveBasePacketsToTheRing(sock->fd()); !st) return st;
  }
  reflector_sockets_.push_back(
      std::make_unique<ReflectorSocket>(ReflectorSocket{address, port, std::move(*sock)}));
  Wake(wake_[1]);
  return Status::Ok();
}

Status UserspaceEngine::AttachXdp(const std::vector<std::string>& interfaces) {
  std::lock_guard lock(mu_);
  return ebpf_ ? AttachAll(*ebpf_, interfaces) : Status::Ok();
}

void UserspaceEngine::Reset(bool sender) {
  std::lock_guard lock(mu_);
  if (sender) {
    DrainXdp();  // nothing of these sessions may stay in the ring for later ones
    for (const auto& [ssid, s] : senders_) ForgetSender(*s);
    senders_.clear();
  } else {
    reflector_sockets_.clear();
    rings_.clear();
    if (ebpf_) {
      for (const auto& [ssid, e] : reflector_sessions_) ebpf_->RemoveSession(ssid);
    }
    reflector_sessions_.clear();
    reflector_.Clear();
  }
  Wake(wake_[1]);
}

void UserspaceEngine::AcceptAnyReflectorSession(const ReflectorSessionConfig& templ) {
  reflector_.AcceptAnySession(templ);
}

Status UserspaceEngine::AddReflectorSession(const ReflectorSessionConfig& c) {
  std::lock_guard lock(mu_);
  if (reflector_sessions_.count(c.ssid)) {
    return Error{"reflector session " + std::to_string(c.ssid) + " exists", "", EEXIST};
  }
  if (reflector_sessions_.size() >= kMaxReflectorSessions) {
    return Error{"this edge reflects " + std::to_string(kMaxReflectorSessions) + " sessions already", "", ENOSPC};
  }
  reflector_sessions_[c.ssid] = ReflectorEntry{c, false};
  return Status::Ok();
}

Status UserspaceEngine::AddSenderSession(const SenderSessionConfig& c) {
  std::lock_guard lock(mu_);
  if (senders_.count(c.ssid)) {
    return Error{"sender session " + std::to_string(c.ssid) + " exists", "", EEXIST};
  }
  if (senders_.size() >= kMaxSenderSessions) {
    return Error{"this edge sends " + std::to_string(kMaxSenderSessions) + " sessions already", "", ENOSPC};
  }
  auto sock = StampSocket::Open(c.source, 0);
  if (!sock) return sock.error();
  auto s = std::make_unique<Sender>(Sender{c, std::move(*sock), Prototype(c)});
  if (c.mode == Mode::kUnauthenticated) s->wire = BuildSender(s->proto, c.mode);
  const bool kernel = c.ebpf != EbpfUse::kNever && c.mode == Mode::kUnauthenticated;
  const bool xdp_collect = kernel && !c.follow_up;  // the XDP collector reads no TLVs
  // Replies come back to the session's own address: without one (::) XDP has nothing to match.
  const uint16_t port = s->socket.LocalPort();
  if (ebpf_ && xdp_collect && port != 0 && c.source != IpAddress{AF_INET6, {}}) {
    if (auto st = ebpf_->SetCollector(c.ssid, c.source, c.peer, port, c.reflector_port)) {
      s->collected_port = port;
    } else {
      SEGWAN_LOG(kWarn, "stamp") << "session " << c.ssid << ": replies read from its socket: " << st.error().message;
    }
  }
  if (c.ebpf == EbpfUse::kRequired && !s->collected_port) {
    return Error{"the XDP collector cannot take sender session " + std::to_string(c.ssid) +
                     (ebpf_ ? "" : ": no XDP program on this edge"), "", EOPNOTSUPP};
  }
  if (ebpf_sender_ && kernel) {
    if (auto st = ebpf_sender_->SetSession(c.ssid, c.format == TimestampFormat::kPtp, c.reflector_port); !st) {
      ForgetSender(*s);
      return st;
    }
  }
  senders_[c.ssid] = std::move(s);
  return Status::Ok();
}

void UserspaceEngine::ForgetSender(const Sender& s) {
  if (ebpf_sender_) ebpf_sender_->RemoveSession(s.config.ssid);
  if (ebpf_ && s.collected_port) ebpf_->RemoveCollector(s.collected_port);
}

bool UserspaceEngine::SenderInXdp(uint16_t ssid) const {
  std::lock_guard lock(mu_);
  auto it = senders_.find(ssid);
  return it != senders_.end() && it->second->collected_port != 0;
}

void UserspaceEngine::UseEbpf(XdpStamp* ebpf) {
  std::lock_guard lock(mu_);
  ebpf_ = ebpf;
  if (ebpf) ebpf->SetClock(clock_);
  reflector_.SetSharedSequence(ebpf ? Reflector::SharedSequence([ebpf](uint16_t ssid, const IpAddress& a, uint16_t port) {
                                 return ebpf->NextSeq(ssid, a, port);
                               })
                                    : nullptr);
}

Status UserspaceEngine::Start(bool sender, uint16_t ssid) {
  std::lock_guard lock(mu_);
  if (sender) {
    auto it = senders_.find(ssid);
    if (it == senders_.end()) return Error{"no sender session " + std::to_string(ssid), "", ENOENT};
    Sender& s = *it->second;
    s.running = true;
    s.next_ns = MonoNs();
    s.stop_at_ns = s.config.duration_ms ? s.next_ns + static_cast<int64_t>(s.config.duration_ms) * 1'000'000 : 0;
  } else {
    auto it = reflector_sessions_.find(ssid);
    if (it == reflector_sessions_.end()) return Error{"no reflector session " + std::to_string(ssid), "", ENOENT};
    const ReflectorSessionConfig& cfg = it->second.config;
    if (!it->second.active) reflector_.AddSession(cfg);
    it->second.active = true;
    if (InXdp(cfg)) {
      // The listener it belongs to: its own address, or the one address we listen on.
      std::optional<IpAddress> local = cfg.local;
      if (!local && reflector_sockets_.size() == 1) local = reflector_sockets_[0]->address;
      if (local) {
        if (auto st = ebpf_->SetSession(cfg, *local, cfg.port); !st) return st;
      }
    }
  }
  Wake(wake_[1]);
  return Status::Ok();
}

Status UserspaceEngine::Stop(bool sender, uint16_t ssid) {
  std::lock_guard lock(mu_);
  if (sender) {
    auto it = senders_.find(ssid);
    if (it == senders_.end()) return Error{"no sender session " + std::to_string(ssid), "", ENOENT};
    it->second->running = false;
  } else {
    auto it = reflector_sessions_.find(ssid);
    if (it == reflector_sessions_.end()) return Error{"no reflector session " + std::to_string(ssid), "", ENOENT};
    reflector_.RemoveSession(ssid);
    if (ebpf_) ebpf_->RemoveSession(ssid);
    it->second.active = false;
  }
  return Status::Ok();
}

Status UserspaceEngine::Destroy(bool sender, uint16_t ssid) {
  std::lock_guard lock(mu_);
  if (sender) {
    auto it = senders_.find(ssid);
    if (it == senders_.end()) return Error{"no sender session " + std::to_string(ssid), "", ENOENT};
    DrainXdp();  // nothing of this session may stay in the ring for a later one
    ForgetSender(*it->second);
    senders_.erase(it);
  } else {
    if (reflector_sessions_.erase(ssid) == 0) return Error{"no reflector session " + std::to_string(ssid), "", ENOENT};
    reflector_.RemoveSession(ssid);
    if (ebpf_) ebpf_->RemoveSession(ssid);
  }
  return Status::Ok();
}

std::vector<std::pair<std::string, uint64_t>> UserspaceEngine::Counters() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (int r = 0; r < static_cast<int>(DropReason::kCount); ++r) {
    const auto reason = static_cast<DropReason>(r);
    out.emplace_back(std::string("userspace:") + DropReasonName(reason), reflector_.drops(reason));
  }
  if (ebpf_) {
    for (auto& [name, n] : ebpf_->Reasons()) out.emplace_back("xdp:" + name, n);
  }
  if (ebpf_sender_) out.emplace_back("tc:t1-stamped", ebpf_sender_->Stamped());
  std::lock_guard lock(mu_);
  out.emplace_back("sender:reply-from-elsewhere", sender_counters_.from_elsewhere);
  if (!rings_.empty()) {
    out.emplace_back("ring:reflected", ring_counters_.reflected);
    out.emplace_back("ring:replied-by-socket", ring_counters_.by_socket);
    out.emplace_back("ring:refused", ring_counters_.refused);
    out.emplace_back("ring:not-listener", ring_counters_.not_listener);
    out.emplace_back("ring:send-errors", ring_counters_.send_errors);
    uint64_t drops = 0;
    for (auto& [port, r] : rings_) drops += r->kernel_drops();
    ring_counters_.kernel_drops += drops;
    out.emplace_back("ring:no-room", ring_counters_.kernel_drops);
  }
  return out;
}

bool UserspaceEngine::Has(bool sender, uint16_t ssid) const {
  std::lock_guard lock(mu_);
  return sender ? senders_.count(ssid) > 0 : reflector_sessions_.count(ssid) > 0;
}

Result<UserspaceEngine::Results> UserspaceEngine::TakeResults(uint16_t ssid, size_t max) {
  std::lock_guard lock(mu_);
  auto it = senders_.find(ssid);
  if (it == senders_.end()) return Error{"no sender session " + std::to_string(ssid), "", ENOENT};
  DrainXdp();
  return Take(*it->second, max);
}

std::vector<std::pair<uint16_t, UserspaceEngine::Results>> UserspaceEngine::TakeAllResults() {
  std::lock_guard lock(mu_);
  DrainXdp();
  std::vector<std::pair<uint16_t, Results>> out;
  out.reserve(senders_.size());
  for (auto& [ssid, s] : senders_) out.emplace_back(ssid, Take(*s, 0));
  return out;
}

UserspaceEngine::Results UserspaceEngine::Take(Sender& s, size_t max) {
  if (ebpf_ && s.collected_port) {
    const uint64_t full = ebpf_->RingFull(s.collected_port);
    s.dropped += full - s.ring_full_seen;
    s.ring_full_seen = full;
  }
  Results r;
  const size_t n = max == 0 ? s.queue.size() : std::min(max, s.queue.size());
  r.records.assign(s.queue.begin(), s.queue.begin() + static_cast<long>(n));
  s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<long>(n));
  r.dropped = s.dropped;
  s.dropped = 0;
  r.sent = s.sent;
  r.running = s.running;
  return r;
}

void UserspaceEngine::ServeReflector(ReflectorSocket& rs) {
  rs.socket.DiscardErrors();
  for (;;) {
    auto d = rs.socket.Receive(tai_offset_);
    if (!d || !*d) return;
    const Datagram& dg = **d;
    auto out = reflector_.Reflect({dg.payload, dg.rx_tai_ns, dg.hop_limit, dg.traffic_class, dg.to, rs.port, dg.from, dg.from_port});
    auto* refl = std::get_if<Reflection>(&out);
    if (!refl) continue;  // counted by the reflector, by reason
    ReplyBySocket(rs.socket, *refl, dg.from, dg.from_port);
  }
}

void UserspaceEngine::ReplyBySocket(StampSocket& socket, Reflection& refl, const IpAddress& from, uint16_t from_port) {
  PatchT3(refl.reply, refl.mode, EncodeTimestamp(NowTaiNs(), refl.format, tai_offset_), &refl.key);
  uint64_t sent_at = 0;
  auto st = socket.SendTo(refl.reply, refl.reply_to.value_or(from), from_port, refl.return_segments, refl.dscp,
                          refl.follow_up ? &sent_at : nullptr, tai_offset_);
  if (!st) SEGWAN_LOG(kWarn, "stamp") << st.error().message;
  if (sent_at) reflector_.NoteTransmit(refl.ssid, from, from_port, refl.seq, sent_at);
}

UserspaceEngine::ReflectorSocket* UserspaceEngine::ListenerFor(const IpAddress& address, uint16_t port) {
  for (auto& r : reflector_sockets_) {
    if (r->port == port && r->address == address) return r.get();
  }
  return nullptr;
}


// Base test packets from the ring: answered here and sent back through the ring to the
// neighbour they came from, unless the reply takes another way (a return path or address, or
// a follow-up transmit time to take): then through the listener's socket.
void UserspaceEngine::ServeRing(PacketRing& ring) {
  auto serve = [&](const RingPacket& p) {
    const auto& f = p.frame;
    const size_t ip = p.udp_offset - 40, u = p.udp_offset;
    IpAddress src{AF_INET6, {}}, dst{AF_INET6, {}};
    std::memcpy(src.bytes.data(), &f[ip + 8], 16);
    std::memcpy(dst.bytes.data(), &f[ip + 24], 16);
    const uint16_t sport = static_cast<uint16_t>(f[u] << 8 | f[u + 1]);
    const size_t udp_len = static_cast<size_t>(f[u + 4] << 8 | f[u + 5]);
    ReflectorSocket* listener = ListenerFor(dst, ring.port());
    if (!listener) {
      ++ring_counters_.not_listener;
      return;
    }
    if (udp_len < 8 || u + udp_len > f.size() || !Ipv6InputWouldTake(f, ip, udp_len) ||
        (!p.checksum_trusted && !UdpChecksumOk(f, u))) {
      ++ring_counters_.refused;  // what the kernel's UDP layer would have dropped
      return;
    }
    const uint8_t tclass = static_cast<uint8_t>((f[ip] & 0x0f) << 4 | f[ip + 1] >> 4);
    const uint64_t t2 = p.rx_realtime_ns + static_cast<uint64_t>(tai_offset_) * 1'000'000'000ULL;
    auto out = reflector_.Reflect({f.subspan(u + 8, udp_len - 8), t2, f[ip + 7], tclass, dst, ring.port(), src, sport});
    auto* refl = std::get_if<Reflection>(&out);
    if (!refl) return;  // counted by the reflector, by reason
    if (refl->reply_to || !refl->return_segments.empty() || refl->follow_up) {
      ++ring_counters_.by_socket;
      ReplyBySocket(listener->socket, *refl, src, sport);
      return;
    }
    PatchT3(refl->reply, refl->mode, EncodeTimestamp(NowTaiNs(), refl->format, tai_offset_), &refl->key);
    ring.QueueReply(p, refl->reply, refl->dscp ? static_cast<uint8_t>(*refl->dscp << 2) : 0);
    ++ring_counters_.reflected;
  };
  // While packets come densely, the ring is looked at again for a short while before the
  // worker goes back to poll: under load, one wake-up serves many packets (a system call per
  // packet is what this path exists to avoid). Bounded, so that the worker's other duties and
  // the API (waiting for mu_) are never held off for long.
  const int64_t start = MonoNs();
  int64_t last = start;
  for (;;) {
    const size_t n = ring.Drain(serve, 64);
    if (auto st = ring.Flush(); !st) {
      ++ring_counters_.send_errors;
      SEGWAN_LOG(kWarn, "stamp") << st.error().message;
    }
    const int64_t now = MonoNs();
    if (n) last = now;
    if (now - last > kRingSpinNs || now - start > kRingServeNs) break;
    if (n == 0 && ring.MeanArrivalGapNs() >= kRingDenseGapNs) break;
  }
}

SenderPacket UserspaceEngine::Prototype(const SenderSessionConfig& c) const {
  SenderPacket p{.error_estimate = ErrorEstimate::ForError(clock_.error_ns, clock_.synchronized, c.format).Encode(),
                 .ssid = c.ssid};
  if (c.padding) p.tlvs.push_back(ExtraPaddingTlv(c.padding));
  if (!c.return_request.empty()) p.tlvs.push_back(ReturnPathSrv6Tlv(c.return_request));
  if (c.follow_up) p.tlvs.push_back(FollowUpTelemetryTlv());
  return p;
}

void UserspaceEngine::SendDue(Sender& s, int64_t now) {
  const auto& c = s.config;
  const Key* key = c.mode == Mode::kAuthenticated ? &c.key : nullptr;
  while (s.running && now >= s.next_ns) {
    if ((c.packet_count && s.sent >= c.packet_count) || (s.stop_at_ns && now >= s.stop_at_ns)) {
      s.running = false;
      return;
    }
    const auto seq = static_cast<uint32_t>(s.sent);
    const uint64_t t1 = EncodeTimestamp(NowTaiNs(), c.format, tai_offset_);
    if (key) {
      s.proto.seq = seq;
      s.proto.timestamp = t1;
      s.wire = BuildSender(s.proto, c.mode, key);
    } else {  // the unauthenticated layout: sequence number at 0, timestamp at 4
      PutBe32(&s.wire[0], seq);
      PutBe64(&s.wire[4], t1);
    }
    if (auto st = s.socket.SendTo(s.wire, c.peer, c.reflector_port, c.segments, std::nullopt); !st) {
      SEGWAN_LOG(kWarn, "stamp") << "session " << c.ssid << ": " << st.error().message;
    }
    ++s.sent;
    s.next_ns += static_cast<int64_t>(c.interval_ms) * 1'000'000;
  }
}

void UserspaceEngine::Collect(Sender& s) {
  const auto& c = s.config;
  const Key* key = c.mode == Mode::kAuthenticated ? &c.key : nullptr;
  for (;;) {
    auto d = s.socket.Receive(tai_offset_);
    if (!d || !*d) return;
    // A session is its addresses and ports with its SSID (RFC 8972 §3): a reply must come from
    // the reflector's address and port. Anyone else who guessed the port and SSID would
    // otherwise write the session's delays (and could move steered traffic).
    if ((*d)->from != c.peer || (*d)->from_port != c.reflector_port) {
      ++sender_counters_.from_elsewhere;
      continue;
    }
    auto parsed = ParseReflector((*d)->payload, c.mode, key);
    auto* r = std::get_if<ReflectorPacket>(&parsed);
    if (!r || (r->ssid != c.ssid && !(r->ssid == 0 && c.accept_zero_ssid))) continue;
    // T1 is ours, in the session's format (whatever a reflector echoes); T2 and T3 in the
    // format the reflector's Z bit says.
    const uint16_t ours = ErrorEstimate{.format = c.format}.Encode();
    const auto t = DecodeReplyTimes(r->sender_timestamp, ours, r->receive_timestamp, r->timestamp,
                                    r->error_estimate, tai_offset_);
    Record rec{.ssid = c.ssid, .sender_seq = r->sender_seq, .reflector_seq = r->seq,
               .t1 = t.t1, .t2 = t.t2, .t3 = t.t3, .t4 = (*d)->rx_tai_ns, .sender_ttl = r->sender_ttl};
    rec.flags = RecordFlags(*r, key != nullptr);
    if (c.follow_up) {
      Hold(s, rec, FindFollowUp(r->tlvs), r->error_estimate);
    } else {
      Enqueue(s, rec);
    }
  }
}

// A follow-up reports on the reply before the one that carries it: the held record, when the
// reflector's sequence numbers match, gets its real transmit time; either way it is released
// and this one held in its place.
void UserspaceEngine::Hold(Sender& s, const Record& r, const std::optional<FollowUp>& f, uint16_t reflector_ee) {
  if (s.held) {
    if (f && f->reflector_seq == s.held->reflector_seq) {
      s.held->t3_follow_up = DecodeTimestamp(f->timestamp, ErrorEstimate::Decode(reflector_ee).format, tai_offset_);
    }
    Enqueue(s, *s.held);
  }
  s.held = r;
  s.held_until = MonoNs() + static_cast<int64_t>(s.config.interval_ms) * 1'000'000 + kFollowUpWaitNs;
}

void UserspaceEngine::ReleaseHeld(Sender& s, int64_t now) {
  if (s.held && now >= s.held_until) {
    Enqueue(s, *s.held);
    s.held.reset();
  }
}

void UserspaceEngine::Enqueue(Sender& s, const Record& r) {
  if (s.queue.size() >= queue_limit_) {
    ++s.dropped;
    return;
  }
  s.queue.push_back(r);
}

void UserspaceEngine::DrainXdp() {
  if (!ebpf_) return;
  std::function<void(const stamp_collect_record&)> to_queue = [this](const stamp_collect_record& x) {
    auto it = senders_.find(x.ssid);
    if (it == senders_.end() || it->second->collected_port != x.local_port) return;  // gone since
    Sender& s = *it->second;
    // T1 is ours, in the session's format; T2 and T3 in the one the reflector's Z bit says.
    const uint16_t ours = ErrorEstimate{.format = s.config.format}.Encode();
    const auto t = DecodeReplyTimes(x.t1, ours, x.t2, x.t3, x.reflector_error_estimate, tai_offset_);
    Enqueue(s, Record{.ssid = x.ssid, .sender_seq = x.sender_seq, .reflector_seq = x.reflector_seq,
                      .t1 = t.t1, .t2 = t.t2, .t3 = t.t3, .t4 = x.t4, .sender_ttl = x.sender_ttl,
                      .flags = ErrorEstimate::Decode(x.reflector_error_estimate).synchronized ? 0 : kRecordUnsynchronized});
  };
  ebpf_->DrainRecords(to_queue);
}

void UserspaceEngine::RefreshClock(int64_t now) {
  if (clock_checked_ && now - clock_checked_ < kClockCheckNs) return;
  const bool first = clock_checked_ == 0;
  clock_checked_ = now;
  const ClockSync c = ReadClockSync();
  if (c == clock_ && !first) return;
  clock_ = c;
  reflector_.SetClock(Reflector::Clock{.tai_utc_offset_s = tai_offset_, .synchronized = c.synchronized,
                                       .sync_source = c.synchronized ? kSyncNtp : kSyncFreeRunning,
                                       .method = kMethodSoftware, .error_ns = c.error_ns});
  if (ebpf_) ebpf_->SetClock(c);
  for (auto& [ssid, s] : senders_) {
    s->proto.error_estimate = Prototype(s->config).error_estimate;
    if (s->config.mode == Mode::kUnauthenticated) s->wire = BuildSender(s->proto, s->config.mode);
  }
}

void UserspaceEngine::Run() {
  std::vector<pollfd> fds;
  std::unordered_set<int> ready;
  while (!stop_) {
    int64_t timeout_ns = 200'000'000;
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    {
      std::lock_guard lock(mu_);
      if (ebpf_) fds.push_back({ebpf_->RecordsFd(), POLLIN, 0});
      const int64_t now = MonoNs();
      for (const auto& r : reflector_sockets_) fds.push_back({r->socket.fd(), POLLIN, 0});
      for (const auto& [port, r] : rings_) fds.push_back({r->fd(), POLLIN, 0});
      for (const auto& [ssid, s] : senders_) {
        fds.push_back({s->socket.fd(), POLLIN, 0});
        if (s->running) timeout_ns = std::min(timeout_ns, std::max<int64_t>(0, s->next_ns - now));
        if (s->held) timeout_ns = std::min(timeout_ns, std::max<int64_t>(0, s->held_until - now));
      }
    }
    timespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
    ppoll(fds.data(), fds.size(), &ts, nullptr);
    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    // Only the sockets poll found readable are read (a socket replaced meanwhile under the
    // same number just answers EAGAIN).
    ready.clear();
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents & (POLLIN | POLLERR)) ready.insert(fds[i].fd);
    }
    auto readable = [&](int fd) { return ready.count(fd) > 0; };
    std::lock_guard lock(mu_);
    RefreshClock(MonoNs());
    if (ebpf_ && readable(ebpf_->RecordsFd())) DrainXdp();
    for (auto& [port, r] : rings_) {
      if (readable(r->fd())) ServeRing(*r);
    }
    for (auto& r : reflector_sockets_) {
      if (readable(r->socket.fd())) ServeReflector(*r);
    }
    const int64_t now = MonoNs();
    for (auto& [ssid, s] : senders_) {
      if (readable(s->socket.fd())) Collect(*s);
      ReleaseHeld(*s, now);
      SendDue(*s, now);
    }
  }
}

}  // namespace segwan::stamp
