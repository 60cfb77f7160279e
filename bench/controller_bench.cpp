// Controller benchmarks, one JSON object per measurement with its same-run baseline:
//  - ingest: STAMP records per second through poll -> statistics -> SQLite (one core), next to
//    a plain batched SQLite insert of the same rows into the same schema.
//  - rest_stats: requests per second and p99 latency of GET .../stats under wrk, next to
//    GET /api/v1/health on the same server (the HTTP stack alone).
#include <SQLiteCpp/SQLiteCpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <regex>

#include "../tests/unit/edge-os/fake_edges.h"
#include "edge-os/controller/controller.h"
#include "edge-os/northbound/rest.h"
#include "edge-os/store/store.h"
#include "store_write.h"
#include "segwan/clock.h"
#include "segwan/log.h"

namespace {

using namespace segwan::controller;
using nlohmann::json;
namespace pb = segwan::v1;
namespace fs = std::filesystem;

constexpr int kSessions = 10;
constexpr int kPolls = 200;
constexpr int kPerPoll = 50;  // records per session per poll (10 pps x 5 s of backlog)

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

pb::StampResult Record(uint32_t ssid, uint32_t seq, uint64_t t1) {
  pb::StampResult r;
  r.set_ssid(ssid);
  r.set_sender_seq(seq);
  r.set_reflector_seq(seq);
  r.set_t1_ns(t1);
  r.set_t2_ns(t1 + 12'000'000 + (seq % 17) * 1000);
  r.set_t3_ns(r.t2_ns() + 25'000);
  r.set_t4_ns(r.t3_ns() + 4'000'000 + (seq % 13) * 1000);
  r.set_sender_ttl(63);
  return r;
}

struct Setup {
  fs::path dir;
  std::unique_ptr<Store> store;
  testing::FakeConnector edges;
  std::unique_ptr<Controller> ctl;
  std::string tenant;
};

std::unique_ptr<Setup> Build(const fs::path& dir) {
  auto s = std::make_unique<Setup>();
  s->dir = dir;
  s->store = std::move(*Store::Open((dir / "segwan.db").string()));
  ControllerOptions o;
  o.device_token = "bench";
  o.auto_enable = true;
  o.start_threads = false;
  s->ctl = std::make_unique<Controller>(s->store.get(), &s->edges, o);
  s->ctl->SetOperatorToken("operator");
  for (const char* x : {"a", "b"}) (void)s->ctl->Register(testing::LabRegistration(x, "bench"), "bench");
  s->ctl->RunQueued();
  Principal op{true, ""};
  auto t = s->ctl->CreateTenant(op, "bench");
  s->tenant = t->second;
  Principal p{false, t->first.id};
  SliceRequest sr{.name = "bench", .sites = {{"edge-a", "lan0", ""}, {"edge-b", "lan0", ""}}};
  (void)s->ctl->CreateSlice(p, sr);
  for (int i = 0; i < kSessions; ++i) {
    SessionRequest q{.slice = "sl1", .sender = "edge-a", .reflector = "edge-b", .interval_ms = 100};
    (void)s->ctl->CreateSession(p, q);
  }
  return s;
}

// Feeds kPolls polls of kPerPoll records per session; returns records per second.
double Ingest(Setup& s, std::vector<std::vector<pb::StampResult>>& all) {
  auto edge = s.edges.Edge("edge-a");
  auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration feeding{};
  size_t n = 0;
  for (int p = 0; p < kPolls; ++p) {
    const auto f0 = std::chrono::steady_clock::now();
    for (int sess = 0; sess < kSessions; ++sess) {
      for (int k = 0; k < kPerPoll; ++k) edge->Push(sess + 1, all[sess][p * kPerPoll + k]);
    }
    feeding += std::chrono::steady_clock::now() - f0;  // the fake's side, not the controller's
    s.ctl->PollOnce();
    n += kSessions * kPerPoll;
  }
  return static_cast<double>(n) / (Seconds(std::chrono::steady_clock::now() - t0 - feeding));
}

// The same rows inserted plainly: one prepared statement, one transaction per poll's batch.
double PlainInsert(const fs::path& dir, std::vector<std::vector<pb::StampResult>>& all) {
  auto store = std::move(*Store::Open((dir / "plain.db").string()));  // same schema and pragmas
  store.reset();
  SQLite::Database db((dir / "plain.db").string(), SQLite::OPEN_READWRITE);
  db.exec("PRAGMA synchronous = NORMAL");
  SQLite::Statement ins(db, "INSERT INTO samples (session_id, seq, reflector_seq, t1, t2, t3, t4, ttl) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  auto t0 = std::chrono::steady_clock::now();
  size_t n = 0;
  for (int p = 0; p < kPolls; ++p) {
    SQLite::Transaction tx(db);
    for (int sess = 0; sess < kSessions; ++sess) {
      const std::string id = "ds" + std::to_string(sess + 1);
      for (int k = 0; k < kPerPoll; ++k) {
        const auto& r = all[sess][p * kPerPoll + k];
        ins.bind(1, id);
        ins.bind(2, static_cast<int64_t>(r.sender_seq()));
        ins.bind(3, static_cast<int64_t>(r.reflector_seq()));
        ins.bind(4, static_cast<int64_t>(r.t1_ns()));
        ins.bind(5, static_cast<int64_t>(r.t2_ns()));
        ins.bind(6, static_cast<int64_t>(r.t3_ns()));
        ins.bind(7, static_cast<int64_t>(r.t4_ns()));
        ins.bind(8, static_cast<int64_t>(r.sender_ttl()));
        ins.exec();
        ins.reset();
        ++n;
      }
    }
    tx.commit();
  }
  return static_cast<double>(n) / Seconds(std::chrono::steady_clock::now() - t0);
}

struct WrkResult {
  double rps = 0, p99_ms = 0;
  bool ok = false;
};

double ToMs(const std::string& v, const std::string& unit) {
  const double x = std::stod(v);
  return unit == "us" ? x / 1000 : unit == "s" ? x * 1000 : x;
}

WrkResult Wrk(int port, const std::string& path, const std::string& token) {
  const std::string cmd = "wrk -t1 -c8 -d3s --latency -H 'Authorization: Bearer " + token +
                          "' http://127.0.0.1:" + std::to_string(port) + path + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return {};
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) out += buf;
  pclose(f);
  WrkResult r;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) r.rps = std::stod(m[1]);
  if (std::regex_search(out, m, std::regex(R"(99%\s+([0-9.]+)(us|ms|s))"))) r.p99_ms = ToMs(m[1], m[2]);
  r.ok = r.rps > 0 && out.find("Non-2xx") == std::string::npos;
  if (!r.ok) std::cerr << out;
  return r;
}

}  // namespace

