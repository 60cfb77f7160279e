// The two store engines on the same batches, alternated in one run: rows per second through
// Store::WriteBatches into a SQLite file (the baseline) and into PostgreSQL (Debian's server
// in a private cluster on the same disk, fsync on, as an operator runs it). Two shapes of
// batch: the controller at scale (5,000 sessions, one row each per batch) and a few busy
// sessions (10 sessions, 500 rows each). Target: PostgreSQL >= 0.5x SQLite.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "postgres.h"
#include "segwan/log.h"
#include "store_write.h"

namespace {

using namespace segwan::controller;
using nlohmann::json;
namespace fs = std::filesystem;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main() {
  segwan::SetLogLevel(segwan::LogLevel::kWarn);
  std::string why;
  auto pg = segwan::testing::TestPostgres::Start(&why, /*durable=*/true);
  if (!pg) {
    std::cout << json{{"bench", "store_engines"}, {"skipped", why}}.dump() << std::endl;
    return 0;
  }
  const fs::path dir = fs::temp_directory_path() / ("segwan-bench-engines-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  struct Shape {
    const char* name;
    int sessions, per, rows;
  };
  constexpr int kRounds = 3;
  int db = 0;
  bool ok = true;
  for (const Shape& shape : {Shape{"5000_sessions_1_row_each", 5000, 1, 200'000}, Shape{"10_sessions_500_rows_each", 10, 500, 200'000}}) {
    std::vector<double> lite, post, ratio;
    for (int round = 0; round < kRounds; ++round) {  // alternated: the machine's noise falls on both
      const auto file = dir / ("r" + std::to_string(++db) + ".db");
      const double l = StoreWrite(file.string(), shape.sessions, shape.per, shape.rows);
      auto uri = pg->CreateDatabase("r" + std::to_string(db), &why);
      const double p = uri ? StoreWrite(*uri, shape.sessions, shape.per, shape.rows) : -1;
      if (l <= 0 || p <= 0) {
        ok = false;
        break;
      }
      lite.push_back(l);
      post.push_back(p);
      ratio.push_back(p / l);
    }
    if (!ok) break;
    std::cout << json{{"bench", "store_engines"}, {"batches", shape.name}, {"rows", shape.rows}, {"rounds", kRounds},
                      {"postgresql_rows_per_s", std::lround(Median(post))}, {"baseline", "the same batches into SQLite"},
                      {"baseline_rows_per_s", std::lround(Median(lite))}, {"ratio", Median(ratio)},
                      {"ratio_min", *std::min_element(ratio.begin(), ratio.end())}, {"target_ratio", 0.5}}
                     .dump()
              << std::endl;
  }
  fs::remove_all(dir);
  if (!ok) std::cerr << "a store write failed" << std::endl;
  return ok ? 0 : 1;
}
