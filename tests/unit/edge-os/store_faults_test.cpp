// Storage faults, on real files: a damaged, foreign or emptied database file is refused at
// start with a message naming it; a full disk (a 2 MiB tmpfs in a private mount namespace,
// so root only) makes writes answer 503 with nothing changed, while measurements wait in
// memory and reach the store once there is room again: nothing committed is lost, nothing
// aborts.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <SQLiteCpp/SQLiteCpp.h>

#include "edge-os/controller/controller.h"
#include "edge-os/northbound/rest.h"
#include "edge-os/store/store.h"
#include "fake_edges.h"
#include "segwan/clock.h"

namespace segwan::controller {
namespace {

using nlohmann::json;
namespace pb = segwan::v1;

constexpr const char* kOperator = "operator-secret";
constexpr const char* kDeviceToken = "device-secret";

std::filesystem::path TempDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("segwan-faults-" + std::to_string(getpid()) + "-" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

TEST(StoreFaults, ADamagedFileIsRefusedByName) {
  const auto dir = TempDir("damaged");
  const auto path = (dir / "segwan.db").string();
  {
    auto s = Store::Open(path);
    ASSERT_TRUE(s);
    for (int i = 0; i < 200; ++i) ASSERT_TRUE((*s)->PutTenant({"t" + std::to_string(i), std::string(300, 'x'), std::to_string(i), 0}));
  }
  {  // checkpoint the WAL into the file, then overwrite a page in the middle of it
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 16384u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2 / 4096 * 4096));
    const std::string junk(4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto s = Store::Open(path);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find(path), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().field, "--db");
  std::filesystem::remove_all(dir);
}

TEST(StoreFaults, AForeignOrEmptiedFileIsRefused) {
  const auto dir = TempDir("foreign");
  const auto foreign = (dir / "other.db").string();
  {
    SQLite::Database db(foreign, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE songs (title TEXT)");
  }
  auto s = Store::Open(foreign);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("another application"), std::string::npos) << s.error().message;
  const auto empty = (dir / "segwan.db").string();
  std::ofstream(empty).close();
  auto refused = Store::Open(empty, /*allow_empty=*/false);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find(empty), std::string::npos);
  EXPECT_NE(refused.error().message.find("empty"), std::string::npos);
  EXPECT_TRUE(Store::Open(empty, /*allow_empty=*/true));  // a new data folder starts this way
  std::filesystem::remove_all(dir);
}

// The full-disk test needs its own small filesystem: a tmpfs in a mount namespace of this
// process only, gone when it exits.
class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      GTEST_SKIP() << "cannot make a private mount namespace";
    }
    dir_ = TempDir("full");
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=2m") != 0) GTEST_SKIP() << "cannot mount a tmpfs";
    auto s = Store::Open((dir_ / "segwan.db").string());
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
    ControllerOptions o;
    o.device_token = kDeviceToken;
    o.auto_enable = true;
    o.start_threads = false;
    ctl_ = std::make_unique<Controller>(store_.get(), &edges_, o);
    ctl_->SetOperatorToken(kOperator);
    for (const char* x : {"a", "b"}) ASSERT_TRUE(ctl_->Register(testing::LabRegistration(x, kDeviceToken), "test"));
    ctl_->RunQueued();
    rest_ = std::make_unique<RestServer>(ctl_.get(), "");
    auto port = rest_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
  }
  void TearDown() override {
    client_.reset();
    if (rest_) rest_->Stop();
    rest_.reset();
    ctl_.reset();
    store_.reset();
    if (!dir_.empty()) {
      umount2(dir_.c_str(), MNT_DETACH);
      std::filesystem::remove_all(dir_);
    }
  }
  httplib::Result Post(const std::string& path, const std::string& token, const json& body) {
    return client_->Post(path.c_str(), {{"Authorization", "Bearer " + token}}, body.dump(), "application/json");
  }
  // Fills the filesystem with a file until it is full.
  void FillDisk() {
    std::ofstream f(dir_ / "filler", std::ios::binary);
    const std::string block(64 * 1024, 'f');
    while (f.write(block.data(), static_cast<std::streamsize>(block.size())) && f.flush()) {
    }
  }
  void PushResults(uint32_t from, uint32_t n) {
    const uint64_t base = static_cast<uint64_t>(NowUtcMs()) * 1'000'000ULL;
    for (uint32_t seq = from; seq < from + n; ++seq) {
      pb::StampResult r;
      r.set_ssid(1);
      r.set_sender_seq(seq);
      r.set_reflector_seq(seq);
      r.set_t1_ns(base + seq * 1'000'000ULL);
      r.set_t2_ns(r.t1_ns() + 5'000'000);
      r.set_t3_ns(r.t2_ns() + 10'000);
      r.set_t4_ns(r.t3_ns() + 3'000'000);
      edges_.Edge("edge-a")->Push(1, r);
    }
  }

  std::filesystem::path dir_;
  testing::FakeConnector edges_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Controller> ctl_;
  std::unique_ptr<RestServer> rest_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(FullDiskTest, WritesAnswer503AndMeasurementsWaitForRoom) {
  auto t = Post("/api/v1/tenants", kOperator, {{"name", "acme"}});
  ASSERT_EQ(t->status, 201);
  const std::string tenant = json::parse(t->body)["token"];
  ASSERT_EQ(Post("/api/v1/slices", tenant,
                 {{"name", "blue"},
                  {"sites", {{{"device", "edge-a"}, {"interface", "lan0"}}, {{"device", "edge-b"}, {"interface", "lan0"}}}}})
                ->status,
            201);
  auto ds = Post("/api/v1/delay-sessions", tenant, {{"slice", "sl1"}, {"sender", "edge-a"}, {"reflector", "edge-b"}});
  ASSERT_EQ(ds->status, 201) << ds->body;
  PushResults(0, 100);
  ctl_->PollOnce();
  ASSERT_EQ(*store_->SampleCount("ds1"), 100u);

  FillDisk();
  // A REST write: 503 with a JSON error, and nothing changed (the edges included).
  const auto slices_before = edges_.Edge("edge-a")->slices.size();
  auto r = Post("/api/v1/slices", tenant,
                {{"name", "green"},
                 {"sites", {{{"device", "edge-a"}, {"interface", "lan0"}}, {{"device", "edge-b"}, {"interface", "lan0"}}}}});
  ASSERT_TRUE(r);
  // (SQLite may find room for one small page; then the tenant write below is the one refused.)
  int refused = r->status == 503 ? 1 : 0;
  if (r->status == 503) {
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "unavailable");
    EXPECT_EQ(edges_.Edge("edge-a")->slices.size(), slices_before);
    auto list = client_->Get("/api/v1/slices", {{"Authorization", "Bearer " + tenant}});
    EXPECT_EQ(json::parse(list->body).size(), 1u);
  }
  // (The WAL may still have a few free pages; it runs out within a few writes.)
  for (int i = 0; i < 500 && !refused; ++i) {
    auto x = Post("/api/v1/tenants", kOperator, {{"name", "filler-" + std::to_string(i)}});
    ASSERT_TRUE(x->status == 201 || x->status == 503) << x->status << " " << x->body;
    if (x->status == 503) {
      refused = 1;
      EXPECT_EQ(json::parse(x->body)["error"]["code"], "unavailable");
      // and the refused tenant does not exist
      auto list = client_->Get("/api/v1/tenants", {{"Authorization", std::string("Bearer ") + kOperator}});
      for (const auto& tn : json::parse(list->body)) EXPECT_NE(tn["name"], "filler-" + std::to_string(i));
    }
  }
  EXPECT_TRUE(refused) << "the full disk never refused a write";

  // Measurements keep coming: held in memory, counted, never an abort.
  for (uint32_t k = 0; k < 5; ++k) {
    PushResults(100 + k * 200, 200);
    ctl_->PollOnce();
  }
  auto m = ctl_->GetMetrics();
  EXPECT_GT(m.store_errors, 0u);
  EXPECT_GT(m.store_pending_samples, 0u);
  EXPECT_EQ(m.store_dropped_samples, 0u);
  auto metrics = client_->Get("/metrics");
  EXPECT_NE(metrics->body.find("segwan_store_pending_samples " + std::to_string(m.store_pending_samples)),
            std::string::npos);

  // Room again: everything held reaches the store, once.
  std::filesystem::remove(dir_ / "filler");
  PushResults(1100, 10);
  ctl_->PollOnce();
  EXPECT_EQ(*store_->SampleCount("ds1"), 1110u);
  EXPECT_EQ(ctl_->GetMetrics().store_pending_samples, 0u);
  auto results = client_->Get("/api/v1/delay-sessions/ds1/results?limit=10000", {{"Authorization", "Bearer " + tenant}});
  ASSERT_EQ(results->status, 200);
  EXPECT_EQ(json::parse(results->body)["samples"].size(), 1110u);
}

}  // namespace
}  // namespace segwan::controller
