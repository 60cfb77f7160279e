#include "edge-os/monitoring/ingest.h"

#include <algorithm>
#include <set>

#include "segwan/log.h"

namespace segwan::controller {

namespace pb = segwan::v1;

void PromHistogram::Add(double seconds) {
  for (size_t i = 0; i < std::size(kMetricBuckets); ++i) {
    if (seconds <= kMetricBuckets[i]) ++buckets[i];
  }
  ++count;
  sum += seconds;
}

ResultIngest::ResultIngest(Store* store, IngestOptions o) : store_(store), o_(o) {}

ResultIngest::~ResultIngest() { Stop(); }

// ---- sessions ----------------------------------------------------------------------------
Status ResultIngest::Restore(const DelaySession& s) {
  Session r;
  auto counters = store_->Counters(s.id);
  auto last_end = store_->LastAggregateEnd(s.id);
  if (!counters || !last_end) return counters ? last_end.error() : counters.error();
  r.s = s;
  r.counters = *counters;
  r.builder = std::make_unique<IntervalBuilder>(o_.aggregate_interval_ms, s.reflector_mode == ReflectorMode::kStateful);
  auto samples = store_->Samples(s.id, TaiUtc{o_.tai_offset_s}.TaiNs(last_end->value_or(0)), 10'000'000);
  if (!samples) return samples.error();
  for (const auto& sample : *samples) r.builder->Add(sample, UtcMs(sample));
  std::lock_guard lock(mu_);
  by_sender_ssid_[{s.sender, s.ssid}] = s.id;
  sessions_[s.id] = std::move(r);
  return Status::Ok();
}

Status ResultIngest::RestoreCursors() {
  auto cursors = store_->ResultCursors();
  if (!cursors) return cursors.error();
  std::lock_guard lock(mu_);
  for (const auto& c : *cursors) {
    auto& l = logs_[c.device_id];
    l.applied = l.stored = {c.log_id, c.cursor};
  }
  return Status::Ok();
}

void ResultIngest::Add(const DelaySession& s) {
  Session r;
  r.s = s;
  r.builder = std::make_unique<IntervalBuilder>(o_.aggregate_interval_ms, s.reflector_mode == ReflectorMode::kStateful);
  std::lock_guard lock(mu_);
  by_sender_ssid_[{s.sender, s.ssid}] = s.id;
  sessions_[s.id] = std::move(r);
}

Status ResultIngest::Remove(const std::string& id, const std::function<Status()>& forget_stored) {
  std::lock_guard write(write_mu_);
  if (auto st = forget_stored(); !st) return st;
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return Status::Ok();
  by_sender_ssid_.erase({it->second.s.sender, it->second.s.ssid});
  sessions_.erase(it);
  std::erase_if(queued_, [&](const SessionBatch& b) {
    if (b.session_id != id) return false;
    queued_samples_ -= b.samples.size();
    return true;
  });
  return Status::Ok();
}

void ResultIngest::Restarted(const std::string& id, bool sender_side) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  auto& c = it->second.counters;
  if (sender_side) c.seq_offset = c.max_seq + 1;
  else c.rseq_offset = c.max_reflector_seq + 1;
}

// ---- records -----------------------------------------------------------------------------
void ResultIngest::Apply(Session& r, const pb::StampResult& rec, SessionBatch& b) {
  // A follow-up transmit time (RFC 8972 §4.7) replaces the T3 the reply carried: the return
  // delay is then measured from when the reply really left. One that cannot be right (before
  // T3 was written or after the reply arrived) is not used.
  const uint64_t fu = rec.t3_follow_up_ns();
  const bool follow_up = fu != 0 && fu >= rec.t3_ns() && fu <= rec.t4_ns();
  Sample s{static_cast<uint32_t>(rec.sender_seq() + r.counters.seq_offset),
           static_cast<uint32_t>(rec.reflector_seq() + r.counters.rseq_offset),
           rec.t1_ns(), rec.t2_ns(), follow_up ? fu : rec.t3_ns(), rec.t4_ns(), rec.sender_ttl(),
           (rec.flags() & ~Sample::kFollowUp) | (follow_up ? Sample::kFollowUp : 0)};
  ++r.counters.received;
  r.counters.tlv_unrecognized += (s.flags & Sample::kUnrecognized) != 0;
  r.counters.tlv_malformed += (s.flags & Sample::kMalformed) != 0;
  r.counters.tlv_integrity += (s.flags & Sample::kIntegrity) != 0;
  r.counters.unsynchronized += (s.flags & Sample::kUnsynchronized) != 0;
  r.counters.follow_up += (s.flags & Sample::kFollowUp) != 0;
  r.counters.max_seq = std::max<int64_t>(r.counters.max_seq, s.seq);
  r.counters.max_reflector_seq = std::max<int64_t>(r.counters.max_reflector_seq, s.reflector_seq);
  r.direct.Add(s.direct_ms() / 1000.0);
  r.back.Add(s.return_ms() / 1000.0);
  if (auto closed = r.builder->Add(s, UtcMs(s))) b.closed.push_back(std::move(*closed));
  b.samples.push_back(s);
}