int main() {
  segwan::SetLogLevel(segwan::LogLevel::kWarn);
  const fs::path dir = fs::temp_directory_path() / ("segwan-bench-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto s = Build(dir);

  // Records one minute in the past, so intervals close as they would in steady state.
  const uint64_t base = static_cast<uint64_t>(segwan::NowUtcMs() - 60'000 - kPolls * kPerPoll * 10) * 1'000'000ULL;
  std::vector<std::vector<pb::StampResult>> all(kSessions);
  for (int sess = 0; sess < kSessions; ++sess) {
    for (uint32_t i = 0; i < kPolls * kPerPoll; ++i) all[sess].push_back(Record(sess + 1, i, base + i * 10'000'000ULL));
  }
  const double plain = PlainInsert(dir, all);
  const double ours = Ingest(*s, all);
  std::cout << json{{"bench", "ingest"}, {"records", kSessions * kPolls * kPerPoll}, {"sessions", kSessions},
                    {"records_per_s", std::lround(ours)}, {"baseline", "plain batched SQLite insert"},
                    {"baseline_records_per_s", std::lround(plain)}, {"ratio", ours / plain}, {"target_ratio", 0.5}}
                   .dump()
            << std::endl;

  // 400,000 rows spread over 5,000 sessions (one row each per batch) against the same rows
  // from 10 sessions (500 each per batch), into fresh files.
  {
    const double spread = StoreWrite((dir / "spread.db").string(), 5000, 1, 400000);
    const double dense = StoreWrite((dir / "dense.db").string(), 10, 500, 400'000);
    std::cout << json{{"bench", "store_write"}, {"rows", 400'000}, {"sessions", 5000}, {"rows_per_session_per_batch", 1},
                      {"rows_per_s", std::lround(spread)}, {"baseline", "the same rows from 10 sessions, 500 per batch"},
                      {"baseline_rows_per_s", std::lround(dense)}, {"ratio", spread / dense}}
                     .dump()
              << std::endl;
  }

  RestServer rest(s->ctl.get(), "");
  auto port = rest.Start("127.0.0.1", 0);
  if (!port || system("command -v wrk >/dev/null") != 0) {
    std::cout << json{{"bench", "rest_stats"}, {"skipped", "wrk is not installed"}}.dump() << std::endl;
  } else {
    const auto base_r = Wrk(*port, "/api/v1/health", s->tenant);
    const auto stats_r = Wrk(*port, "/api/v1/delay-sessions/ds1/stats?since=1h", s->tenant);
    std::cout << json{{"bench", "rest_stats"}, {"samples_in_session", kPolls * kPerPoll},
                      {"requests_per_s", std::lround(stats_r.rps)}, {"p99_ms", stats_r.p99_ms},
                      {"baseline", "GET /api/v1/health on the same server"},
                      {"baseline_requests_per_s", std::lround(base_r.rps)}, {"baseline_p99_ms", base_r.p99_ms},
                      {"ratio", base_r.rps > 0 ? stats_r.rps / base_r.rps : 0}, {"ok", stats_r.ok && base_r.ok}}
                     .dump()
              << std::endl;
  }
  rest.Stop();
  s.reset();
  fs::remove_all(dir);
  return 0;
}
