// Fuzz target: the user-space STAMP reflector, fed any UDP payload by anyone. The first input
// byte picks how the reflector is configured and what the packet seemed to arrive with; the
// rest is the payload. Beyond "no crash, no undefined behaviour" (the sanitizers' part), every
// reply must be what a conforming Session-Sender can read:
//   - as long as the test packet (RFC 8762 §4.3 and RFC 8972 §4: the reflected packet keeps the
//     test packet's size),
//   - parsed by ParseReflector in the session's mode, its base HMAC verifying with the session's
//     key in authenticated mode.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <variant>

#include "edge-manager/stamp/reflector.h"
#include "edge-manager/stamp/wire.h"

namespace {

using namespace segwan;
using namespace segwan::stamp;

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

const Key kKey(32, 0x5e);
size_t g_replies = 0;  // replies whose invariants were checked

// Four ways to run a reflector: any SSID unauthenticated, configured sessions of both modes
// with a return path, any SSID authenticated and stateful, an unsynchronised PTP clock.
std::unique_ptr<Reflector> Make(uint8_t variant) {
  Reflector::Clock clock{.tai_utc_offset_s = 37, .synchronized = (variant & 3) != 3,
                         .sync_source = (variant & 3) == 3 ? kSyncFreeRunning : kSyncNtp};
  auto r = std::make_unique<Reflector>(clock);
  ReflectorSessionConfig c;
  switch (variant & 3) {
    case 0:
      r->AcceptAnySession(c);
      break;
    case 1:
      c.ssid = 1;
      c.reflector_mode = ReflectorMode::kStateful;
      c.format = TimestampFormat::kPtp;
      r->AddSession(c);
      c.ssid = 2;
      c.mode = Mode::kAuthenticated;
      c.key = kKey;
      c.return_segments = {*ParseIp("fc00:0:1::1"), *ParseIp("fc00:0:a::1")};
      r->AddSession(c);
      break;
    case 2:
      c.mode = Mode::kAuthenticated;
      c.key = kKey;
      c.reflector_mode = ReflectorMode::kStateful;
      r->AcceptAnySession(c);
      break;
    default:
      c.format = TimestampFormat::kPtp;
      r->AcceptAnySession(c);
      break;
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static std::unique_ptr<Reflector> reflectors[4] = {Make(0), Make(1), Make(2), Make(3)};
  const uint8_t pick = data[0];
  Reflector& r = *reflectors[pick & 3];
  const std::span<const uint8_t> payload(data + 1, size - 1);
  static const IpAddress kLocal = *ParseIp("fc00:0:b::1"), kPeer = *ParseIp("fc00:0:a::1");
  ReceivedPacket in{.payload = payload,
                    .t2_tai_ns = 1'800'000'000'000'000'000ULL + size,
                    .hop_limit = static_cast<uint8_t>(pick | 1),
                    .traffic_class = static_cast<uint8_t>(pick & 0xfc),
                    .local_address = kLocal,
                    .local_port = kDefaultPort,
                    .peer_address = kPeer,
                    .peer_port = static_cast<uint16_t>(40000 + (pick >> 4))};
  auto out = r.Reflect(in);
  auto* refl = std::get_if<Reflection>(&out);
  if (!refl) return 0;
  PatchT3(refl->reply, refl->mode, EncodeTimestamp(in.t2_tai_ns + 1000, refl->format, 37),
          refl->mode == Mode::kAuthenticated ? &refl->key : nullptr);
  if (refl->reply.size() != payload.size()) Broken("the reply is not as long as the test packet");
  const Key* key = refl->mode == Mode::kAuthenticated ? &refl->key : nullptr;
  if (std::holds_alternative<ParseError>(ParseReflector(refl->reply, refl->mode, key)))
    Broken("a Session-Sender cannot parse the reply");
  ++g_replies;
  if (refl->follow_up) r.NoteTransmit(refl->ssid, kPeer, in.peer_port, refl->seq, in.t2_tai_ns + 2000);
  return 0;
}

extern "C" const char* SegwanFuzzSummary() {
  static std::string s;
  s = std::to_string(g_replies) + " replies checked";
  return s.c_str();
}