SessionBatch& ResultIngest::BatchOf(std::map<std::string, SessionBatch>& batches, const std::string& id) {
  auto& b = batches[id];
  b.session_id = id;
  return b;
}

void ResultIngest::Polled(const std::string& id, const Result<pb::GetStampSessionResultsResponse>& resp) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  auto& r = it->second;
  if (!resp) {
    ++poll_errors_;
    if (r.error != resp.error().message) SEGWAN_LOG(kWarn, "ingest") << id << ": " << resp.error().message;
    r.error = resp.error().message;
    return;
  }
  r.error.clear();
  const SessionCounters before = r.counters;
  std::map<std::string, SessionBatch> batches;
  auto& b = BatchOf(batches, id);
  r.counters.edge_sent = resp->packets_sent();
  r.counters.edge_dropped += resp->dropped();
  edge_dropped_ += resp->dropped();
  for (const auto& rec : resp->results()) Apply(r, rec, b);
  if (b.samples.empty() && r.counters == before) return;
  Queue(std::move(batches), std::nullopt);
}

ResultIngest::Cursor ResultIngest::Stored(const std::string& edge) {
  std::lock_guard lock(mu_);
  auto it = logs_.find(edge);
  return it == logs_.end() ? Cursor{} : it->second.stored;
}

void ResultIngest::ForgetEdge(const std::string& edge) {
  std::lock_guard lock(mu_);
  logs_.erase(edge);
  queued_cursors_.erase(edge);
}

void ResultIngest::Streamed(const std::string& edge, const pb::StampResultBatch& batch) {
  std::lock_guard lock(mu_);
  ++stream_batches_;
  auto& log = logs_[edge];
  if (log.applied.log_id != batch.log_id()) {
    // Another life of the agent: its cursors count from 1 again.
    if (log.applied.log_id) SEGWAN_LOG(kInfo, "ingest") << edge << ": a new result log (the agent restarted)";
    log.applied = {batch.log_id(), 0};
  }
  auto session_of = [&](uint32_t ssid) -> Session* {
    auto id = by_sender_ssid_.find({edge, ssid});
    if (id == by_sender_ssid_.end()) return nullptr;  // deleted since
    auto it = sessions_.find(id->second);
    return it == sessions_.end() ? nullptr : &it->second;
  };
  std::map<std::string, SessionBatch> batches;
  uint64_t last = log.applied.cursor;
  for (const auto& rec : batch.results()) {
    if (rec.cursor() <= log.applied.cursor) {
      ++duplicates_;
      continue;
    }
    last = std::max(last, rec.cursor());
    if (Session* r = session_of(rec.ssid())) Apply(*r, rec, BatchOf(batches, r->s.id));
  }
  for (const auto& d : batch.drops()) {
    if (d.cursor() <= log.applied.cursor) continue;
    last = std::max(last, d.cursor());
    edge_dropped_ += d.count();
    if (Session* r = session_of(d.ssid())) {
      r->counters.edge_dropped += d.count();
      BatchOf(batches, r->s.id);
    }
  }
  for (const auto& st : batch.senders()) {
    Session* r = session_of(st.ssid());
    if (!r) continue;
    r->error.clear();
    if (r->counters.edge_sent != st.packets_sent()) {
      r->counters.edge_sent = st.packets_sent();
      BatchOf(batches, r->s.id);
    }
  }
  std::optional<ResultCursor> cursor;
  if (last != log.applied.cursor) {
    log.applied.cursor = last;
    cursor = ResultCursor{edge, log.applied.log_id, last};
  }
  if (!batches.empty() || cursor) Queue(std::move(batches), cursor);
}

void ResultIngest::StreamFailed(const std::string& edge, const std::string& error) {
  std::lock_guard lock(mu_);
  ++poll_errors_;
  for (auto& [key, id] : by_sender_ssid_) {
    if (key.first != edge) continue;
    auto& r = sessions_.at(id);
    if (r.error != error) SEGWAN_LOG(kWarn, "ingest") << id << ": " << error;
    r.error = error;
  }
}

void ResultIngest::CloseDue(const std::vector<std::string>& ids, int64_t now_ms, int64_t grace_ms) {
  std::lock_guard lock(mu_);
  std::map<std::string, SessionBatch> batches;
  for (const auto& id : ids) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    if (auto closed = it->second.builder->CloseIfDue(now_ms, grace_ms)) {
      BatchOf(batches, id).closed.push_back(std::move(*closed));
    }
  }
  if (!batches.empty()) Queue(std::move(batches), std::nullopt);
}

// ---- writing -----------------------------------------------------------------------------
// Batches wait in order; each carries the session's counters as they stand now. Past
// max_pending_samples (a store failing for long) the oldest go, counted: bounded memory,
// never a silent loss.
void ResultIngest::Queue(std::map<std::string, SessionBatch> batches, std::optional<ResultCursor> cursor) {
  for (auto& [id, b] : batches) {
    if (tap_ && !b.samples.empty()) tap_(id, b.samples);
    b.counters = sessions_.at(id).counters;
    queued_samples_ += b.samples.size();
    queued_.push_back(std::move(b));
  }
  if (cursor) queued_cursors_[cursor->device_id] = *cursor;
  while (queued_samples_ > o_.max_pending_samples && !queued_.empty()) {
    queued_samples_ -= queued_.front().samples.size();
    store_dropped_ += queued_.front().samples.size();
    queued_.pop_front();
  }
}

