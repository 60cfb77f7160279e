#pragma once

// Store::WriteBatches as the controller's ingest drives it, shared by the benchmarks.
#include <chrono>
#include <string>
#include <vector>

#include "edge-os/store/store.h"

namespace segwan::controller {

// Rows per second through Store::WriteBatches when `sessions` sessions each bring `per` rows to
// every batch (`rows` in all). The controller's ingest batches look like this at scale: at
// 1,000 edges x 5 sessions x 10 pps, a 100 ms flush carries one row for each of 5,000 sessions.
inline double StoreWrite(const std::string& where, int sessions, int per, int rows) {
  auto opened = Store::Open(where);
  if (!opened) return -1;
  auto store = std::move(*opened);
  const uint64_t base = 1'700'000'000'000'000'000ULL;
  std::vector<std::string> ids;
  for (int i = 0; i < sessions; ++i) {
    ids.push_back("ds" + std::to_string(i + 1));  // as the controller names them
    DelaySession d;
    d.id = ids.back();
    d.tenant_id = "t1";
    if (!store->PutSession(d)) return -1;
  }
  auto t0 = std::chrono::steady_clock::now();
  int n = 0;
  for (uint32_t step = 0; n < rows; ++step) {
    std::vector<SessionBatch> batches(static_cast<size_t>(sessions));
    for (int i = 0; i < sessions; ++i) {
      auto& b = batches[static_cast<size_t>(i)];
      b.session_id = ids[static_cast<size_t>(i)];
      for (int k = 0; k < per; ++k) {
        Sample x;
        x.seq = step * static_cast<uint32_t>(per) + static_cast<uint32_t>(k);
        x.t1 = base + x.seq * 100'000'000ULL;
        x.t2 = x.t1 + 12'000'000;
        x.t3 = x.t2 + 25'000;
        x.t4 = x.t3 + 4'000'000;
        x.ttl = 63;
        b.samples.push_back(x);
      }
      b.counters.received = (step + 1) * static_cast<uint64_t>(per);
      b.counters.max_seq = static_cast<int64_t>(b.counters.received) - 1;
    }
    if (!store->WriteBatches(batches, {})) return -1;
    n += sessions * per;
  }
  return n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace segwan::controller
