// Controller at scale: N simulated edges (real gRPC, one server in this process, each edge on
// an address of its own in 127/8 and told apart by the call's authority) with M sender
// sessions each at R packets/s, against the real edge-os binary with its SQLite store (or,
// --store postgresql, a PostgreSQL started for the run: fsync on, a database per mode). For
// each result mode (poll, the baseline, then stream) and with one edge frozen or not, one
// JSON line: records/s ingested, lag from a record's T4 to its visibility through
// GET .../results (p50, p99), controller CPU seconds per 100k records, RSS per 1,000
// sessions, REST p99 of GET .../stats under the load and on the same server idle.
//
//   bench_controller_scale EDGE_OS [--edges N] [--sessions M] [--rate R] [--window S]
//                          [--batch-ms B] [--modes poll,stream] [--pin no] [--store postgresql]
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "postgres.h"
#include "segwan/clock.h"
#include "segwan/v1/edge.grpc.pb.h"
#include "segwan/v1/registration.grpc.pb.h"

namespace {

namespace pb = segwan::v1;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Args {
  std::string edge_os;
  int edges = 1000, sessions = 5, rate = 10, window_s = 20;
  std::string batch_ms = "250";
  // The target is "on one controller core": edge-os on CPU 0, the simulated edges on the
  // others (when there are others).
  bool pin = true;
  // poll: the default poll interval (1 s); poll-fast: polled as often as stream batches are
  // sent (the same freshness); stream.
  std::vector<std::string> modes = {"poll", "poll-fast", "stream"};
  std::string store = "sqlite";
  std::string store_uri;  // postgresql: the database of the current mode
};

std::string EdgeId(int i) { return "e" + std::to_string(i); }
std::string EdgeHost(int i) { return "127.2." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1); }

// ---- the simulated edges --------------------------------------------------------------------
struct SimSession {
  uint32_t interval_ms = 100;
  bool running = false;
  int64_t start_tai = 0;
  uint64_t taken = 0;  // records handed out (polled or put in the log)
};

struct SimEdge {
  std::mutex mu;
  std::map<uint32_t, SimSession> senders;
  std::map<std::string, pb::Slice> slices;
  std::atomic<bool> frozen{false};
  uint64_t log_id = 0, next_cursor = 1;
  std::deque<pb::StampResult> log;  // not yet acknowledged
  std::atomic<uint64_t> generation{0};
};

