// segwan-delayline: the lab's stand-in for netem. It joins two interfaces with AF_PACKET sockets
// and forwards every frame between them, delaying, jittering and dropping each direction as told
// over a control socket.
//
//   segwan-delayline run --a IF --b IF --control PATH
//   segwan-delayline run --a IF --b IF --links ID=NETNS,... --control-dir DIR
//   segwan-delayline set PATH --dir ab|ba [--delay-ms X] [--jitter-ms Y] [--loss PERCENT]
//   segwan-delayline get PATH
//   segwan-delayline wakeup-test [--count N]
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <random>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "delay_queue.h"
#include "segwan/flags.h"

namespace {

using segwan::lab::AtomicImpairment;
using segwan::lab::DelayQueue;
using segwan::lab::DirectionCounters;
using segwan::lab::EarliestQueue;
using segwan::lab::Impairment;
using segwan::lab::LatenessHistogram;

constexpr size_t kMaxQueuedPackets = 200'000;
constexpr size_t kMaxFrame = 65'536;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

int OpenPacketSocket(const std::string& ifname) {
  const unsigned ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) {
    std::fprintf(stderr, "delayline: no interface %s\n", ifname.c_str());
    return -1;
  }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    std::perror("delayline: socket(AF_PACKET)");
    return -1;
  }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) {
    std::perror("delayline: bind");
    close(fd);
    return -1;
  }
  int one = 1;
  // Frames we send out of this interface must not come back to us as received ones.
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  // The kernel's receive time is the frame's arrival time: waking up to read it takes longer.
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  packet_mreq mreq{};
  mreq.mr_ifindex = static_cast<int>(ifindex);
  mreq.mr_type = PACKET_MR_PROMISC;
  setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq);
  return fd;
}

struct Direction {
  std::string name;  // "ab" or "ba"
  int rx_fd = -1;
  int tx_fd = -1;
  AtomicImpairment impairment;
  DirectionCounters counters;
  DelayQueue queue;  // the forwarding thread's only
  Direction(std::string n, int rx, int tx, uint64_t seed)
      : name(std::move(n)), rx_fd(rx), tx_fd(tx), queue(seed, kMaxQueuedPackets) {}
};

// One emulated link: two interfaces (in the link's own namespace) and a control socket.
struct Link {
  std::string id;
  int listen_fd = -1;
  std::string control_path;
  std::unique_ptr<Direction> ab, ba;
};

// Reads every frame waiting on `d`'s receive socket into its queue, stamped with the kernel's
// receive time (`rt_to_mono` converts it to our CLOCK_MONOTONIC schedule).
void Receive(Direction* d, int64_t rt_to_mono, std::vector<uint8_t>& buf) {
  const Impairment imp = d->impairment.Load();
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t len = recvmsg(d->rx_fd, &msg, MSG_DONTWAIT);
    if (len <= 0) return;
    int64_t arrival = NowNs();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        const int64_t k = ts.tv_sec * 1'000'000'000LL + ts.tv_nsec + rt_to_mono;
        if (k <= arrival) arrival = k;
      }
    }
    d->counters.received.fetch_add(1, std::memory_order_relaxed);
    std::vector<uint8_t> frame(buf.begin(), buf.begin() + len);
    switch (d->queue.Push(std::move(frame), arrival, imp)) {
      case DelayQueue::Verdict::kQueued:
        break;
      case DelayQueue::Verdict::kLost:
        d->counters.dropped_loss.fetch_add(1, std::memory_order_relaxed);
        break;
      case DelayQueue::Verdict::kOverflow:
        d->counters.dropped_overflow.fetch_add(1, std::memory_order_relaxed);
        break;
    }
  }
}

// Sleeping until a release time wakes up late by tens to hundreds of microseconds on a busy
// VM; so sleep until kSpinNs before it and poll without sleeping for the rest.
constexpr int64_t kSpinNs = 200'000;

