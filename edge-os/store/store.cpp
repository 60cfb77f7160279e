#include "edge-os/store/store.h"

#include "edge-os/store/postgres_store.h"
#include "edge-os/store/sqlite_store.h"
#include "segwan/log.h"

namespace segwan::controller {

using nlohmann::json;

bool Store::IsPostgres(const std::string& where) {
  return where.rfind("postgresql://", 0) == 0 || where.rfind("postgres://", 0) == 0;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& where, bool allow_empty) {
  if (IsPostgres(where)) return PostgresStore::Open(where);
  return SqliteStore::Open(where, allow_empty);
}

Error Store::Failed(const char* what, const std::exception& e) {
  ++errors_;
  SEGWAN_LOG(kError, "store") << what << " on " << where_ << ": " << e.what();
  return Error{std::string("the store (") + where_ + ") failed: " + e.what(), "", kStoreUnavailable};
}

json AggregateToJson(const IntervalAggregate& a) {
  json p = json::array();
  for (const auto& row : a.p) p.push_back({row[0], row[1], row[2]});
  return {{"delays", a.delays.ToJson()}, {"p", p}, {"sent", a.sent}, {"received", a.received},
          {"lost", a.lost}, {"lost_direct", a.lost_direct}, {"lost_return", a.lost_return}};
}

IntervalAggregate AggregateFromJson(int64_t start, int64_t length, const json& j) {
  IntervalAggregate a;
  a.start_ms = start;
  a.length_ms = length;
  a.delays = DelaySet::FromJson(j.value("delays", json::object()));
  const auto& p = j.at("p");
  for (int k = 0; k < 3; ++k) {
    for (int q = 0; q < 3; ++q) a.p[k][q] = p.at(k).at(q).get<double>();
  }
  a.sent = j.value("sent", uint64_t{0});
  a.received = j.value("received", uint64_t{0});
  a.lost = j.value("lost", uint64_t{0});
  a.lost_direct = j.value("lost_direct", uint64_t{0});
  a.lost_return = j.value("lost_return", uint64_t{0});
  return a;
}

}  // namespace segwan::controller
