#include "edge-os/southbound/edge_workers.h"

#include <vector>

namespace segwan::controller {

EdgeWorkers::~EdgeWorkers() { Stop(); }

void EdgeWorkers::Run(Worker* w, std::chrono::milliseconds idle) {
  std::unique_lock lock(w->mu);
  while (true) {
    const bool work = w->cv.wait_for(lock, idle, [&] { return w->stop || !w->tasks.empty(); });
    if (!work || w->tasks.empty()) {  // idle for long, or stopping with nothing left
      w->running = false;
      return;
    }
    auto task = std::move(w->tasks.front());
    w->tasks.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

bool EdgeWorkers::Post(const std::string& edge, std::function<void()> task) {
  std::lock_guard lock(mu_);
  if (stopped_) return false;
  auto& w = workers_[edge];
  if (!w) w = std::make_shared<Worker>();
  std::lock_guard wl(w->mu);
  if (w->tasks.size() >= kMaxQueued) return false;
  w->tasks.push_back(std::move(task));
  if (w->running) {
    w->cv.notify_one();
    return true;
  }
  // The previous thread, if any, has left its loop (running is false): joining is immediate.
  if (w->thread.joinable()) w->thread.join();
  w->running = true;
  // The thread holds the worker too: a forgotten (detached) worker lives until it ends.
  w->thread = std::thread([keep = w, idle = idle_] { Run(keep.get(), idle); });
  return true;
}

size_t EdgeWorkers::Threads() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto& [id, w] : workers_) {
    std::lock_guard wl(w->mu);
    n += w->running ? 1 : 0;
  }
  return n;
}

void EdgeWorkers::Forget(const std::string& edge) {
  std::shared_ptr<Worker> w;
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(edge);
    if (it == workers_.end()) return;
    w = std::move(it->second);
    workers_.erase(it);
  }
  {
    std::lock_guard wl(w->mu);
    w->stop = true;
  }
  w->cv.notify_one();
  // Not joined here: a frozen edge must not hold the caller. The thread finishes its tasks
  // and ends, and the worker goes with it.
  if (w->thread.joinable()) w->thread.detach();
}

void EdgeWorkers::Stop() {
  std::map<std::string, std::shared_ptr<Worker>> all;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    all.swap(workers_);
  }
  for (auto& [id, w] : all) {
    std::lock_guard wl(w->mu);
    w->stop = true;
    w->tasks.clear();
  }
  for (auto& [id, w] : all) {
    w->cv.notify_one();
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace segwan::controller
