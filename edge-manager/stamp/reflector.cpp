#include "edge-manager/stamp/reflector.h"

#include <algorithm>
#include <cstring>

namespace segwan::stamp {

const char* DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kTooShort: return "too-short";
    case DropReason::kHmacMismatch: return "hmac-mismatch";
    case DropReason::kUnknownSession: return "unknown-session";
    case DropReason::kNoReplyRequested: return "no-reply-requested";
    case DropReason::kCount: break;
  }
  return "?";
}

std::optional<uint16_t> PeekSsid(std::span<const uint8_t> p, Mode mode) {
  const size_t off = mode == Mode::kAuthenticated ? 26 : 14;
  if (p.size() < BaseLength(mode)) return std::nullopt;
  return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
}

void PatchT3(std::vector<uint8_t>& reply, Mode mode, uint64_t t3_wire, const Key* key) {
  const size_t off = mode == Mode::kAuthenticated ? 16 : 4;
  PutBe64(&reply[off], t3_wire);
  if (mode == Mode::kAuthenticated && key) {
    const auto mac = Hmac(*key, std::span(reply).subspan(0, kAuthenticatedHmacOffset));
    std::memcpy(&reply[kAuthenticatedHmacOffset], mac.data(), kHmacLength);
  }
  // The HMAC TLV covers only the sequence number and TLVs, not T3: nothing else to redo.
}

void Reflector::AddSession(const ReflectorSessionConfig& s) {
  std::lock_guard lock(mu_);
  sessions_[s.ssid] = Session{.config = s};
}

void Reflector::AcceptAnySession(const ReflectorSessionConfig& templ) {
  std::lock_guard lock(mu_);
  any_ = templ;
}

bool Reflector::RemoveSession(uint16_t ssid) {
  std::lock_guard lock(mu_);
  return sessions_.erase(ssid) > 0;
}

void Reflector::Clear() {
  std::lock_guard lock(mu_);
  sessions_.clear();
}

void Reflector::SetSharedSequence(SharedSequence next) {
  std::lock_guard lock(mu_);
  shared_seq_ = std::move(next);
}

void Reflector::SetClock(Clock c) {
  std::lock_guard lock(mu_);
  clock_ = c;
  for (TimestampFormat f : {TimestampFormat::kNtp, TimestampFormat::kPtp}) {
    error_estimate_[static_cast<int>(f)] = ErrorEstimate::ForError(c.error_ns, c.synchronized, f).Encode();
  }
}

uint64_t Reflector::drops(DropReason r) const {
  std::lock_guard lock(mu_);
  return drops_[static_cast<int>(r)];
}

std::optional<Reflector::Counters> Reflector::SessionCounters(uint16_t ssid) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(ssid);
  if (it == sessions_.end()) return std::nullopt;
  return it->second.counters;
}

namespace {

// A return path the reflector will not take (RFC 9503 leaves which to the reflector): one that
// would send the reply to nowhere, to a host's own loopback, back to this reflector, or to
// everyone on a link.
bool RefusedReturnHop(const IpAddress& a, const IpAddress& self) {
  if (a == self) return true;
  const auto& b = a.bytes;
  if (a.family == AF_INET) {
    return (b[0] == 0) || b[0] == 127 || (b[0] == 169 && b[1] == 254) || (b[0] >= 224);
  }
  const bool unspecified_or_loopback = std::all_of(b.begin(), b.begin() + 15, [](uint8_t x) { return x == 0; }) && b[15] <= 1;
  const bool v4_mapped = std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) && b[10] == 0xff && b[11] == 0xff;
  return unspecified_or_loopback || v4_mapped || b[0] == 0xff || a.IsLinkLocal();
}

// The TLV types this reflector acts on.
bool Understood(uint8_t type, Mode mode) {
  switch (type) {
    case kTlvExtraPadding:
    case kTlvLocation:
    case kTlvClassOfService:
    case kTlvTimestampInfo:
    case kTlvDirectMeasurement:
    case kTlvDestinationNodeAddress:
    case kTlvReturnPath:
    case kTlvAccessReport:
    case kTlvFollowUpTelemetry:
      return true;
    case kTlvHmac:
      return mode == Mode::kAuthenticated;
    default:
      return false;
  }
}

}  // namespace