Status ResultIngest::Flush() {
  std::lock_guard write(write_mu_);
  std::vector<SessionBatch> batches;
  std::vector<ResultCursor> cursors;
  {
    std::lock_guard lock(mu_);
    if (queued_.empty() && queued_cursors_.empty()) return Status::Ok();
    batches.assign(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
    queued_.clear();
    for (const auto& b : batches)
      for (const auto& a : b.closed) in_flight_closed_.emplace_back(b.session_id, a);
    for (auto& [edge, c] : queued_cursors_) cursors.push_back(c);
    queued_cursors_.clear();
  }
  size_t n = 0;
  for (const auto& b : batches) n += b.samples.size();
  auto st = store_->WriteBatches(batches, cursors);
  std::lock_guard lock(mu_);
  in_flight_closed_.clear();  // committed, or back in queued_ below
  if (st) {
    queued_samples_ -= std::min(queued_samples_, n);
    if (store_failing_) SEGWAN_LOG(kInfo, "store") << "the store is back: " << n << " held samples written";
    store_failing_ = false;
    for (const auto& c : cursors) {
      auto it = logs_.find(c.device_id);
      if (it != logs_.end() && it->second.applied.log_id == c.log_id) it->second.stored = {c.log_id, c.cursor};
    }
    return Status::Ok();
  }
  store_failing_ = true;
  // Back in front of what arrived meanwhile, in the same order.
  queued_.insert(queued_.begin(), std::make_move_iterator(batches.begin()), std::make_move_iterator(batches.end()));
  for (const auto& c : cursors) queued_cursors_.try_emplace(c.device_id, c);  // a newer one wins
  while (queued_samples_ > o_.max_pending_samples && !queued_.empty()) {
    queued_samples_ -= queued_.front().samples.size();
    store_dropped_ += queued_.front().samples.size();
    queued_.pop_front();
  }
  return st;
}

void ResultIngest::Start() {
  std::lock_guard lock(thread_mu_);
  if (writer_.joinable()) return;
  stop_ = false;
  writer_ = std::thread([this] {
    std::unique_lock lock(thread_mu_);
    while (!stop_) {
      cv_.wait_for(lock, o_.flush_interval, [this] { return stop_; });
      lock.unlock();
      (void)Flush();  // a failure is logged and counted by the store; the batches wait
      lock.lock();
    }
  });
}

void ResultIngest::Stop() {
  {
    std::lock_guard lock(thread_mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  (void)Flush();
}

// ---- reads -------------------------------------------------------------------------------
std::optional<ResultIngest::View> ResultIngest::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  return View{it->second.counters, it->second.error};
}

std::optional<IntervalAggregate> ResultIngest::OpenInterval(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  return it->second.builder->Peek();
}

Result<std::vector<std::pair<IntervalAggregate, bool>>> ResultIngest::Intervals(const std::string& id,
                                                                                int64_t since_ms, size_t limit) const {
  std::vector<IntervalAggregate> unstored;
  {
    std::lock_guard lock(mu_);
    for (const auto& [session, a] : in_flight_closed_)
      if (session == id) unstored.push_back(a);
    for (const auto& b : queued_)
      if (b.session_id == id) unstored.insert(unstored.end(), b.closed.begin(), b.closed.end());
  }
  auto closed = store_->Aggregates(id, since_ms, limit);
  if (!closed) return closed.error();
  std::vector<std::pair<IntervalAggregate, bool>> out;
  std::set<int64_t> starts;
  for (auto& a : *closed) {
    starts.insert(a.start_ms);
    out.emplace_back(std::move(a), false);
  }
  std::sort(unstored.begin(), unstored.end(), [](const auto& a, const auto& b) { return a.start_ms < b.start_ms; });
  for (auto& a : unstored) {
    if (out.size() >= limit) break;
    if (a.start_ms + a.length_ms > since_ms && starts.insert(a.start_ms).second) out.emplace_back(std::move(a), false);
  }
  if (out.size() < limit) {
    if (auto open = OpenInterval(id); open && open->start_ms + open->length_ms > since_ms) out.emplace_back(*open, true);
  }
  return out;
}

IngestMetrics ResultIngest::Metrics() const {
  std::lock_guard lock(mu_);
  IngestMetrics m;
  m.poll_errors = poll_errors_;
  m.edge_records_dropped = edge_dropped_;
  m.store_pending_samples = store_failing_ ? queued_samples_ : 0;
  m.store_dropped_samples = store_dropped_;
  m.stream_batches = stream_batches_;
  m.stream_duplicates = duplicates_;
  for (const auto& [id, r] : sessions_) m.sessions.push_back({id, r.s.tenant_id, r.direct, r.back});
  return m;
}

}  // namespace segwan::controller
