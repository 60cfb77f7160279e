// segwan-stamp: run a STAMP session by hand, ping-like, with the user-space engine.
//   segwan-stamp reflect [--listen ADDR] [--port 862] [--return-segs SID,SID] [--stateful]
//                        [--auth KEYFILE] [--ptp]
//   segwan-stamp send PEER [-c COUNT] [-i SECONDS] [--segs SID,SID] [--return-segs SID,SID]
//                        [--ssid N] [--source ADDR] [--auth KEYFILE] [--ptp]
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>

#include "edge-manager/agent/config.h"
#include "edge-manager/stamp/engine.h"
#include "edge-manager/stamp/reflector.h"
#include "edge-manager/stamp/udp.h"
#include "segwan/cli.h"
#include "segwan/text.h"

namespace {

using namespace segwan;
using namespace segwan::stamp;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

Result<std::vector<IpAddress>> SidList(const std::string& flag, const std::string& text) {
  std::vector<IpAddress> out;
  for (const auto& item : segwan::SplitList(text)) {
    auto a = ParseIpv6(item);
    if (!a) return FieldError(flag, "'" + item + "' is not an IPv6 address");
    out.push_back(*a);
  }
  if (out.size() > 16) return FieldError(flag, "at most 16 SIDs");
  return out;
}

Result<std::optional<Key>> ReadKey(const std::string& path) {
  if (path.empty()) return std::optional<Key>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return FieldError("--auth", "cannot read " + path);
  Key k((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
  if (k.size() < 16) return FieldError("--auth", "the key must be at least 16 bytes");
  return std::optional<Key>(k);
}

// Running statistics (Welford) of one delay series, in milliseconds.
struct Series {
  uint64_t n = 0;
  double mean = 0, m2 = 0, min = std::numeric_limits<double>::infinity(), max = -min;
  void Add(double x) {
    ++n;
    const double d = x - mean;
    mean += d / static_cast<double>(n);
    m2 += d * (x - mean);
    min = std::min(min, x);
    max = std::max(max, x);
  }
  double Stddev() const { return n > 1 ? std::sqrt(m2 / static_cast<double>(n - 1)) : 0.0; }
  void Print(const char* name) const {
    if (n == 0) return;
    std::printf("%-6s min/avg/max/stddev = %.3f/%.3f/%.3f/%.3f ms\n", name, min, mean, max, Stddev());
  }
};

int Fail(const Error& e) {
  std::fprintf(stderr, "segwan-stamp: %s\n", e.ToString().c_str());
  return 2;
}

int Reflect(const FlagSet& f) {
  auto listen = ParseIpv6(f.GetString("listen"));
  if (!listen) return Fail(FieldError("--listen", "not an IPv6 address"));
  auto ret = SidList("--return-segs", f.GetString("return-segs"));
  if (!ret) return Fail(ret.error());
  auto key = ReadKey(f.GetString("auth"));
  if (!key) return Fail(key.error());
  // The agent's user-space engine, any SSID: an AF_PACKET ring for base test packets where
  // this process may open one, the UDP socket for the rest.
  UserspaceEngine engine(kDefaultResultQueue, !f.GetBool("no-ring"));
  engine.AcceptAnyReflectorSession({.mode = *key ? Mode::kAuthenticated : Mode::kUnauthenticated,
                                    .key = key->value_or(Key{}),
                                    .reflector_mode = f.GetBool("stateful") ? ReflectorMode::kStateful
                                                                            : ReflectorMode::kStateless,
                                    .format = f.GetBool("ptp") ? TimestampFormat::kPtp : TimestampFormat::kNtp,
                                    .return_segments = *ret});
  const auto port = static_cast<uint16_t>(f.GetInt("port"));
  if (auto st = engine.InitReflector(*listen, port); !st) return Fail(st.error());
  std::printf("reflecting STAMP on [%s]:%u (%s, %s)\n", listen->ToString().c_str(), port,
              *key ? "authenticated" : "unauthenticated", f.GetBool("stateful") ? "stateful" : "stateless");
  std::fflush(stdout);
  while (!g_stop) pause();
  for (const auto& [name, n] : engine.Counters()) {
    if (n) std::printf("%s %llu\n", name.c_str(), static_cast<unsigned long long>(n));
  }
  return 0;
}

int Send(const FlagSet& f, const std::string& peer_text) {
  auto peer = ParseIpv6(peer_text);
  if (!peer) return Fail(FieldError("PEER", "'" + peer_text + "' is not an IPv6 address"));
  auto source = ParseIpv6(f.GetString("source"));
  if (!source) return Fail(FieldError("--source", "not an IPv6 address"));
  auto segs = SidList("--segs", f.GetString("segs"));
  if (!segs) return Fail(segs.error());
  auto ret = SidList("--return-segs", f.GetString("return-segs"));
  if (!ret) return Fail(ret.error());
  auto key = ReadKey(f.GetString("auth"));
  if (!key) return Fail(key.error());
  const int64_t count = f.GetInt("c");
  const double interval_s = std::atof(f.GetString("i").c_str());
  if (!(interval_s >= 0.001) || interval_s > 60) return Fail(FieldError("-i", "must be 0.001 to 60 seconds"));
  const int64_t ssid = f.GetInt("ssid");
  if (ssid < 1 || ssid > 65535) return Fail(FieldError("--ssid", "must be 1 to 65535"));
  const Mode mode = *key ? Mode::kAuthenticated : Mode::kUnauthenticated;
  const TimestampFormat fmt = f.GetBool("ptp") ? TimestampFormat::kPtp : TimestampFormat::kNtp;
  const Key* k = *key ? &**key : nullptr;
  const int32_t offset = TaiUtcOffset();
  auto sock = StampSocket::Open(*source, 0);
  if (!sock) return Fail(sock.error());
  const uint16_t port = static_cast<uint16_t>(f.GetInt("port"));
  std::vector<Tlv> tlvs;
  if (!ret->empty()) tlvs.push_back(ReturnPathSrv6Tlv(*ret));
  if (k) tlvs.push_back(Tlv{0, kTlvHmac, std::vector<uint8_t>(kHmacLength, 0)});

  std::printf("STAMP to %s, %s, %s timestamps%s\n", peer->ToString().c_str(),
              k ? "authenticated" : "unauthenticated", fmt == TimestampFormat::kPtp ? "PTPv2" : "NTP",
              segs->empty() ? "" : ", via an SRH");
  Series direct, back, rtt;
  uint64_t sent = 0, received = 0;
  int64_t max_reflector_seq = -1;
  bool stateful_seen = false;  // a reflector number differing from ours: its own count
  const uint64_t ee = ErrorEstimate::ForError(1000, false, fmt).Encode();
  const int64_t interval_ns = static_cast<int64_t>(interval_s * 1e9);
  int64_t next = static_cast<int64_t>(NowTaiNs());
  const int64_t grace_ns = 1'000'000'000;
  int64_t deadline = -1;
  while (!g_stop) {
    const int64_t now = static_cast<int64_t>(NowTaiNs());
    if ((count == 0 || static_cast<int64_t>(sent) < count) && now >= next) {
      SenderPacket p{.seq = static_cast<uint32_t>(sent), .error_estimate = static_cast<uint16_t>(ee),
                     .ssid = static_cast<uint16_t>(ssid), .tlvs = tlvs};
      p.timestamp = EncodeTimestamp(NowTaiNs(), fmt, offset);  // T1 as late as user space can
      const auto bytes = BuildSender(p, mode, k);
      if (auto st = sock->SendTo(bytes, *peer, port, *segs, std::nullopt); !st) {
        std::fprintf(stderr, "%s\n", st.error().message.c_str());
      }
      ++sent;
      next += interval_ns;
      if (count != 0 && static_cast<int64_t>(sent) == count) deadline = now + grace_ns;
    }
    if (deadline >= 0 && now >= deadline) break;
    const int64_t wake = deadline >= 0 ? deadline : next;
    pollfd pfd{sock->fd(), POLLIN, 0};
    const int wait_ms = static_cast<int>(std::max<int64_t>(0, (wake - now) / 1'000'000));
    if (poll(&pfd, 1, wait_ms) <= 0) continue;
    while (auto d = sock->Receive(offset)) {
      if (!*d) break;
      auto parsed = ParseReflector((*d)->payload, mode, k);
      if (!std::holds_alternative<ReflectorPacket>(parsed)) {
        std::fprintf(stderr, "discarded a reply: %s\n", ParseErrorName(std::get<ParseError>(parsed)));
        continue;
      }
      const auto& r = std::get<ReflectorPacket>(parsed);
      const auto times = DecodeReplyTimes(r.sender_timestamp, ErrorEstimate{.format = fmt}.Encode(),
                                          r.receive_timestamp, r.timestamp, r.error_estimate, offset);
      const double t1 = static_cast<double>(times.t1);
      const double t2 = static_cast<double>(times.t2);
      const double t3 = static_cast<double>(times.t3);
      const double t4 = static_cast<double>((*d)->rx_tai_ns);
      const double dd = (t2 - t1) / 1e6, rd = (t4 - t3) / 1e6, rt = ((t4 - t1) - (t3 - t2)) / 1e6;
      direct.Add(dd);
      back.Add(rd);
      rtt.Add(rt);
      ++received;
      max_reflector_seq = std::max<int64_t>(max_reflector_seq, r.seq);
      if (r.seq != r.sender_seq) stateful_seen = true;
      std::printf("seq=%u reflector_seq=%u direct=%.3f ms return=%.3f ms rtt=%.3f ms ttl=%u\n",
                  r.sender_seq, r.seq, dd, rd, rt, r.sender_ttl);
      std::fflush(stdout);
    }
  }
  std::printf("--- %s STAMP statistics ---\n", peer->ToString().c_str());
  const double loss = sent ? 100.0 * static_cast<double>(sent - received) / static_cast<double>(sent) : 0;
  std::printf("%llu sent, %llu received, %.1f%% loss\n", static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(received), loss);
  // With a stateful reflector its sequence numbers count what it received: the loss splits.
  const uint64_t reached = static_cast<uint64_t>(max_reflector_seq + 1);
  if (received < sent && !stateful_seen) {
    std::printf("loss by direction: unknown (the reflector echoes our sequence numbers)\n");
  } else if (max_reflector_seq >= 0 && reached <= sent && reached >= received) {
    std::printf("loss by direction: direct %llu, return %llu\n",
                static_cast<unsigned long long>(sent - reached),
                static_cast<unsigned long long>(reached - received));
  }
  direct.Print("direct");
  back.Print("return");
  rtt.Print("rtt");
  return received > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  FlagSet f("segwan-stamp",
            "Runs a STAMP session by hand with the user-space engine.\n"
            "  segwan-stamp reflect [flags]\n"
            "  segwan-stamp send PEER [flags]");
  f.AddString("listen", "::", "reflect: address to listen on");
  f.AddInt("port", kDefaultPort, "reflector UDP port");
  f.AddString("source", "::", "send: source address");
  f.AddInt("c", 5, "send: packets to send (0 = until Ctrl-C)");
  f.AddString("i", "1", "send: seconds between packets");
  f.AddInt("ssid", 1, "send: session id (1-65535)");
  f.AddString("segs", "", "send: SIDs to the reflector, comma separated (an SRH)");
  f.AddString("return-segs", "", "SIDs back to the sender (reflect: default path; send: asked for with a Return Path TLV)");
  f.AddString("auth", "", "authenticated mode with the HMAC key in this file");
  f.AddBool("ptp", false, "PTPv2 timestamps instead of NTP");
  f.AddBool("stateful", false, "reflect: count the reflector's own sequence numbers");
  f.AddBool("no-ring", false, "reflect: UDP sockets only, no AF_PACKET ring");
  f.AddString("log-level", "info", "debug, info, warn or error");
  // ping-style short options
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-c" || a == "-i") a = "-" + a;
    args.push_back(a);
  }
  std::vector<const char*> av = {argv[0]};
  for (auto& a : args) av.push_back(a.c_str());
  if (auto code = StartCommandLine(f, static_cast<int>(av.size()), av.data())) return *code;
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const auto& pos = f.Positional();
  if (pos.size() == 1 && pos[0] == "reflect") return Reflect(f);
  if (pos.size() == 2 && pos[0] == "send") return Send(f, pos[1]);
  std::fputs(f.Usage().c_str(), stderr);
  return 2;
}
