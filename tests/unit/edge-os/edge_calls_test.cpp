// How the controller calls its edges: the result stream over real gRPC (a small agent in the
// test speaks WatchStampResults) and the per-edge workers.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "edge-os/southbound/edge_client.h"
#include "edge-os/southbound/edge_workers.h"

namespace segwan::controller {
namespace {

namespace pb = segwan::v1;
using namespace std::chrono_literals;

// Sends three batches of log 7 (cursors 1, 2, 3) after the first request, then records the
// acknowledgements until the controller goes.
class StreamingAgent : public pb::EdgeManager::Service {
 public:
  grpc::Status WatchStampResults(grpc::ServerContext*,
                                 grpc::ServerReaderWriter<pb::StampResultBatch, pb::WatchStampResultsRequest>* s) override {
    pb::WatchStampResultsRequest req;
    if (!s->Read(&req)) return grpc::Status::OK;
    {
      std::lock_guard l(mu);
      first = req;
    }
    for (uint64_t c = 1; c <= 3; ++c) {
      pb::StampResultBatch b;
      b.set_log_id(7);
      b.add_results()->set_cursor(c);
      s->Write(b);
    }
    while (s->Read(&req)) {
      std::lock_guard l(mu);
      acks.push_back(req.ack());
      cv.notify_all();
    }
    return grpc::Status::OK;
  }
  std::mutex mu;
  std::condition_variable cv;
  pb::WatchStampResultsRequest first;
  std::vector<uint64_t> acks;
};

// What a handler saw.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> cursors;
  int done = 0;
  int code = -1;
  ResultStream::Handler Handler() {
    return {[this](const pb::StampResultBatch& b) {
              std::lock_guard l(mu);
              for (const auto& r : b.results()) cursors.push_back(r.cursor());
              cv.notify_all();
            },
            [this](const Status& st) {
              std::lock_guard l(mu);
              ++done;
              code = st ? 0 : st.error().code;
              cv.notify_all();
            }};
  }
  template <typename P>
  bool WaitFor(P p, std::chrono::milliseconds d = 5s) {
    std::unique_lock l(mu);
    return cv.wait_for(l, d, p);
  }
};

std::shared_ptr<EdgeClient> ClientTo(const std::string& address) {
  auto connector = GrpcEdgeConnector::Create(EdgeClientOptions{});
  EXPECT_TRUE(connector) << connector.error().message;
  return (*connector)->Connect("edge-t", address);
}

TEST(ResultStreamTest, BatchesArriveInOrderAndTheLatestAcknowledgementReachesTheEdge) {
  StreamingAgent agent;
  int port = 0;
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&agent);
  auto server = b.BuildAndStart();
  ASSERT_GT(port, 0);

  Seen seen;
  auto stream = ClientTo("127.0.0.1:" + std::to_string(port))->WatchStampResults(7, 0, seen.Handler());
  ASSERT_TRUE(seen.WaitFor([&] { return seen.cursors.size() == 3; }));
  EXPECT_EQ(seen.cursors, (std::vector<uint64_t>{1, 2, 3}));
  {
    std::lock_guard l(agent.mu);
    EXPECT_EQ(agent.first.log_id(), 7u);
    EXPECT_EQ(agent.first.ack(), 0u);
    EXPECT_EQ(agent.first.max_delay_ms(), 250u);
  }
  // Several at once: each reaches the edge in order or is replaced by a newer one; the last
  // always arrives.
  for (uint64_t c = 1; c <= 3; ++c) stream->Ack(7, c);
  {
    std::unique_lock l(agent.mu);
    ASSERT_TRUE(agent.cv.wait_for(l, 5s, [&] { return !agent.acks.empty() && agent.acks.back() == 3; }));
    EXPECT_TRUE(std::is_sorted(agent.acks.begin(), agent.acks.end()));
    EXPECT_LE(agent.acks.size(), 3u);
  }
  EXPECT_EQ(seen.done, 0);
  stream->Cancel();
  ASSERT_TRUE(seen.WaitFor([&] { return seen.done > 0; }));
  EXPECT_EQ(seen.code, 1 /* CANCELLED */);
  stream->Cancel();  // after the end: nothing happens
  stream->Ack(7, 4);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(seen.done, 1);
  EXPECT_EQ(seen.cursors.size(), 3u);
  server->Shutdown();
}

TEST(ResultStreamTest, AStreamToAFrozenAgentEndsOnceWithItsReason) {
  // Accepts TCP (the kernel's backlog) but never speaks HTTP/2: a frozen agent.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);

  // gRPC gives up on its own (UNAVAILABLE) or the cancel ends it (CANCELLED): either way the
  // handler hears of it exactly once, and promptly.
  Seen seen;
  auto stream = ClientTo("127.0.0.1:" + std::to_string(ntohs(a.sin_port)))->WatchStampResults(0, 0, seen.Handler());
  std::this_thread::sleep_for(300ms);
  stream->Cancel();
  ASSERT_TRUE(seen.WaitFor([&] { return seen.done > 0; }, 3s));
  stream->Cancel();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(seen.done, 1);
  EXPECT_TRUE(seen.code == 1 || seen.code == 14) << seen.code;
  EXPECT_TRUE(seen.cursors.empty());
  ::close(fd);
}

TEST(EdgeWorkersTest, AnEdgeRunsInOrderAndAStuckEdgeHoldsOnlyItself) {
  EdgeWorkers w;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<int> order;
  ASSERT_TRUE(w.Post("stuck", [&] {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return release; });
  }));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(w.Post("other", [&, i] {
      std::lock_guard l(mu);
      order.push_back(i);
      cv.notify_all();
    }));
  }
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, 5s, [&] { return order.size() == 5; }));
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  }
  // The stuck edge's queue is bounded; nobody else's is affected.
  int accepted = 0;
  while (w.Post("stuck", [] {}) && accepted < 100) ++accepted;
  EXPECT_EQ(accepted, static_cast<int>(EdgeWorkers::kMaxQueued));
  EXPECT_TRUE(w.Post("other", [] {}));
  {
    std::lock_guard l(mu);
    release = true;
  }
  cv.notify_all();
  w.Stop();
}

TEST(EdgeWorkersTest, AQuietEdgeGivesItsThreadBackAndGetsOneAgain) {
  EdgeWorkers w(50ms);
  std::mutex mu;
  std::condition_variable cv;
  int ran = 0;
  auto task = [&] {
    std::lock_guard l(mu);
    ++ran;
    cv.notify_all();
  };
  EXPECT_EQ(w.Threads(), 0u);
  for (int round = 1; round <= 3; ++round) {
    ASSERT_TRUE(w.Post("e" + std::to_string(round % 2), task));
    {
      std::unique_lock l(mu);
      ASSERT_TRUE(cv.wait_for(l, 5s, [&] { return ran == round; }));
    }
    EXPECT_EQ(w.Threads(), 1u);  // within the idle time: still there for the next task
    for (int i = 0; i < 200 && w.Threads() > 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(w.Threads(), 0u) << "round " << round;
  }
  w.Stop();
}

}  // namespace
}  // namespace segwan::controller
