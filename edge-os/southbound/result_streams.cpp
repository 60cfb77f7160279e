#include "edge-os/southbound/result_streams.h"

#include <algorithm>
#include <optional>

#include "segwan/log.h"

namespace segwan::controller {

namespace {
int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

ResultStreams::ResultStreams(Hooks hooks, Options o) : hooks_(std::move(hooks)), o_(o) {
  scheduler_ = std::thread([this] { Scheduler(); });
}

ResultStreams::~ResultStreams() { Stop(); }

void ResultStreams::Want(const std::set<std::string>& edges) {
  std::vector<std::shared_ptr<ResultStream>> cancel;
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    for (auto it = streams_.begin(); it != streams_.end();) {
      Stream& s = it->second;
      if (edges.count(it->first)) {
        s.wanted = true;
        ++it;
      } else if (!s.open) {
        it = streams_.erase(it);
      } else {  // goes when its stream has ended
        s.wanted = false;
        if (s.current) cancel.push_back(s.current);
        ++it;
      }
    }
    for (const auto& e : edges) {
      if (streams_.count(e)) continue;
      streams_[e].backoff = o_.min_backoff;
    }
  }
  cv_.notify_all();
  for (auto& c : cancel) c->Cancel();
}

void ResultStreams::Kick(const std::string& edge) {
  std::shared_ptr<ResultStream> cancel;
  {
    std::lock_guard lock(mu_);
    auto it = streams_.find(edge);
    if (it == streams_.end()) return;
    Stream& s = it->second;
    s.unsupported = false;  // a new agent may know the RPC
    s.backoff = o_.min_backoff;
    if (s.open) {
      s.reopen_now = true;
      cancel = s.current;
    } else {
      s.next_ms = 0;
    }
  }
  cv_.notify_all();
  if (cancel) cancel->Cancel();
}

bool ResultStreams::Unsupported(const std::string& edge) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(edge);
  return it != streams_.end() && it->second.unsupported;
}

bool ResultStreams::Up(const std::string& edge) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(edge);
  return it != streams_.end() && it->second.up;
}

size_t ResultStreams::Live() {
  std::lock_guard lock(mu_);
  return live_;
}

// Opens what is due, cancels what has been silent too long, and sleeps until the next is due.
void ResultStreams::Scheduler() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const int64_t now = SteadyMs();
    int64_t wake = now + 250;
    std::vector<std::pair<std::string, uint64_t>> open;
    std::vector<std::shared_ptr<ResultStream>> cancel;
    for (auto& [edge, s] : streams_) {
      if (s.open) {
        if (s.current && now - s.last_batch_ms > o_.silence.count()) {
          SEGWAN_LOG(kInfo, "streams") << edge << ": result stream silent for " << (now - s.last_batch_ms)
                                       << " ms; reconnecting";
          cancel.push_back(s.current);
          s.last_batch_ms = now;  // once per silence
        }
        continue;
      }
      if (s.next_ms > now) {
        wake = std::min(wake, s.next_ms);
        continue;
      }
      s.open = true;
      s.gen = ++next_gen_;
      s.up = s.delivered = s.reopen_now = false;
      s.last_batch_ms = now;
      open.emplace_back(edge, s.gen);
    }
    if (open.empty() && cancel.empty()) {
      cv_.wait_for(lock, std::chrono::milliseconds(wake - now));
      continue;
    }
    lock.unlock();
    for (auto& c : cancel) c->Cancel();
    for (const auto& [edge, gen] : open) Open(edge, gen);
    lock.lock();
  }
}

