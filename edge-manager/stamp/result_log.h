#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "edge-manager/stamp/engine.h"

namespace segwan::stamp {

// The records of every sender session in the order they were taken, each with the next
// cursor (1, 2, ...), kept until the reader acknowledges them: what the notification stream
// (WatchStampResults) sends and sends again after a break. Bounded: records that find the log
// full are counted, and the count enters the log as an entry of its own (with a cursor) once
// there is room, so the reader learns of every loss exactly once. Thread-safe.
class ResultLog {
 public:
  static constexpr size_t kDefaultCapacity = 262'144;  // ~16 MiB of records

  // `id` names this log (one agent life); 0 picks a random one.
  explicit ResultLog(size_t capacity = kDefaultCapacity, uint64_t id = 0);

  struct Entry {
    uint64_t cursor = 0;
    uint16_t ssid = 0;
    bool is_drop = false;
    Record record;       // !is_drop
    uint64_t dropped = 0;  // is_drop: records of ssid lost for lack of room
  };

  uint64_t id() const { return id_; }
  // A session's records (and the ones its engine queue dropped), in order.
  void Append(uint16_t ssid, const std::vector<Record>& records, uint64_t dropped = 0);
  // Forgets every entry with cursor <= `cursor`.
  void Ack(uint64_t cursor);
  // Entries with cursor > `after`, at most `max`, oldest first; returns how many were added.
  size_t Read(uint64_t after, size_t max, std::vector<Entry>* out) const;
  // How many entries are waiting after `after`.
  size_t Waiting(uint64_t after) const;
  uint64_t last_cursor() const;
  size_t size() const;
  uint64_t dropped_total() const;

 private:
  void FlushDrops();  // under mu_
  const size_t capacity_;
  const uint64_t id_;
  mutable std::mutex mu_;
  std::deque<Entry> entries_;
  uint64_t next_ = 1;
  std::map<uint16_t, uint64_t> pending_drops_;  // counted while full, not yet an entry
  uint64_t dropped_total_ = 0;
};

}  // namespace segwan::stamp