// Waits until `deadline` (CLOCK_MONOTONIC, ns) or until one of `pfds` is readable, whichever
// comes first; true if one is readable. Without a deadline (< 0) it waits up to 200 ms.
bool WaitUntil(int64_t deadline, std::vector<pollfd>& pfds) {
  const int64_t now = NowNs();
  const int64_t wait = deadline < 0 ? 200'000'000 : std::max<int64_t>(0, deadline - now - kSpinNs);
  if (wait > 0) {
    const timespec timeout{wait / 1'000'000'000, wait % 1'000'000'000};
    const int n = ppoll(pfds.data(), pfds.size(), &timeout, nullptr);
    if (n > 0) return true;
  }
  if (deadline < 0) return false;
  while (NowNs() < deadline) {
    if (!pfds.empty() && poll(pfds.data(), pfds.size(), 0) > 0) return true;
  }
  return false;
}

// Real-time priority: on a busy machine an ordinary thread wakes up milliseconds late and the
// link adds that to every delay it emulates. (Root only; without it, ordinary priority.)
void BecomeRealTime() {
  prctl(PR_SET_TIMERSLACK, 1UL);  // wake up on time, not up to 50 us late
  sched_param rt{};
  rt.sched_priority = 10;
  if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) != 0) {
    std::fprintf(stderr, "delayline: no real-time priority; delays may run late on a busy machine\n");
  }
}

