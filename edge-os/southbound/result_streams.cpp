#include "edge-os/southbound/result_streams.h"

#include "segwan/log.h"

namespace segwan::controller {

namespace {
int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

ResultStreams::ResultStreams(Hooks hooks, Options o) : hooks_(std::move(hooks)), o_(o) {
  watchdog_ = std::thread([this] { Watchdog(); });
}

ResultStreams::~ResultStreams() { Stop(); }

void ResultStreams::End(Stream& s) {
  std::lock_guard lock(s.mu);
  s.stop = true;
  if (s.current) s.current->Cancel();
  s.cv.notify_all();
}

void ResultStreams::Want(const std::set<std::string>& edges) {
  std::vector<std::unique_ptr<Stream>> finished;
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (edges.count(it->first)) {
        ++it;
        continue;
      }
      End(*it->second);
      retired_.push_back(std::move(it->second));
      it = streams_.erase(it);
    }
    for (const auto& e : edges) {
      auto& slot = streams_[e];
      if (slot) continue;
      slot = std::make_unique<Stream>();
      slot->edge = e;
      Stream* s = slot.get();
      s->thread = std::thread([this, s] { Run(s); });
    }
    for (auto it = retired_.begin(); it != retired_.end();) {
      if (!(*it)->done) {
        ++it;
        continue;
      }
      finished.push_back(std::move(*it));
      it = retired_.erase(it);
    }
  }
  for (auto& s : finished) s->thread.join();  // done: returns at once
}

void ResultStreams::Kick(const std::string& edge) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(edge);
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  std::lock_guard slock(s.mu);
  s.kicked = true;
  s.unsupported = false;  // a new agent may know the RPC
  if (s.current) s.current->Cancel();
  s.cv.notify_all();
}

bool ResultStreams::Unsupported(const std::string& edge) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(edge);
  return it != streams_.end() && it->second->unsupported;
}

bool ResultStreams::Up(const std::string& edge) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(edge);
  return it != streams_.end() && it->second->up;
}

void ResultStreams::Run(Stream* s) {
  auto backoff = o_.min_backoff;
  // Sleeps `d` unless stopped or kicked; false: stop.
  auto pause = [&](std::chrono::milliseconds d) {
    std::unique_lock lock(s->mu);
    s->cv.wait_for(lock, d, [&] { return s->stop || s->kicked; });
    if (s->kicked) backoff = o_.min_backoff;
    s->kicked = false;
    return !s->stop;
  };
  while (true) {
    {
      std::lock_guard lock(s->mu);
      if (s->stop) break;
    }
    if (s->unsupported) {  // polled until a new registration says otherwise
      if (!pause(std::chrono::seconds(60))) break;
      continue;
    }
    auto client = hooks_.client(s->edge);
    if (!client) {
      if (!pause(o_.max_backoff)) break;
      continue;
    }
    const auto from = hooks_.stored(s->edge);
    std::shared_ptr<ResultStream> stream = client->WatchStampResults(from.log_id, from.cursor);
    {
      std::lock_guard lock(s->mu);
      if (s->stop) break;
      s->current = stream;
    }
    s->last_batch_ms = SteadyMs();
    auto acked = from;
    auto last_ack = std::chrono::steady_clock::time_point{};
    bool delivered = false;
    segwan::v1::StampResultBatch batch;
    while (stream->Read(&batch)) {
      s->last_batch_ms = SteadyMs();
      s->up = true;
      delivered = true;
      backoff = o_.min_backoff;
      hooks_.batch(s->edge, batch);
      // Acknowledgements are paced: each is a message the edge must handle, and what is not
      // acknowledged yet is only kept a little longer.
      const auto stored = hooks_.stored(s->edge);
      const auto now = std::chrono::steady_clock::now();
      if ((stored.log_id != acked.log_id || stored.cursor != acked.cursor) && now - last_ack >= o_.ack_every) {
        if (stored.log_id == batch.log_id()) stream->Ack(stored.log_id, stored.cursor);
        acked = stored;
        last_ack = now;
      }
    }
    s->up = false;
    {
      std::lock_guard lock(s->mu);
      s->current.reset();
    }
    const Status st = stream->Finish();
    {
      std::lock_guard lock(s->mu);
      if (s->stop) break;
    }
    if (!st && st.error().code == kGrpcUnimplemented) {
      SEGWAN_LOG(kInfo, "streams") << s->edge << ": the agent has no result stream; its results are polled";
      s->unsupported = true;
      continue;
    }
    if (!delivered) {
      hooks_.failed(s->edge, st ? s->edge + ": the result stream ended" : st.error().message);
    } else if (!st) {
      SEGWAN_LOG(kInfo, "streams") << s->edge << ": result stream broke (" << st.error().message << "); resuming";
    }
    if (!pause(backoff)) break;
    backoff = std::min(backoff * 2, o_.max_backoff);
  }
  s->done = true;
}

// A stream whose edge froze or whose connection went half-open stays blocked in Read: the
// watchdog cancels it once it has been silent too long, and its thread opens another.
void ResultStreams::Watchdog() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stop_; });
    const int64_t now = SteadyMs();
    for (auto& [edge, s] : streams_) {
      std::lock_guard slock(s->mu);
      if (s->current && now - s->last_batch_ms > o_.silence.count()) {
        SEGWAN_LOG(kInfo, "streams") << edge << ": result stream silent for " << (now - s->last_batch_ms)
                                     << " ms; reconnecting";
        s->current->Cancel();
        s->last_batch_ms = now;  // once per silence
      }
    }
  }
}

void ResultStreams::Stop() {
  std::vector<std::unique_ptr<Stream>> all;
  {
    std::lock_guard lock(mu_);
    if (stop_ && streams_.empty() && retired_.empty()) return;
    stop_ = true;
    for (auto& [e, s] : streams_) all.push_back(std::move(s));
    streams_.clear();
    for (auto& s : retired_) all.push_back(std::move(s));
    retired_.clear();
  }
  cv_.notify_all();
  for (auto& s : all) End(*s);
  for (auto& s : all) s->thread.join();
  if (watchdog_.joinable()) watchdog_.join();
}

}  // namespace segwan::controller