// The TLVs of a test packet, in order, as RFC 8972 §4 and RFC 9503 ask (docs/stamp-conformance.md):
// - each TLV the reflector understands and acts on is returned with U, M and I clear and the
//   reserved flags zeroed; one it does not understand with U set and its value untouched;
// - a malformed TLV (a length wrong for its type, or cut short by the end of the packet) gets
//   M, and processing stops there: it and the rest of the packet are copied as they came;
// - in authenticated mode the TLVs are processed only when an HMAC TLV is present, last, alone
//   and verifies; otherwise they are copied as they came, each with I set;
// - Return Path: the first one is acted on, later ones come back with U; a Control Code
//   without its Reply Request bit (reserved bits ignored) means no reply at all; an SR-MPLS
//   return path, or a return hop the reflector refuses (RefusedReturnHop), gets U and the
//   reply takes the session's own path.
// Returns the drop reason when the packet asks for no reply.
std::optional<DropReason> Reflector::ProcessTlvs(const ParsedSender& sp, const ReceivedPacket& in,
                                                 const ReflectorSessionConfig& cfg, const PeerState& peer,
                                                 ReflectorPacket* r, Reflection* out) const {
  const Counters& counters = peer.counters;
  const auto& tlvs = sp.packet.tlvs;
  const auto area = in.payload.subspan(BaseLength(cfg.mode));  // the TLVs as they came
  if (cfg.mode == Mode::kAuthenticated && !tlvs.empty()) {
    const auto hmacs = std::count_if(tlvs.begin(), tlvs.end(), [](const Tlv& t) { return t.type == kTlvHmac; });
    const bool ok = hmacs == 1 && tlvs.back().type == kTlvHmac && !sp.truncated && sp.trailer.empty() && sp.tlv_hmac_ok;
    if (!ok) {
      r->trailer = FlaggedCopy(area, kTlvFlagIntegrity);
      return std::nullopt;
    }
  }
  bool return_path_seen = false;
  size_t off = 0;  // of TLV i in `area`
  for (size_t i = 0; i < tlvs.size(); off += tlvs[i].WireSize(), ++i) {
    Tlv t = tlvs[i];
    t.flags = 0;
    bool bad = sp.truncated && i + 1 == tlvs.size();
    auto malformed = [&] { bad = true; };
    if (!bad) switch (t.type) {
      case kTlvExtraPadding:
        break;
      case kTlvLocation:
        if (!AnswerLocation(t.value, {in.local_port, in.peer_port, in.local_address, in.peer_address})) malformed();
        break;
      case kTlvClassOfService: {
        auto cos = ClassOfService::Decode(t.value);
        if (!cos) {
          malformed();
          break;
        }
        cos->dscp2 = in.traffic_class >> 2;
        cos->ecn = in.traffic_class & 0x3;
        cos->rp = 0;  // the reply will carry DSCP1
        out->dscp = cos->dscp1;
        t.value = cos->Encode();
        break;
      }
      case kTlvTimestampInfo:
        if (t.value.size() < 4) {
          malformed();
          break;
        }
        t.value[0] = clock_.synchronized ? clock_.sync_source : kSyncFreeRunning;
        t.value[1] = clock_.method;
        t.value[2] = t.value[0];
        t.value[3] = clock_.method;
        break;
      case kTlvDirectMeasurement: {
        if (t.value.size() != 12) {
          malformed();
          break;
        }
        const uint32_t rx = static_cast<uint32_t>(counters.received);
        const uint32_t tx = static_cast<uint32_t>(counters.reflected + 1);
        for (int k = 0; k < 4; ++k) {
          t.value[4 + k] = static_cast<uint8_t>(rx >> (24 - 8 * k));
          t.value[8 + k] = static_cast<uint8_t>(tx >> (24 - 8 * k));
        }
        break;
      }
      case kTlvAccessReport: {
        if (t.value.size() != kAccessReportLength) {
          malformed();
          break;
        }
        // Access ID and Return Code returned as received, the reserved bits zeroed; an Access
        // ID other than 1 (3GPP) or 2 (non-3GPP) is invalid: the TLV is discarded (U).
        const uint8_t id = t.value[0] >> 4;
        t.value[0] = static_cast<uint8_t>(id << 4);
        t.value[2] = t.value[3] = 0;
        if (id != 1 && id != 2) t.flags = kTlvFlagUnrecognized;
        break;
      }
      case kTlvFollowUpTelemetry: {
        if (t.value.size() != kFollowUpLength) {
          malformed();
          break;
        }
        // The previous reply to this sender and when it really left (stateful mode only; a
        // stateless reflector, or one that knows of no such reply yet, reports zeros).
        std::fill(t.value.begin(), t.value.end(), 0);
        if (cfg.reflector_mode == ReflectorMode::kStateful && peer.sent_tai_ns) {
          PutBe32(&t.value[0], peer.sent_seq);
          PutBe64(&t.value[4], EncodeTimestamp(peer.sent_tai_ns, cfg.format, clock_.tai_utc_offset_s));
          t.value[12] = kMethodSoftware;  // the kernel's transmit timestamp
        }
        out->follow_up = true;
        break;
      }
      case kTlvHmac:
        // Verified above in authenticated mode and recomputed over the reply by BuildReflector.
        // Without a key there is nothing to check it with.
        if (cfg.mode != Mode::kAuthenticated) t.flags = kTlvFlagUnrecognized;
        break;
      case kTlvDestinationNodeAddress: {
        const bool v4 = t.value.size() == 4, v6 = t.value.size() == 16;
        if (!v4 && !v6) {
          malformed();
          break;
        }
        IpAddress a{v4 ? AF_INET : AF_INET6, {}};
        std::memcpy(a.bytes.data(), t.value.data(), t.value.size());
        if (!(a == in.local_address)) t.flags = kTlvFlagUnrecognized;  // not for us
        break;
      }
      case kTlvReturnPath: {
        if (return_path_seen) {  // one return path per reply: the first one's
          t.flags = kTlvFlagUnrecognized;
          break;
        }
        return_path_seen = true;
        const ReturnPathRequest rp = ParseReturnPath(t.value);
        if (rp.malformed) {
          malformed();
          break;
        }
        if (rp.control_code && !(*rp.control_code & kControlCodeReplyRequest)) return DropReason::kNoReplyRequested;
        const bool refused =
            (rp.return_address && RefusedReturnHop(*rp.return_address, in.local_address)) ||
            std::any_of(rp.srv6_segments.begin(), rp.srv6_segments.end(),
                        [&](const IpAddress& a) { return RefusedReturnHop(a, in.local_address); });
        const bool usable = rp.return_address || !rp.srv6_segments.empty() || rp.control_code;
        if (refused || (rp.unsupported && !usable)) {
          t.flags = kTlvFlagUnrecognized;  // not acted on: the reply takes the session's path
          break;
        }
        if (rp.unsupported) t.flags = kTlvFlagUnrecognized;  // acted on in part
        if (rp.return_address) out->reply_to = rp.return_address;
        if (!rp.srv6_segments.empty()) out->return_segments = rp.srv6_segments;
        break;
      }
      default:  // types this reflector does not know
        t.flags = kTlvFlagUnrecognized;
        break;
    }
    if (bad) {  // M on this one (U if its type is unknown too); the rest copied as it came
      r->trailer.assign(area.begin() + static_cast<long>(off), area.end());
      r->trailer[0] = kTlvFlagMalformed | (Understood(t.type, cfg.mode) ? 0 : kTlvFlagUnrecognized);
      if (t.type == kTlvFollowUpTelemetry) {  // §4.7: its Sequence Number and Timestamp zeroed
        const size_t end = std::min<size_t>(r->trailer.size(), 4 + std::min<size_t>(t.value.size(), 12));
        std::fill(r->trailer.begin() + 4, r->trailer.begin() + static_cast<long>(end), 0);
      }
      return std::nullopt;
    }
    r->tlvs.push_back(std::move(t));
  }
  return std::nullopt;
}

