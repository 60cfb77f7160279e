#include "edge-manager/stamp/reflector.h"

#include <cstring>

namespace segwan::stamp {

const char* DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kTooShort: return "too-short";
    case DropReason::kTlvOverrun: return "tlv-overrun";
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
  sessions_[s.ssid] = Session{s, 0, {}};
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

void Reflector::SetSharedSequence(std::function<std::optional<uint32_t>(uint16_t)> next) {
  std::lock_guard lock(mu_);
  shared_seq_ = std::move(next);
}

void Reflector::SetClock(Clock c) {
  std::lock_guard lock(mu_);
  clock_ = c;
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
      ReflectorSessionConfig c = *any_;
      c.ssid = *ssid;
      session = &(sessions_[*ssid] = Session{c, 0, {}});
    }
  }
  if (!session) {
    return drop(in.payload.size() < kUnauthenticatedLength ? DropReason::kTooShort
                                                           : DropReason::kUnknownSession);
  }
  const ReflectorSessionConfig& cfg = session->config;
  const Key* key = cfg.mode == Mode::kAuthenticated ? &cfg.key : nullptr;
  auto parsed = ParseSender(in.payload, cfg.mode, key);
  if (auto* err = std::get_if<ParseError>(&parsed)) {
    switch (*err) {
      case ParseError::kTooShort: return drop(DropReason::kTooShort);
      case ParseError::kTlvOverrun: return drop(DropReason::kTlvOverrun);
      default: return drop(DropReason::kHmacMismatch);
    }
  }
  auto& sp = std::get<ParsedSender>(parsed);
  ++session->counters.received;

  Reflection out;
  out.ssid = cfg.ssid;
  out.return_segments = cfg.return_segments;
  ReflectorPacket r;
  r.ssid = cfg.ssid;
  r.receive_timestamp = EncodeTimestamp(in.t2_tai_ns, cfg.format, clock_.tai_utc_offset_s);
  r.error_estimate = ErrorEstimate::ForError(clock_.error_ns, clock_.synchronized, cfg.format).Encode();
  r.sender_seq = sp.packet.seq;
  r.sender_timestamp = sp.packet.timestamp;
  r.sender_error_estimate = sp.packet.error_estimate;
  r.sender_ttl = in.hop_limit;
  if (cfg.reflector_mode == ReflectorMode::kStateful) {
    std::optional<uint32_t> shared = shared_seq_ ? shared_seq_(cfg.ssid) : std::nullopt;
    r.seq = shared ? *shared : session->next_seq++;
  } else {
    r.seq = sp.packet.seq;
  }

  for (Tlv t : sp.packet.tlvs) {
    switch (t.type) {
      case kTlvExtraPadding:
        break;
      case kTlvClassOfService: {
        auto cos = ClassOfService::Decode(t.value);
        if (!cos) {
          t.flags |= kTlvFlagMalformed;
          break;
        }
        cos->dscp2 = in.traffic_class >> 2;
        cos->ecn = in.traffic_class & 0x3;
        cos->rp = 0;  // the reply will carry DSCP1
        out.dscp = cos->dscp1;
        t.value = cos->Encode();
        break;
      }
      case kTlvTimestampInfo:
        if (t.value.size() < 4) {
          t.flags |= kTlvFlagMalformed;
          break;
        }
        t.value[0] = clock_.synchronized ? clock_.sync_source : kSyncFreeRunning;
        t.value[1] = clock_.method;
        t.value[2] = t.value[0];
        t.value[3] = clock_.method;
        break;
      case kTlvDirectMeasurement: {
        if (t.value.size() != 12) {
          t.flags |= kTlvFlagMalformed;
          break;
        }
        const uint32_t rx = static_cast<uint32_t>(session->counters.received);
        const uint32_t tx = static_cast<uint32_t>(session->counters.reflected + 1);
        for (int i = 0; i < 4; ++i) {
          t.value[4 + i] = static_cast<uint8_t>(rx >> (24 - 8 * i));
          t.value[8 + i] = static_cast<uint8_t>(tx >> (24 - 8 * i));
        }
        break;
      }
      case kTlvHmac:
        if (key && !sp.tlv_hmac_ok) t.flags |= kTlvFlagIntegrity;
        break;  // recomputed over the reply by BuildReflector
      case kTlvDestinationNodeAddress: {
        const bool v4 = t.value.size() == 4, v6 = t.value.size() == 16;
        if (!v4 && !v6) {
          t.flags |= kTlvFlagMalformed;
          break;
        }
        IpAddress a{v4 ? AF_INET : AF_INET6, {}};
        std::memcpy(a.bytes.data(), t.value.data(), t.value.size());
        if (!(a == in.local_address)) t.flags |= kTlvFlagUnrecognized;  // not for us
        break;
      }
      case kTlvReturnPath: {
        const ReturnPathRequest rp = ParseReturnPath(t.value);
        if (rp.malformed) {
          t.flags |= kTlvFlagMalformed;
          break;
        }
        if (rp.control_code && *rp.control_code == kControlCodeNoReply) {
          return drop(DropReason::kNoReplyRequested);
        }
        if (rp.return_address) out.reply_to = rp.return_address;
        if (!rp.srv6_segments.empty()) out.return_segments = rp.srv6_segments;
        break;
      }
      default:  // Location, Access Report, Follow-Up Telemetry and unknown types
        t.flags |= kTlvFlagUnrecognized;
        break;
    }
    r.tlvs.push_back(std::move(t));
  }
  ++session->counters.reflected;
  out.reply = BuildReflector(r, cfg.mode, key);
  return out;
}

}  // namespace segwan::stamp