// Records of a session whose T4 has passed, from where it stopped last time.
void TakeDue(SimSession& s, uint32_t ssid, int64_t now_tai, std::vector<pb::StampResult>* out) {
  if (!s.running) return;
  const int64_t step = static_cast<int64_t>(s.interval_ms) * 1'000'000;
  while (true) {
    const int64_t t1 = s.start_tai + static_cast<int64_t>(s.taken) * step;
    const int64_t t4 = t1 + 10'020'000;  // 5 ms each way, 20 us in the reflector
    if (t4 > now_tai) break;
    pb::StampResult r;
    r.set_ssid(ssid);
    r.set_sender_seq(static_cast<uint32_t>(s.taken));
    r.set_reflector_seq(static_cast<uint32_t>(s.taken));
    r.set_t1_ns(static_cast<uint64_t>(t1));
    r.set_t2_ns(static_cast<uint64_t>(t1 + 5'000'000 + (s.taken % 7) * 1000));
    r.set_t3_ns(r.t2_ns() + 20'000);
    r.set_t4_ns(static_cast<uint64_t>(t4));
    r.set_sender_ttl(63);
    out->push_back(std::move(r));
    ++s.taken;
  }
}

class SimService final : public pb::EdgeManager::Service {
 public:
  explicit SimService(int n) : edges_(static_cast<size_t>(n)) {
    for (int i = 0; i < n; ++i) {
      by_host_[EdgeHost(i)] = i;
      edges_[static_cast<size_t>(i)] = std::make_unique<SimEdge>();
      edges_[static_cast<size_t>(i)]->log_id = 1000 + static_cast<uint64_t>(i);
    }
  }
  SimEdge& Edge(int i) { return *edges_[static_cast<size_t>(i)]; }

  grpc::Status GetState(grpc::ServerContext* c, const pb::GetStateRequest*, pb::GetStateResponse* out) override {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    std::lock_guard l(e->mu);
    for (const auto& [id, s] : e->slices) *out->add_slices() = s;
    return grpc::Status::OK;
  }
  grpc::Status ApplySlice(grpc::ServerContext* c, const pb::ApplySliceRequest* r, pb::ApplySliceResponse*) override {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    std::lock_guard l(e->mu);
    e->slices[r->slice().id()] = r->slice();
    return grpc::Status::OK;
  }
  grpc::Status RemoveSlice(grpc::ServerContext* c, const pb::RemoveSliceRequest* r, pb::RemoveSliceResponse*) override {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    std::lock_guard l(e->mu);
    e->slices.erase(r->id());
    return grpc::Status::OK;
  }
  grpc::Status Init(grpc::ServerContext* c, const pb::InitRequest*, pb::InitResponse*) override {
    return Of(c) ? grpc::Status::OK : Unknown();
  }
  grpc::Status CreateStampSession(grpc::ServerContext* c, const pb::CreateStampSessionRequest* r,
                                  pb::CreateStampSessionResponse*) override {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    if (r->role() != pb::STAMP_ROLE_SENDER) return grpc::Status::OK;
    std::lock_guard l(e->mu);
    if (e->senders.count(r->params().ssid())) return {grpc::StatusCode::ALREADY_EXISTS, "exists"};
    e->senders[r->params().ssid()].interval_ms = std::max<uint32_t>(1, r->params().interval_ms());
    return grpc::Status::OK;
  }
  grpc::Status StartStampSession(grpc::ServerContext* c, const pb::StartStampSessionRequest* r,
                                 pb::StartStampSessionResponse*) override {
    return Run(c, r->session(), true);
  }
  grpc::Status StopStampSession(grpc::ServerContext* c, const pb::StopStampSessionRequest* r,
                                pb::StopStampSessionResponse*) override {
    return Run(c, r->session(), false);
  }
  grpc::Status DestroyStampSession(grpc::ServerContext* c, const pb::DestroyStampSessionRequest* r,
                                   pb::DestroyStampSessionResponse*) override {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    std::lock_guard l(e->mu);
    if (r->session().role() == pb::STAMP_ROLE_SENDER) e->senders.erase(r->session().ssid());
    return grpc::Status::OK;
  }
  grpc::Status GetStampSessionResults(grpc::ServerContext* c, const pb::GetStampSessionResultsRequest* r,
                                      pb::GetStampSessionResultsResponse* out) override {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    std::lock_guard l(e->mu);
    auto it = e->senders.find(r->ssid());
    if (it == e->senders.end()) return {grpc::StatusCode::NOT_FOUND, "no session"};
    std::vector<pb::StampResult> due;
    TakeDue(it->second, r->ssid(), static_cast<int64_t>(segwan::NowTaiNs()), &due);
    for (auto& x : due) *out->add_results() = std::move(x);
    out->set_packets_sent(it->second.taken);
    out->set_running(it->second.running);
    return grpc::Status::OK;
  }
  // The agent's protocol, with a batch clock of the delay the controller asks for: records with cursors in a log kept until
  // acknowledged, the resume point honoured, a status of every sender once a second.
  grpc::Status WatchStampResults(grpc::ServerContext* c,
                                 grpc::ServerReaderWriter<pb::StampResultBatch, pb::WatchStampResultsRequest>* s) override {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    pb::WatchStampResultsRequest first;
    if (!s->Read(&first)) return grpc::Status::CANCELLED;
    const uint64_t me = ++e->generation;
    const auto delay = std::chrono::milliseconds(first.max_delay_ms() ? first.max_delay_ms() : 50);
    const int max_batch = first.max_batch() ? static_cast<int>(first.max_batch()) : 256;
    uint64_t sent = 0;
    auto ack = [e](uint64_t log_id, uint64_t cursor) {
      std::lock_guard l(e->mu);
      if (log_id != e->log_id) return;
      while (!e->log.empty() && e->log.front().cursor() <= cursor) e->log.pop_front();
    };
    if (first.log_id() == e->log_id) {
      ack(first.log_id(), first.ack());
      sent = first.ack();
    }
    std::atomic<bool> done{false};
    std::thread reader([&] {
      pb::WatchStampResultsRequest a;
      while (s->Read(&a)) ack(a.log_id(), a.ack());
      done = true;
    });
    auto last_status = Clock::now();
    while (!done && !c->IsCancelled() && e->generation == me && !stop_) {
      std::this_thread::sleep_for(delay);
      if (e->frozen) continue;  // a frozen agent sends nothing
      pb::StampResultBatch b;
      const bool status = Clock::now() - last_status >= 1s;
      {
        std::lock_guard l(e->mu);
        b.set_log_id(e->log_id);
        std::vector<pb::StampResult> due;
        const auto now = static_cast<int64_t>(segwan::NowTaiNs());
        for (auto& [ssid, ss] : e->senders) TakeDue(ss, ssid, now, &due);
        for (auto& r : due) {
          r.set_cursor(e->next_cursor++);
          e->log.push_back(std::move(r));
        }
        std::set<uint32_t> in_batch;
        for (const auto& r : e->log) {
          if (r.cursor() <= sent || b.results_size() >= max_batch) continue;
          *b.add_results() = r;
          in_batch.insert(r.ssid());
          sent = r.cursor();
        }
        for (const auto& [ssid, ss] : e->senders) {
          if (!status && !in_batch.count(ssid)) continue;
          auto* st = b.add_senders();
          st->set_ssid(ssid);
          st->set_packets_sent(ss.taken);
          st->set_running(ss.running);
        }
      }
      if (b.results_size() == 0 && !status) continue;
      if (status) last_status = Clock::now();
      if (!s->Write(b)) break;
    }
    c->TryCancel();
    reader.join();
    return grpc::Status::OK;
  }
  void Stop() { stop_ = true; }

 private:
  static grpc::Status Unknown() { return {grpc::StatusCode::NOT_FOUND, "no such simulated edge"}; }
  // The edge a call is for (by the address the controller dialled); a frozen edge holds the
  // call as a stopped process would, until the caller's deadline.
  SimEdge* Of(grpc::ServerContext* c) {
    const auto authority = c->ExperimentalGetAuthority();
    std::string host(authority.data(), authority.size());
    host = host.substr(0, host.rfind(':'));
    auto it = by_host_.find(host);
    if (it == by_host_.end()) return nullptr;
    SimEdge* e = edges_[static_cast<size_t>(it->second)].get();
    while (e->frozen && !c->IsCancelled() && !stop_) std::this_thread::sleep_for(20ms);
    return e;
  }
  grpc::Status Run(grpc::ServerContext* c, const pb::StampSessionRef& ref, bool on) {
    SimEdge* e = Of(c);
    if (!e) return Unknown();
    if (ref.role() != pb::STAMP_ROLE_SENDER) return grpc::Status::OK;
    std::lock_guard l(e->mu);
    auto it = e->senders.find(ref.ssid());
    if (it == e->senders.end()) return {grpc::StatusCode::NOT_FOUND, "no session"};
    if (on && !it->second.running) {
      it->second.start_tai = static_cast<int64_t>(segwan::NowTaiNs()) -
                             static_cast<int64_t>(it->second.taken) * it->second.interval_ms * 1'000'000LL;
    }
    it->second.running = on;
    return grpc::Status::OK;
  }
  std::map<std::string, int> by_host_;
  std::vector<std::unique_ptr<SimEdge>> edges_;
  std::atomic<bool> stop_{false};
};

// ---- the controller process -----------------------------------------------------------------
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  close(fd);
  return ntohs(a.sin_port);
}