// The one forwarding thread: every direction of every link. One thread, so that a single one
// waits for release times (and spins just before them); see EarliestQueue.
void Forward(const std::vector<Direction*>& dirs) {
  BecomeRealTime();
  std::vector<DelayQueue*> queues;
  std::vector<pollfd> pfds;
  for (Direction* d : dirs) {
    queues.push_back(&d->queue);
    pfds.push_back(pollfd{d->rx_fd, POLLIN, 0});
  }
  std::vector<uint8_t> buf(kMaxFrame);
  while (!g_stop) {
    const size_t next = EarliestQueue(queues);
    if (WaitUntil(next < queues.size() ? queues[next]->NextRelease() : -1, pfds)) {
      // CLOCK_REALTIME (kernel stamps) to CLOCK_MONOTONIC (our schedule) for this batch.
      timespec rt_now, mono;
      clock_gettime(CLOCK_REALTIME, &rt_now);
      clock_gettime(CLOCK_MONOTONIC, &mono);
      const int64_t rt_to_mono = (mono.tv_sec - rt_now.tv_sec) * 1'000'000'000LL + (mono.tv_nsec - rt_now.tv_nsec);
      for (size_t i = 0; i < pfds.size(); ++i) {
        if (pfds[i].revents & POLLIN) Receive(dirs[i], rt_to_mono, buf);
      }
    }
    // Everything due, in release order across all directions.
    const int64_t now = NowNs();
    for (size_t i = EarliestQueue(queues); i < queues.size() && queues[i]->NextRelease() <= now; i = EarliestQueue(queues)) {
      Direction* d = dirs[i];
      auto p = d->queue.Pop();
      d->counters.late.Add(NowNs() - p.release_ns);
      if (send(d->tx_fd, p.bytes.data(), p.bytes.size(), 0) < 0) {
        d->counters.send_errors.fetch_add(1, std::memory_order_relaxed);
      } else {
        d->counters.forwarded.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
}

// The machine's own floor, for comparison: how late a real-time thread with the forwarding
// thread's timer strategy wakes up for deadlines 1-2 ms ahead, with nothing to forward.
int WakeupTest(int count) {
  std::vector<pollfd> none;
  LatenessHistogram late;
  std::thread t([&] {
    BecomeRealTime();
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_int_distribution<int64_t> ahead(1'000'000, 2'000'000);
    for (int i = 0; i < count && !g_stop; ++i) {
      const int64_t deadline = NowNs() + ahead(rng);
      WaitUntil(deadline, none);
      late.Add(NowNs() - deadline);
    }
  });
  t.join();
  std::printf("wakeup count=%llu late_p50_us=%lld late_p99_us=%lld late_max_us=%lld\n",
              static_cast<unsigned long long>(late.Count()), static_cast<long long>(late.QuantileNs(0.5) / 1000),
              static_cast<long long>(late.QuantileNs(0.99) / 1000), static_cast<long long>(late.MaxNs() / 1000));
  return 0;
}

std::string Describe(const Direction& d) {
  const Impairment imp = d.impairment.Load();
  char line[512];
  std::snprintf(line, sizeof line,
                "%s delay_us=%u jitter_us=%u loss_ppm=%u received=%llu forwarded=%llu "
                "dropped_loss=%llu dropped_overflow=%llu send_errors=%llu late_p50_us=%lld late_p99_us=%lld "
                "late_max_us=%lld\n",
                d.name.c_str(), imp.delay_us, imp.jitter_us, imp.loss_ppm,
                static_cast<unsigned long long>(d.counters.received.load()),
                static_cast<unsigned long long>(d.counters.forwarded.load()),
                static_cast<unsigned long long>(d.counters.dropped_loss.load()),
                static_cast<unsigned long long>(d.counters.dropped_overflow.load()),
                static_cast<unsigned long long>(d.counters.send_errors.load()),
                static_cast<long long>(d.counters.late.QuantileNs(0.5) / 1000),
                static_cast<long long>(d.counters.late.QuantileNs(0.99) / 1000),
                static_cast<long long>(d.counters.late.MaxNs() / 1000));
  return line;
}

// Every direction of every link this process forwards, for the "all" line of `get`.
std::vector<const Direction*> g_all_directions;

std::string DescribeAll() {
  std::vector<const LatenessHistogram*> hs;
  uint64_t forwarded = 0;
  int64_t max_ns = 0;
  for (const Direction* d : g_all_directions) {
    hs.push_back(&d->counters.late);
    forwarded += d->counters.forwarded.load();
    max_ns = std::max(max_ns, d->counters.late.MaxNs());
  }
  char line[256];
  std::snprintf(line, sizeof line, "all directions=%zu forwarded=%llu late_p50_us=%lld late_p99_us=%lld late_max_us=%lld\n",
                hs.size(), static_cast<unsigned long long>(forwarded),
                static_cast<long long>(LatenessHistogram::QuantileNs(hs, 0.5) / 1000),
                static_cast<long long>(LatenessHistogram::QuantileNs(hs, 0.99) / 1000),
                static_cast<long long>(max_ns / 1000));
  return line;
}

// Control protocol, one request per connection, one line each way:
//   "set ab <delay_us> <jitter_us> <loss_ppm>" -> "ok" | "error: ..."
//   "get" -> one line per direction, and an "all" line: lateness over every link of the process
std::string HandleControl(const std::string& request, Direction* ab, Direction* ba) {
  char dir[8] = {};
  unsigned delay = 0, jitter = 0, loss = 0;
  if (request.rfind("get", 0) == 0) return Describe(*ab) + Describe(*ba) + DescribeAll();
  if (std::sscanf(request.c_str(), "set %7s %u %u %u", dir, &delay, &jitter, &loss) == 4) {
    Direction* d = std::strcmp(dir, "ab") == 0 ? ab : std::strcmp(dir, "ba") == 0 ? ba : nullptr;
    if (!d) return "error: direction must be ab or ba\n";
    if (loss > 1'000'000) return "error: loss_ppm must be at most 1000000\n";
    d->impairment.Store(Impairment{delay, jitter, loss});
    return "ok\n";
  }
  return "error: unknown request\n";
}

void ServeControl(const std::vector<Link>& links) {
  std::vector<pollfd> pfds;
  for (const Link& l : links) pfds.push_back(pollfd{l.listen_fd, POLLIN, 0});
  while (!g_stop) {
    if (poll(pfds.data(), pfds.size(), 200) <= 0) continue;
    for (size_t i = 0; i < pfds.size(); ++i) {
      if (!(pfds[i].revents & POLLIN)) continue;
      int c = accept4(pfds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{1, 0};  // a client that connects and says nothing holds no link's control
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buf[256];
      const ssize_t n = recv(c, buf, sizeof buf - 1, 0);
      if (n > 0) {
        buf[n] = 0;
        const std::string reply = HandleControl(buf, links[i].ab.get(), links[i].ba.get());
        (void)!write(c, reply.data(), reply.size());
      }
      close(c);
    }
  }
}

int ConnectControl(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) return -1;
  std::memcpy(sun.sun_path, path.c_str(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0) {
    std::fprintf(stderr, "delayline: cannot reach %s: %s\n", path.c_str(), std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int Request(const std::string& path, const std::string& request) {
  const int fd = ConnectControl(path);
  if (fd < 0) return 1;
  (void)!write(fd, request.data(), request.size());
  std::string reply;
  char buf[1024];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) reply.append(buf, n);
  close(fd);
  std::fputs(reply.c_str(), stdout);
  return reply.rfind("error", 0) == 0 ? 1 : 0;
}

int Listen(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) {
    std::fprintf(stderr, "delayline: control path too long: %s\n", path.c_str());
    return -1;
  }
  unlink(path.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::memcpy(sun.sun_path, path.c_str(), path.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0 || listen(fd, 8) < 0) {
    std::fprintf(stderr, "delayline: control socket %s: %s\n", path.c_str(), std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// Opens the packet sockets of interfaces `a` and `b` inside network namespace `netns` (a name
// under /run/netns; empty: our own) and comes back to our own namespace.
bool OpenInNamespace(const std::string& netns, const std::string& a, const std::string& b, int* fa, int* fb) {
  int home = -1, there = -1;
  if (!netns.empty()) {
    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    there = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (home < 0 || there < 0 || setns(there, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "delayline: cannot enter namespace %s: %s\n", netns.c_str(), std::strerror(errno));
      if (home >= 0) close(home);
      if (there >= 0) close(there);
      return false;
    }
    close(there);
  }
  *fa = OpenPacketSocket(a);
  *fb = OpenPacketSocket(b);
  if (home >= 0) {
    if (setns(home, CLONE_NEWNET) != 0) {
      std::perror("delayline: cannot return to our namespace");
      std::exit(1);
    }
    close(home);
  }
  return *fa >= 0 && *fb >= 0;
}

int Run(const segwan::FlagSet& f) {
  const std::string a = f.GetString("a"), b = f.GetString("b"), ctl = f.GetString("control"),
                    specs = f.GetString("links"), dir = f.GetString("control-dir");
  // Either one link here (--control) or several in their namespaces (--links, --control-dir).
  std::vector<std::pair<std::string, std::string>> wanted;  // id, namespace
  if (a.empty() || b.empty() || (ctl.empty() == specs.empty()) || (specs.empty() != dir.empty())) {
    std::fprintf(stderr, "delayline: run needs --a, --b and either --control or --links with --control-dir\n");
    return 2;
  }
  if (specs.empty()) {
    wanted.emplace_back("", "");
  } else {
    size_t pos = 0;
    while (pos <= specs.size()) {
      const size_t comma = std::min(specs.find(',', pos), specs.size());
      const std::string item = specs.substr(pos, comma - pos);
      const size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == item.size() || item.find('/') != std::string::npos) {
        std::fprintf(stderr, "delayline: --links: '%s' is not ID=NAMESPACE\n", item.c_str());
        return 2;
      }
      wanted.emplace_back(item.substr(0, eq), item.substr(eq + 1));
      pos = comma + 1;
    }
  }
  std::random_device rd;
  auto seed = [&] { return (uint64_t{rd()} << 32) | rd(); };
  std::vector<Link> links;
  for (const auto& [id, netns] : wanted) {
    int fa = -1, fb = -1;
    if (!OpenInNamespace(netns, a, b, &fa, &fb)) return 1;
    Link l;
    l.id = id;
    l.control_path = id.empty() ? ctl : dir + "/" + id + ".sock";
    l.ab = std::make_unique<Direction>("ab", fa, fb, seed());
    l.ba = std::make_unique<Direction>("ba", fb, fa, seed());
    links.push_back(std::move(l));
  }
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // No page faults in the forwarding path either.
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) std::perror("delayline: mlockall (continuing)");
  std::vector<Direction*> dirs;
  for (Link& l : links) {
    dirs.push_back(l.ab.get());
    dirs.push_back(l.ba.get());
  }
  g_all_directions.assign(dirs.begin(), dirs.end());
  std::thread forward(Forward, dirs);
  // The control sockets last: one that exists says its link forwards.
  bool ok = true;
  for (Link& l : links) {
    l.listen_fd = Listen(l.control_path);
    ok = ok && l.listen_fd >= 0;
  }
  if (ok) ServeControl(links);
  g_stop = 1;
  forward.join();
  for (const Link& l : links) {
    if (l.listen_fd >= 0) {
      close(l.listen_fd);
      unlink(l.control_path.c_str());
    }
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  segwan::FlagSet f("segwan-delayline",
                    "Lab link emulator: forwards frames between two interfaces with per-direction\n"
                    "delay, jitter and loss.\n"
                    "  run --a IF --b IF --control PATH\n"
                    "  run --a IF --b IF --links ID=NETNS,... --control-dir DIR\n"
                    "  set PATH --dir ab|ba [--delay-ms X] [--jitter-ms Y] [--loss PERCENT]\n"
                    "  get PATH\n"
                    "  wakeup-test [--count N]   how late a real-time thread wakes up here (the floor)");
  f.AddString("a", "", "run: first interface");
  f.AddString("b", "", "run: second interface");
  f.AddString("control", "", "run: control socket path (one link, in our own namespace)");
  f.AddString("links", "", "run: several links, ID=NAMESPACE,...: the interfaces --a and --b of each in its namespace");
  f.AddString("control-dir", "", "run, with --links: the folder of the links' control sockets (ID.sock)");
  f.AddString("dir", "", "set: ab (a to b) or ba");
  f.AddString("count", "2000", "wakeup-test: how many deadlines");
  f.AddString("delay-ms", "0", "set: one-way delay in milliseconds (fractions allowed)");
  f.AddString("jitter-ms", "0", "set: jitter in milliseconds, uniform +-");
  f.AddString("loss", "0", "set: loss in percent (fractions allowed)");
  if (auto err = f.Parse(argc, argv)) {
    std::fprintf(stderr, "segwan-delayline: %s\n", err->c_str());
    return 2;
  }
  if (f.HelpRequested() || f.Positional().empty()) {
    std::fputs(f.Usage().c_str(), f.HelpRequested() ? stdout : stderr);
    return f.HelpRequested() ? 0 : 2;
  }
  const auto& pos = f.Positional();
  if (pos[0] == "run") return Run(f);
  if (pos[0] == "wakeup-test") {
    const int count = std::atoi(f.GetString("count").c_str());
    if (count <= 0 || count > 1'000'000) {
      std::fprintf(stderr, "segwan-delayline: --count must be in [1, 1000000]\n");
      return 2;
    }
    return WakeupTest(count);
  }
  if ((pos[0] == "set" || pos[0] == "get") && pos.size() == 2) {
    if (pos[0] == "get") return Request(pos[1], "get");
    auto parse = [&](const char* name, double max, double scale, unsigned* out) {
      char* end = nullptr;
      const std::string text = f.GetString(name);
      const double v = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != 0 || !(v >= 0) || v > max) {
        std::fprintf(stderr, "segwan-delayline: --%s: '%s' must be a number in [0, %g]\n", name,
                     text.c_str(), max);
        return false;
      }
      *out = static_cast<unsigned>(std::llround(v * scale));
      return true;
    };
    unsigned delay = 0, jitter = 0, loss = 0;
    if (!parse("delay-ms", 60'000, 1000, &delay) || !parse("jitter-ms", 60'000, 1000, &jitter) ||
        !parse("loss", 100, 10'000, &loss)) {
      return 2;
    }
    const std::string dir = f.GetString("dir");
    if (dir != "ab" && dir != "ba") {
      std::fprintf(stderr, "segwan-delayline: --dir must be ab or ba\n");
      return 2;
    }
    return Request(pos[1], "set " + dir + " " + std::to_string(delay) + " " +
                               std::to_string(jitter) + " " + std::to_string(loss));
  }
  std::fprintf(stderr, "segwan-delayline: unknown command (see --help)\n");
  return 2;
}
