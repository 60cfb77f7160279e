#include "edge-manager/stamp/result_log.h"

#include <algorithm>
#include <random>

namespace segwan::stamp {

namespace {
uint64_t RandomId() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return v;
}
}  // namespace

ResultLog::ResultLog(size_t capacity, uint64_t id)
    : capacity_(std::max<size_t>(capacity, 1)), id_(id ? id : RandomId()) {}

void ResultLog::FlushDrops() {
  for (auto it = pending_drops_.begin(); it != pending_drops_.end() && entries_.size() < capacity_;) {
    entries_.push_back(Entry{.cursor = next_++, .ssid = it->first, .is_drop = true, .dropped = it->second});
    it = pending_drops_.erase(it);
  }
}

void ResultLog::Append(uint16_t ssid, const std::vector<Record>& records, uint64_t dropped) {
  std::lock_guard lock(mu_);
  FlushDrops();
  // Drops first: the engine lost them before these records arrived.
  if (dropped) {
    dropped_total_ += dropped;
    if (entries_.size() < capacity_ && !pending_drops_.count(ssid)) {
      entries_.push_back(Entry{.cursor = next_++, .ssid = ssid, .is_drop = true, .dropped = dropped});
    } else {
      pending_drops_[ssid] += dropped;
    }
  }
  for (const auto& r : records) {
    // A record may not pass a drop count of its own session that is still waiting for room.
    if (entries_.size() >= capacity_ || pending_drops_.count(ssid)) {
      ++pending_drops_[ssid];
      ++dropped_total_;
      continue;
    }
    entries_.push_back(Entry{.cursor = next_++, .ssid = ssid, .record = r});
  }
}

void ResultLog::Ack(uint64_t cursor) {
  std::lock_guard lock(mu_);
  while (!entries_.empty() && entries_.front().cursor <= cursor) entries_.pop_front();
  FlushDrops();
}

size_t ResultLog::Read(uint64_t after, size_t max, std::vector<Entry>* out) const {
  std::lock_guard lock(mu_);
  if (entries_.empty() || entries_.back().cursor <= after) return 0;
  // Cursors are consecutive in the deque: the first one after `after` is found by index.
  const uint64_t first = entries_.front().cursor;
  size_t i = after < first ? 0 : static_cast<size_t>(after - first + 1);
  size_t n = 0;
  for (; i < entries_.size() && n < max; ++i, ++n) out->push_back(entries_[i]);
  return n;
}

size_t ResultLog::Waiting(uint64_t after) const {
  std::lock_guard lock(mu_);
  if (entries_.empty() || entries_.back().cursor <= after) return 0;
  const uint64_t first = entries_.front().cursor;
  return after < first ? entries_.size() : static_cast<size_t>(entries_.back().cursor - after);
}

uint64_t ResultLog::last_cursor() const {
  std::lock_guard lock(mu_);
  return next_ - 1;
}

size_t ResultLog::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

uint64_t ResultLog::dropped_total() const {
  std::lock_guard lock(mu_);
  return dropped_total_;
}

}  // namespace segwan::stamp