Reflector::PeerState& Reflector::PeerOf(Session& s, const Peer& p) {
  if (!s.owner) s.owner = p;
  auto it = s.peers.find(p);
  if (it == s.peers.end()) {
    if (s.peers.size() >= kMaxPeers) {
      auto oldest = s.peers.end();
      for (auto x = s.peers.begin(); x != s.peers.end(); ++x) {
        if (x->first != *s.owner && (oldest == s.peers.end() || x->second.last_seen < oldest->second.last_seen)) oldest = x;
      }
      if (oldest != s.peers.end()) s.peers.erase(oldest);
    }
    it = s.peers.emplace(p, PeerState{}).first;
  }
  it->second.last_seen = ++tick_;
  return it->second;
}

void Reflector::NoteTransmit(uint16_t ssid, const IpAddress& peer, uint16_t peer_port, uint32_t reflector_seq,
                             uint64_t tx_tai_ns) {
  std::lock_guard lock(mu_);
  auto s = sessions_.find(ssid);
  if (s == sessions_.end()) return;
  auto p = s->second.peers.find(Peer{peer, peer_port});
  if (p == s->second.peers.end()) return;
  p->second.sent_seq = reflector_seq;
  p->second.sent_tai_ns = tx_tai_ns;
}

std::variant<Reflection, DropReason> Reflector::Reflect(const ReceivedPacket& in) {
  std::lock_guard lock(mu_);
  auto drop = [&](DropReason r) {
    ++drops_[static_cast<int>(r)];
    return r;
  };
  // Both layouts put the SSID at a different place; the session says which mode applies.
  Session* session = nullptr;
  for (Mode m : {Mode::kUnauthenticated, Mode::kAuthenticated}) {
    auto ssid = PeekSsid(in.payload, m);
    if (!ssid) continue;
    auto it = sessions_.find(*ssid);
    if (it != sessions_.end() && it->second.config.mode == m) {
      session = &it->second;
      break;
    }
  }
  if (!session && any_) {
    if (auto ssid = PeekSsid(in.payload, any_->mode)) {
      size_t made = 0;
      auto oldest = sessions_.end();
      for (auto x = sessions_.begin(); x != sessions_.end(); ++x) {
        if (!x->second.first_sight) continue;
        ++made;
        if (oldest == sessions_.end() || x->second.last_seen < oldest->second.last_seen) oldest = x;
      }
      if (made >= kMaxSessionsOnFirstSight) sessions_.erase(oldest);
      ReflectorSessionConfig c = *any_;
      c.ssid = *ssid;
      session = &(sessions_[*ssid] = Session{.config = c, .first_sight = true});
    }
  }
  if (!session) {
    return drop(in.payload.size() < kUnauthenticatedLength ? DropReason::kTooShort
                                                           : DropReason::kUnknownSession);
  }
  session->last_seen = ++tick_;
  const ReflectorSessionConfig& cfg = session->config;
  const Key* key = cfg.mode == Mode::kAuthenticated ? &cfg.key : nullptr;
  auto parsed = ParseSender(in.payload, cfg.mode, key);
  if (auto* err = std::get_if<ParseError>(&parsed)) {
    switch (*err) {
      case ParseError::kTooShort: return drop(DropReason::kTooShort);
      default: return drop(DropReason::kHmacMismatch);
    }
  }
  auto& sp = std::get<ParsedSender>(parsed);
  const Peer peer{in.peer_address, in.peer_port};
  PeerState& ps = PeerOf(*session, peer);
  ++session->counters.received;
  ++ps.counters.received;

  Reflection out;
  out.ssid = cfg.ssid;
  out.mode = cfg.mode;
  out.format = cfg.format;
  if (key) out.key = *key;
  out.return_segments = cfg.return_segments;
  ReflectorPacket r;
  r.ssid = cfg.ssid;
  r.receive_timestamp = EncodeTimestamp(in.t2_tai_ns, cfg.format, clock_.tai_utc_offset_s);
  r.error_estimate = error_estimate_[static_cast<int>(cfg.format)];
  r.sender_seq = sp.packet.seq;
  r.sender_timestamp = sp.packet.timestamp;
  r.sender_error_estimate = sp.packet.error_estimate;
  r.sender_ttl = in.hop_limit;
  if (cfg.reflector_mode == ReflectorMode::kStateful) {
    // The shared counter's owner is whoever either path answered first (the XDP program
    // decides as much as this reflector does).
    std::optional<uint32_t> shared = shared_seq_ ? shared_seq_(cfg.ssid, peer.address, peer.port) : std::nullopt;
    if (shared) session->owner = peer;
    r.seq = shared ? *shared : ps.next_seq++;
  } else {
    r.seq = sp.packet.seq;
  }

  out.seq = r.seq;
  if (auto no_reply = ProcessTlvs(sp, in, cfg, ps, &r, &out)) return drop(*no_reply);
  if (r.trailer.empty()) r.trailer = sp.trailer;  // 1-3 bytes after the last TLV, as they came
  ++session->counters.reflected;
  ++ps.counters.reflected;
  out.reply = BuildReflector(r, cfg.mode, key);
  return out;
}

}  // namespace segwan::stamp
