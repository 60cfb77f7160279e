// The controller as the dashboard sees it, with fake edges: the real Controller, REST server
// and SQLite store; three lab-like edges registered, and STAMP results made up for every
// running sender session (about 15 ms out, 5 ms back, a little jitter, 1% loss outbound;
// a steering probe via the core SID p1 sees 8 ms out).
// For browser tests, which need no root and no lab.
//
//   segwan-fake-controller --data-dir DIR --port N --web-root DIR
#include <signal.h>

#include <cstdio>
#include <random>
#include <thread>

#include "../unit/edge-os/fake_edges.h"
#include "edge-os/controller/controller.h"
#include "edge-os/controller/tokens.h"
#include "edge-os/northbound/rest.h"
#include "edge-os/store/store.h"
#include "segwan/cli.h"
#include "segwan/clock.h"
#include "segwan/log.h"

using namespace segwan::controller;

int main(int argc, char** argv) {
  segwan::FlagSet f("segwan-fake-controller", "edge-os with fake edges, for browser tests");
  f.AddString("data-dir", "/tmp/segwan-fake", "store and operator token");
  f.AddInt("port", 18090, "REST port on 127.0.0.1");
  f.AddString("web-root", "", "dashboard files");
  f.AddString("log-level", "warn", "debug, info, warn or error");
  if (auto code = segwan::StartCommandLine(f, argc, argv)) return *code;
  const std::string dir = f.GetString("data-dir");
  auto token = LoadOrCreateToken(dir + "/operator.token");
  auto store = Store::Open(dir + "/segwan.db");
  if (!token || !store) {
    std::fprintf(stderr, "cannot prepare %s\n", dir.c_str());
    return 1;
  }
  testing::FakeConnector edges;
  ControllerOptions o;
  o.device_token = "fake";
  o.auto_enable = true;
  o.aggregate_interval_ms = 5000;
  o.poll_interval = std::chrono::milliseconds(250);
  o.core_sids = {{"p1", {"fc00:0:f1::e"}}};
  Controller ctl(store->get(), &edges, o);
  ctl.SetOperatorToken(*token);
  std::map<std::string, std::string> sessions;  // device -> registration session, to heartbeat
  for (const char* x : {"a", "b", "c"}) {
    auto r = ctl.Register(testing::LabRegistration(x, "fake"), "fake");
    if (r) sessions[std::string("edge-") + x] = r->session_id();
  }
  RestServer rest(&ctl, f.GetString("web-root"));
  auto port = rest.Start("127.0.0.1", static_cast<int>(f.GetInt("port")));
  if (!port) {
    std::fprintf(stderr, "%s\n", port.error().ToString().c_str());
    return 1;
  }
  ctl.Start();

  const sigset_t stop = segwan::BlockStopSignals();
  std::atomic<bool> done{false};
  std::thread results([&] {
    std::mt19937 rng(7);
    std::normal_distribution<double> jitter(0.0, 0.2);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    std::map<uint32_t, uint32_t> seq, rseq;
    int tick = 0;
    while (!done) {
      if (++tick % 10 == 0) {
        for (const auto& [id, sid] : sessions) ctl.Heartbeat(id, sid);
      }
      std::map<std::pair<std::string, uint32_t>, std::string> candidate;  // (sender, ssid)
      for (const auto& v : ctl.Sessions(Principal{true, ""})) candidate[{v.session.sender, v.session.ssid}] = v.session.candidate;
      for (const char* x : {"edge-a", "edge-b", "edge-c"}) {
        auto e = edges.Edge(x);
        for (uint32_t ssid : e->RunningSenders()) {
          const double out_ms = candidate[{x, ssid}] == "p1" ? 8.0 : 15.0;
          const uint32_t s = seq[ssid]++;
          if (coin(rng) < 0.01) continue;  // lost on the way out
          const uint64_t t1 = segwan::NowTaiNs() - 20'000'000;
          segwan::v1::StampResult r;
          r.set_ssid(ssid);
          r.set_sender_seq(s);
          r.set_reflector_seq(rseq[ssid]++);
          r.set_t1_ns(t1);
          r.set_t2_ns(t1 + static_cast<uint64_t>((out_ms + jitter(rng)) * 1e6));
          r.set_t3_ns(r.t2_ns() + 30'000);
          r.set_t4_ns(r.t3_ns() + static_cast<uint64_t>((5.0 + jitter(rng) / 2) * 1e6));
          e->Push(ssid, r);
        }
      }
      // Alternate marking: each ingress flow counts 10 packets a tick in its colour and
      // switches every period; the flow's egress end mirrors it with 2% lost.
      const uint64_t now_ns = segwan::NowTaiNs();
      std::map<std::vector<std::string>, testing::FakeEdge::LossFlow> sent;
      for (const char* x : {"edge-a", "edge-b", "edge-c"}) {
        edges.Edge(x)->WithLoss([&](auto& flows) {
          for (auto& [key, fl] : flows) {
            if (key.second != segwan::v1::LOSS_DIRECTION_INGRESS) continue;
            if (fl.switched_at_ns == 0) fl.switched_at_ns = now_ns;
            if (now_ns - fl.switched_at_ns >= static_cast<uint64_t>(fl.period_ms) * 1'000'000ULL) {
              fl.colour ^= 1;
              fl.switched_at_ns = now_ns;
              ++fl.period_index;
            }
            fl.packets[fl.colour] += 10;
            sent[key.first] = fl;
          }
        });
      }
      for (const char* x : {"edge-a", "edge-b", "edge-c"}) {
        edges.Edge(x)->WithLoss([&](auto& flows) {
          for (auto& [key, fl] : flows) {
            auto it = sent.find(key.first);
            if (key.second != segwan::v1::LOSS_DIRECTION_EGRESS || it == sent.end()) continue;
            for (int c = 0; c < 2; ++c) fl.packets[c] = it->second.packets[c] - it->second.packets[c] / 50;
          }
        });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::printf("listening on %d\n", *port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  done = true;
  results.join();
  rest.Stop();
  ctl.Stop();
  return 0;
}