void ResultStreams::Open(const std::string& edge, uint64_t gen) {
  auto mine = [&](Stream*& s) {
    auto it = streams_.find(edge);
    s = it != streams_.end() && it->second.open && it->second.gen == gen ? &it->second : nullptr;
    return s != nullptr;
  };
  Stream* s = nullptr;
  auto client = hooks_.client(edge);
  if (!client) {
    std::lock_guard lock(mu_);
    if (mine(s)) {
      s->open = false;
      s->next_ms = SteadyMs() + o_.max_backoff.count();
      if (!s->wanted) streams_.erase(edge);
    }
    return;
  }
  const auto from = hooks_.stored(edge);
  {
    std::lock_guard lock(mu_);
    if (!mine(s)) return;
    s->acked = from;
    ++live_;
  }
  auto stream = client->WatchStampResults(
      from.log_id, from.cursor,
      {[this, edge, gen](const segwan::v1::StampResultBatch& b) { OnBatch(edge, gen, b); },
       [this, edge, gen](const Status& st) { OnDone(edge, gen, st); }});
  bool cancel = false;
  {
    std::lock_guard lock(mu_);
    if (mine(s)) {  // not ended already
      s->current = stream;
      cancel = !s->wanted || s->reopen_now || stop_;
    }
  }
  if (cancel) stream->Cancel();
}

void ResultStreams::OnBatch(const std::string& edge, uint64_t gen, const segwan::v1::StampResultBatch& batch) {
  {
    std::lock_guard lock(mu_);
    auto it = streams_.find(edge);
    if (it == streams_.end() || it->second.gen != gen) return;
    Stream& s = it->second;
    s.last_batch_ms = SteadyMs();
    s.up = s.delivered = true;
    s.backoff = o_.min_backoff;
  }
  hooks_.batch(edge, batch);
  // Acknowledgements are paced: each is a message the edge must handle, and what is not
  // acknowledged yet is only kept a little longer.
  const auto stored = hooks_.stored(edge);
  std::shared_ptr<ResultStream> ack;
  {
    std::lock_guard lock(mu_);
    auto it = streams_.find(edge);
    if (it == streams_.end() || it->second.gen != gen || !it->second.current) return;
    Stream& s = it->second;
    const int64_t now = SteadyMs();
    if ((stored.log_id != s.acked.log_id || stored.cursor != s.acked.cursor) &&
        now - s.last_ack_ms >= o_.ack_every.count()) {
      if (stored.log_id == batch.log_id()) ack = s.current;
      s.acked = stored;
      s.last_ack_ms = now;
    }
  }
  if (ack) ack->Ack(stored.log_id, stored.cursor);
}

void ResultStreams::OnDone(const std::string& edge, uint64_t gen, const Status& st) {
  std::optional<std::string> failed;
  {
    std::lock_guard lock(mu_);
    auto it = streams_.find(edge);
    if (it != streams_.end() && it->second.open && it->second.gen == gen) {
      Stream& s = it->second;
      s.open = false;
      s.current.reset();
      s.up = false;
      const int64_t now = SteadyMs();
      if (!s.wanted) {
        streams_.erase(it);
      } else if (stop_) {
      } else if (!st && st.error().code == kGrpcUnimplemented) {
        SEGWAN_LOG(kInfo, "streams") << edge << ": the agent has no result stream; its results are polled";
        s.unsupported = true;
        s.next_ms = now + o_.unsupported_retry.count();
      } else {
        if (!s.delivered) {
          failed = st ? edge + ": the result stream ended" : st.error().message;
        } else if (!st) {
          SEGWAN_LOG(kInfo, "streams") << edge << ": result stream broke (" << st.error().message << "); resuming";
        }
        if (s.reopen_now) {
          s.next_ms = now;
        } else {
          s.next_ms = now + s.backoff.count();
          s.backoff = std::min(s.backoff * 2, o_.max_backoff);
        }
      }
    }
  }
  if (failed) hooks_.failed(edge, *failed);
  // Last, and notified under the lock: once Stop sees live_ at 0, `this` may go, and with it
  // the condition variable a notify after the unlock would still touch.
  std::lock_guard lock(mu_);
  --live_;
  cv_.notify_all();
}

void ResultStreams::Stop() {
  std::vector<std::shared_ptr<ResultStream>> cancel;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();  // no stream opens after this
  {
    std::lock_guard lock(mu_);
    for (auto& [edge, s] : streams_) {
      if (s.current) cancel.push_back(s.current);
    }
  }
  for (auto& c : cancel) c->Cancel();
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(5), [this] { return live_ == 0; })) {
    SEGWAN_LOG(kWarn, "streams") << live_ << " result streams still ending";
  }
}

}  // namespace segwan::controller