int Cpus() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

struct ProcStat {
  double cpu_s = 0;
  double rss_mib = 0;
};
ProcStat Stat(pid_t pid) {
  ProcStat out;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  std::istringstream in(s.substr(s.rfind(')') + 2));
  std::vector<std::string> v;
  for (std::string x; in >> x;) v.push_back(x);
  if (v.size() > 22) {
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    out.cpu_s = (std::stod(v[11]) + std::stod(v[12])) / tick;
    out.rss_mib = std::stod(v[21]) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
  }
  return out;
}

double Pct(std::vector<double> v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

class Run {
 public:
  Run(const Args& a, std::string mode, SimService* sim, int sim_port) : a_(a), mode_(std::move(mode)), sim_(sim), sim_port_(sim_port) {}
  ~Run() { Stop(); }

  bool Boot() {
    dir_ = fs::temp_directory_path() / ("segwan-scale-" + std::to_string(getpid()) + "-" + mode_);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    http_port_ = FreePort();
    grpc_port_ = FreePort();
    std::vector<std::string> argv = {
        a_.edge_os, "--data-dir", dir_.string(), "--http-listen", "127.0.0.1:" + std::to_string(http_port_),
        "--grpc-listen", "127.0.0.1:" + std::to_string(grpc_port_), "--insecure", "--auto-enable",
        "--results", mode_ == "stream" ? "stream" : "poll", "--stream-batch-ms", a_.batch_ms,
        "--poll-interval-ms", std::to_string(mode_ == "poll-fast" ? std::max(50, std::stoi(a_.batch_ms)) : 1000),
        "--heartbeat-ms", "10000", "--log-level", "warn",
        "--max-slices-per-tenant", "100000", "--max-sessions-per-tenant", "100000",
        "--max-sessions-per-device", "100000"};
    if (!a_.store_uri.empty()) {
      argv.push_back("--store");
      argv.push_back(a_.store_uri);
    }
    pid_ = fork();
    if (pid_ == 0) {
      if (a_.pin && Cpus() > 1) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
      }
      const int log = ::open((dir_ / "edge-os.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 1);
      dup2(log, 2);
      std::vector<char*> args;
      for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    http_ = std::make_unique<httplib::Client>("127.0.0.1", http_port_);
    http_->set_read_timeout(10, 0);
    for (int i = 0; i < 200; ++i) {
      if (auto r = http_->Get("/api/v1/health"); r && r->status == 200) break;
      std::this_thread::sleep_for(50ms);
    }
    std::ifstream op(dir_ / "operator.token"), dev(dir_ / "device.token");
    std::getline(op, op_token_);
    std::getline(dev, dev_token_);
    return !op_token_.empty() && !dev_token_.empty();
  }

  void RegisterEdges() {
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_), grpc::InsecureChannelCredentials());
    reg_ = pb::Registration::NewStub(ch);
    sessions_ids_.assign(static_cast<size_t>(a_.edges), "");
    for (int i = 0; i < a_.edges; ++i) Register(i);
    heartbeat_ = std::thread([this] {
      while (!stop_) {
        for (int i = 0; i < a_.edges && !stop_; ++i) {
          if (sim_->Edge(i).frozen) continue;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + 2s);
          pb::HeartbeatRequest req;
          req.set_device_id(EdgeId(i));
          req.set_session_id(sessions_ids_[static_cast<size_t>(i)]);
          pb::HeartbeatResponse resp;
          if (reg_->Heartbeat(&ctx, req, &resp).ok() && resp.reregister()) Register(i);
        }
        for (int k = 0; k < 40 && !stop_; ++k) std::this_thread::sleep_for(100ms);
      }
    });
  }

  // Slices of two neighbouring edges; each edge sends M sessions to its neighbour.
  bool Configure() {
    rss_before_sessions_ = Stat(pid_).rss_mib;
    auto t = Post("/api/v1/tenants", op_token_, {{"name", "bench"}});
    tenant_ = t.value("token", "");
    for (int i = 0; i + 1 < a_.edges; i += 2) {
      json body = {{"name", "s" + std::to_string(i)},
                   {"sites", {{{"device", EdgeId(i)}, {"interface", "lan0"}, {"nexthop4", "10.0.0.2"}},
                              {{"device", EdgeId(i + 1)}, {"interface", "lan0"}, {"nexthop4", "10.0.0.2"}}}}};
      auto s = Post("/api/v1/slices", tenant_, body);
      if (!s.contains("id")) {
        std::fprintf(stderr, "slice: %s\n", s.dump().c_str());
        return false;
      }
      for (int k = 0; k < 2; ++k) {
        for (int m = 0; m < a_.sessions; ++m) {
          json ds = {{"slice", s["id"]}, {"sender", EdgeId(i + k)}, {"reflector", EdgeId(i + 1 - k)},
                     {"interval_ms", 1000 / a_.rate}, {"start", false}};
          auto d = Post("/api/v1/delay-sessions", tenant_, ds);
          if (!d.contains("id")) {
            std::fprintf(stderr, "session: %s\n", d.dump().c_str());
            return false;
          }
          session_edge_.emplace_back(d["id"].get<std::string>(), i + k);
        }
      }
    }
    return true;
  }
  void StartSessions() {
    for (const auto& [id, e] : session_edge_) Post("/api/v1/delay-sessions/" + id + "/start", tenant_, json::object());
  }

  // REST latency of GET .../stats, `n` calls spread over the window.
  std::vector<double> RestLatencies(int n, std::chrono::milliseconds gap) {
    std::vector<double> out;
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(10, 0);
    httplib::Headers h{{"Authorization", "Bearer " + tenant_}};
    for (int i = 0; i < n && !stop_; ++i) {
      const auto& id = session_edge_[static_cast<size_t>(i * 7919) % session_edge_.size()].first;
      const auto t0 = Clock::now();
      auto r = c.Get(("/api/v1/delay-sessions/" + id + "/stats").c_str(), h);
      out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!r || r->status != 200) out.back() = 10'000;
      std::this_thread::sleep_for(gap);
    }
    return out;
  }

  json Measure(bool frozen_edge, double rest_idle_p99) {
    // Lag: a few sessions (not the frozen edge's) watched through GET .../results.
    std::vector<std::string> watched;
    for (size_t i = 0; i < session_edge_.size() && watched.size() < 10; i += std::max<size_t>(1, session_edge_.size() / 10)) {
      if (session_edge_[i].second != 0) watched.push_back(session_edge_[i].first);
    }
    std::vector<double> lags;
    std::atomic<bool> done{false};
    std::thread lag_thread([&] {
      httplib::Client c("127.0.0.1", http_port_);
      c.set_read_timeout(10, 0);
      httplib::Headers h{{"Authorization", "Bearer " + tenant_}};
      std::map<std::string, int64_t> since;
      const int64_t start_ms = segwan::NowUtcMs();
      for (const auto& id : watched) since[id] = start_ms;
      while (!done) {
        for (const auto& id : watched) {
          auto r = c.Get(("/api/v1/delay-sessions/" + id + "/results?since=" + std::to_string(since[id]) + "&limit=10000").c_str(), h);
          const double now_tai = static_cast<double>(segwan::NowTaiNs());
          if (!r || r->status != 200) {
            static bool told = false;
            if (!told) std::fprintf(stderr, "results: %d %s\n", r ? r->status : -1, r ? r->body.c_str() : "");
            told = true;
            continue;
          }
          const auto body = json::parse(r->body);
          for (const auto& s : body["samples"]) {
            const int64_t t = s["time_ms"].get<int64_t>();
            if (t < since[id]) continue;
            lags.push_back((now_tai - std::stod(s["t4_ns"].get<std::string>())) / 1e6);
            since[id] = std::max(since[id], t + 1);
          }
        }
        std::this_thread::sleep_for(50ms);
      }
    });
    const auto rest = RestLatencies(a_.window_s * 20, 50ms);
    done = true;
    lag_thread.join();
    // CPU and rate in a quiet window of their own: the probes above cost the controller
    // CPU that is not ingest.
    const auto m0 = Metric("segwan_samples_stored_total");
    const auto p0 = Stat(pid_);
    const auto self0 = Stat(getpid());
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(a_.window_s));
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const auto m1 = Metric("segwan_samples_stored_total");
    const auto p1 = Stat(pid_);
    const auto self1 = Stat(getpid());
    const double records = m1 - m0;
    const double sessions = static_cast<double>(session_edge_.size());
    return {{"bench", "controller_scale"},
            {"mode", mode_ == "stream" ? "stream" : "poll"},
            {"poll_interval_ms", mode_ == "poll-fast" ? std::max(50, std::stoi(a_.batch_ms)) : mode_ == "poll" ? 1000 : 0},
            {"edges", a_.edges},
            {"sessions", session_edge_.size()},
            {"rate_pps", a_.rate},
            {"stream_batch_ms", std::stoi(a_.batch_ms)},
            {"offered_records_per_s", sessions * a_.rate},
            {"window_s", secs},
            {"records_per_s", records / secs},
            {"lag_p50_ms", Pct(lags, 0.5)},
            {"lag_p99_ms", Pct(lags, 0.99)},
            {"lag_samples", lags.size()},
            {"cpu_s_per_100k", records > 0 ? (p1.cpu_s - p0.cpu_s) / records * 1e5 : -1},
            {"controller_cpu_cores", (p1.cpu_s - p0.cpu_s) / secs},
            // The simulated edges share the machine's cores with the controller.
            {"simulator_cpu_cores", (self1.cpu_s - self0.cpu_s) / secs},
            {"rss_mib", p1.rss_mib},
            {"rss_mib_before_sessions", rss_before_sessions_},
            // What the sessions (and the load they bring) add to the process, per 1,000.
            {"rss_mib_per_1k_sessions", (p1.rss_mib - rss_before_sessions_) / sessions * 1000},
            {"rest_p99_ms", Pct(rest, 0.99)},
            {"rest_idle_p99_ms", rest_idle_p99},
            {"controller_pinned_to_one_core", a_.pin && Cpus() > 1},
            {"frozen_edge", frozen_edge}};
  }

  double Metric(const std::string& name) {
    auto r = http_->Get("/metrics");
    if (!r) return -1;
    std::istringstream in(r->body);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }
  int Connected() {
    auto r = http_->Get("/api/v1/devices", httplib::Headers{{"Authorization", "Bearer " + op_token_}});
    if (!r || r->status != 200) return -1;
    int n = 0;
    auto j = json::parse(r->body);
    for (const auto& d : j.is_array() ? j : j["devices"]) n += d.value("connected", false) ? 1 : 0;
    return n;
  }

  void Stop() {
    stop_ = true;
    if (heartbeat_.joinable()) heartbeat_.join();
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      for (int i = 0; i < 100 && waitpid(pid_, &st, WNOHANG) == 0; ++i) std::this_thread::sleep_for(50ms);
      if (waitpid(pid_, &st, WNOHANG) == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
      }
      pid_ = -1;
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

 private:
  void Register(int i) {
    pb::RegisterDeviceRequest req;
    req.set_device_id(EdgeId(i));
    req.set_token(dev_token_);
    req.set_grpc_address(EdgeHost(i) + ":" + std::to_string(sim_port_));
    char loc[64], lo[64], lan6[64], lan4[64];
    std::snprintf(loc, sizeof loc, "fc00:%x::/48", i + 1);
    std::snprintf(lo, sizeof lo, "fc00:%x::1/128", i + 1);
    std::snprintf(lan6, sizeof lan6, "fd10:%x::1/64", i + 1);
    std::snprintf(lan4, sizeof lan4, "10.%d.%d.1/24", 1 + i / 250, i % 250);
    req.set_locator(loc);
    req.set_slice_mode(pb::SLICE_MODE_TABLE);
    req.add_capabilities("seg6");
    auto* l = req.add_interfaces();
    l->set_name("lo");
    l->add_addresses(lo);
    auto* lan = req.add_interfaces();
    lan->set_name("lan0");
    lan->set_role("lan");
    lan->add_addresses(lan4);
    lan->add_addresses(lan6);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    pb::RegisterDeviceResponse resp;
    if (reg_->RegisterDevice(&ctx, req, &resp).ok()) sessions_ids_[static_cast<size_t>(i)] = resp.session_id();
  }
  json Post(const std::string& path, const std::string& token, const json& body) {
    auto r = http_->Post(path.c_str(), httplib::Headers{{"Authorization", "Bearer " + token}}, body.dump(),
                         "application/json");
    if (!r) return json::object();
    return json::parse(r->body, nullptr, false);
  }

  const Args& a_;
  std::string mode_;
  SimService* sim_;
  int sim_port_;
  fs::path dir_;
  pid_t pid_ = -1;
  int http_port_ = 0, grpc_port_ = 0;
  std::string op_token_, dev_token_, tenant_;
  std::unique_ptr<httplib::Client> http_;
  std::unique_ptr<pb::Registration::Stub> reg_;
  std::vector<std::string> sessions_ids_;
  std::vector<std::pair<std::string, int>> session_edge_;
  std::thread heartbeat_;
  std::atomic<bool> stop_{false};
  double rss_before_sessions_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s EDGE_OS [--edges N] [--sessions M] [--rate R] [--window S] [--modes poll,stream]\n", argv[0]);
    return 2;
  }
  a.edge_os = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--edges") a.edges = std::stoi(v);
    else if (k == "--sessions") a.sessions = std::stoi(v);
    else if (k == "--rate") a.rate = std::stoi(v);
    else if (k == "--window") a.window_s = std::stoi(v);
    else if (k == "--batch-ms") a.batch_ms = v;
    else if (k == "--pin") a.pin = v != "no";
    else if (k == "--store") a.store = v;
    else if (k == "--modes") {
      a.modes.clear();
      std::istringstream in(v);
      for (std::string m; std::getline(in, m, ',');) a.modes.push_back(m);
    }
  }
  a.edges = std::max(2, a.edges - a.edges % 2);
  if (a.pin && Cpus() > 1) {  // this process (the simulated edges) keeps off the controller's core
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 1; c < Cpus(); ++c) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<segwan::testing::TestPostgres> pg;
  if (a.store == "postgresql") {
    std::string why;
    if (auto started = segwan::testing::TestPostgres::Start(&why, /*durable=*/true)) {
      pg = std::make_unique<segwan::testing::TestPostgres>(std::move(*started));
    } else {
      std::printf("%s\n", json{{"bench", "controller_scale"}, {"store", a.store}, {"skipped", why}}.dump().c_str());
      return 0;
    }
  } else if (a.store != "sqlite") {
    std::fprintf(stderr, "--store: sqlite or postgresql\n");
    return 2;
  }
  for (const auto& mode : a.modes) {
    if (pg) {
      std::string why;
      auto uri = pg->CreateDatabase("scale_" + std::to_string(&mode - a.modes.data()), &why);
      if (!uri) {
        std::fprintf(stderr, "%s\n", why.c_str());
        return 1;
      }
      a.store_uri = *uri;
    }
    // A fresh set of simulated edges for each controller.
    SimService sim(a.edges);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("0.0.0.0:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&sim);
    auto server = b.BuildAndStart();
    Run run(a, mode, &sim, port);
    if (!run.Boot()) {
      std::fprintf(stderr, "edge-os did not start\n");
      return 1;
    }
    run.RegisterEdges();
    for (int i = 0; i < 300 && run.Connected() < a.edges; ++i) std::this_thread::sleep_for(100ms);
    if (!run.Configure()) return 1;
    const auto idle = run.RestLatencies(200, 10ms);
    run.StartSessions();
    std::this_thread::sleep_for(5s);  // streams and polls settle
    auto steady = run.Measure(false, Pct(idle, 0.99));
    steady["store"] = a.store;
    std::printf("%s\n", steady.dump().c_str());
    std::fflush(stdout);
    sim.Edge(0).frozen = true;
    std::this_thread::sleep_for(6s);  // past the controller's deadlines and stream watchdog
    auto frozen = run.Measure(true, Pct(idle, 0.99));
    frozen["store"] = a.store;
    std::printf("%s\n", frozen.dump().c_str());
    std::fflush(stdout);
    sim.Edge(0).frozen = false;
    sim.Stop();
    run.Stop();
    server->Shutdown(std::chrono::system_clock::now() + 2s);
  }
  return 0;
}
