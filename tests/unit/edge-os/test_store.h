#pragma once

// Where a test's controller keeps its data: DIR/segwan.db, or with SEGWAN_TEST_STORE=postgresql
// a database of one PostgreSQL cluster started for the test process, named in DIR/segwan.pg
// (a controller restarted in a test reopens it; an emptied DIR means a new one). CTest runs the controller's test
// programs both ways. Without a PostgreSQL to start, the program says why and ends: CTest
// reports it skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <fstream>

#include "edge-os/store/store.h"
#include "postgres.h"

namespace segwan::controller::testing {

inline Result<std::unique_ptr<Store>> OpenTestStore(const std::filesystem::path& dir) {
  const char* engine = std::getenv("SEGWAN_TEST_STORE");
  if (!engine || std::string(engine) != "postgresql") return Store::Open((dir / "segwan.db").string());
  // DIR/segwan.pg names the database, as DIR/segwan.db would hold it: a test that empties
  // DIR starts on a new one, a restart in the test finds the same.
  std::filesystem::create_directories(dir);
  const auto marker = dir / "segwan.pg";
  std::string uri;
  std::ifstream(marker) >> uri;
  if (uri.empty()) {
    std::string why;
    auto fresh = segwan::testing::FreshPostgresDatabase(&why);
    if (!fresh) {
      std::cout << "no PostgreSQL to test with: " << why << std::endl;
      std::exit(0);
    }
    uri = *fresh;
    std::ofstream(marker) << uri << "\n";
  }
  return Store::Open(uri);
}

// A test on a database of its own in the process's PostgreSQL cluster (uri_), skipped with the
// reason where none can be started. A fixture that derives from it calls this SetUp first and
// returns when IsSkipped().
class FreshDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    auto uri = segwan::testing::FreshPostgresDatabase(&why);
    if (!uri) GTEST_SKIP() << "no PostgreSQL to test with: " << why;
    uri_ = *uri;
  }
  std::string uri_;
};

}  // namespace segwan::controller::testing
