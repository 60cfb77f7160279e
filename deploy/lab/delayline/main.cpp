// segwan-delayline: the lab's stand-in for netem. It joins two interfaces with AF_PACKET sockets
// and forwards every frame between them, delaying, jittering and dropping each direction as told
// over a control socket.
//
//   segwan-delayline run --a IF --b IF --control PATH
//   segwan-delayline set PATH --dir ab|ba [--delay-ms X] [--jitter-ms Y] [--loss PERCENT]
//   segwan-delayline get PATH
#include <arpa/inet.h>
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

#include <cerrno>
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
using segwan::lab::Impairment;

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
  const char* name;
  int rx_fd;
  int tx_fd;
  AtomicImpairment impairment;
  DirectionCounters counters;
};

void Forward(Direction* d, uint64_t seed) {
  prctl(PR_SET_TIMERSLACK, 1UL);  // wake up on time, not up to 50 us late
  // Real-time priority: on a busy machine an ordinary thread wakes up milliseconds late and
  // the link adds that to every delay it emulates. (Root only; without it, ordinary priority.)
  sched_param rt{};
  rt.sched_priority = 10;
  if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) != 0) {
    std::fprintf(stderr, "delayline %s: no real-time priority; delays may run late on a busy machine\n", d->name);
  }
  DelayQueue queue(seed, kMaxQueuedPackets);
  std::vector<uint8_t> buf(kMaxFrame);
  // Sleeping until a release time wakes up late by tens to hundreds of microseconds on a busy
  // VM; so sleep until kSpinNs before it and poll without sleeping for the rest.
  constexpr int64_t kSpinNs = 200'000;
  while (!g_stop) {
    timespec timeout{0, 200'000'000};  // re-check g_stop at least 5 times a second
    if (!queue.Empty()) {
      const int64_t wait = std::max<int64_t>(0, queue.NextRelease() - NowNs() - kSpinNs);
      if (wait < 200'000'000) timeout = {wait / 1'000'000'000, wait % 1'000'000'000};
    }
    pollfd pfd{d->rx_fd, POLLIN, 0};
    const int n = ppoll(&pfd, 1, &timeout, nullptr);
    if (n < 0 && errno != EINTR) break;
    if (n > 0) {
      const Impairment imp = d->impairment.Load();
      // CLOCK_REALTIME (kernel stamps) to CLOCK_MONOTONIC (our schedule) for this batch.
      timespec rt, mono;
      clock_gettime(CLOCK_REALTIME, &rt);
      clock_gettime(CLOCK_MONOTONIC, &mono);
      const int64_t rt_to_mono = (mono.tv_sec - rt.tv_sec) * 1'000'000'000LL + (mono.tv_nsec - rt.tv_nsec);
      for (;;) {
        iovec iov{buf.data(), buf.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t len = recvmsg(d->rx_fd, &msg, MSG_DONTWAIT);
        if (len <= 0) break;
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
        switch (queue.Push(std::move(frame), arrival, imp)) {
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
    int64_t now = NowNs();
    if (!queue.Empty() && queue.NextRelease() > now && queue.NextRelease() - now <= kSpinNs) {
      while (NowNs() < queue.NextRelease()) {
        pollfd spin{d->rx_fd, POLLIN, 0};
        if (poll(&spin, 1, 0) > 0) break;  // a packet arrived: queue it first
      }
      now = NowNs();
    }
    while (!queue.Empty() && queue.NextRelease() <= now) {
      auto p = queue.Pop();
      d->counters.late.Add(NowNs() - p.release_ns);
      if (send(d->tx_fd, p.bytes.data(), p.bytes.size(), 0) < 0) {
        d->counters.send_errors.fetch_add(1, std::memory_order_relaxed);
      } else {
        d->counters.forwarded.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
}

std::string Describe(const Direction& d) {
  const Impairment imp = d.impairment.Load();
  char line[512];
  std::snprintf(line, sizeof line,
                "%s delay_us=%u jitter_us=%u loss_ppm=%u received=%llu forwarded=%llu "
                "dropped_loss=%llu dropped_overflow=%llu send_errors=%llu late_p50_us=%lld late_p99_us=%lld "
                "late_max_us=%lld\n",
                d.name, imp.delay_us, imp.jitter_us, imp.loss_ppm,
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

// Control protocol, one request per connection, one line each way:
//   "set ab <delay_us> <jitter_us> <loss_ppm>" -> "ok" | "error: ..."
//   "get" -> one line per direction
std::string HandleControl(const std::string& request, Direction* ab, Direction* ba) {
  char dir[8] = {};
  unsigned delay = 0, jitter = 0, loss = 0;
  if (request.rfind("get", 0) == 0) return Describe(*ab) + Describe(*ba);
  if (std::sscanf(request.c_str(), "set %7s %u %u %u", dir, &delay, &jitter, &loss) == 4) {
    Direction* d = std::strcmp(dir, "ab") == 0 ? ab : std::strcmp(dir, "ba") == 0 ? ba : nullptr;
    if (!d) return "error: direction must be ab or ba\n";
    if (loss > 1'000'000) return "error: loss_ppm must be at most 1000000\n";
    d->impairment.Store(Impairment{delay, jitter, loss});
    return "ok\n";
  }
  return "error: unknown request\n";
}

void ServeControl(int listen_fd, Direction* ab, Direction* ba) {
  while (!g_stop) {
    pollfd pfd{listen_fd, POLLIN, 0};
    if (poll(&pfd, 1, 200) <= 0) continue;
    int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    char buf[256];
    const ssize_t n = recv(c, buf, sizeof buf - 1, 0);
    if (n > 0) {
      buf[n] = 0;
      const std::string reply = HandleControl(buf, ab, ba);
      (void)!write(c, reply.data(), reply.size());
    }
    close(c);
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

int Run(const segwan::FlagSet& f) {
  const std::string a = f.GetString("a"), b = f.GetString("b"), ctl = f.GetString("control");
  if (a.empty() || b.empty() || ctl.empty()) {
    std::fprintf(stderr, "delayline: run needs --a, --b and --control\n");
    return 2;
  }
  const int fa = OpenPacketSocket(a), fb = OpenPacketSocket(b);
  if (fa < 0 || fb < 0) return 1;
  unlink(ctl.c_str());
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (ctl.size() >= sizeof sun.sun_path) {
    std::fprintf(stderr, "delayline: --control path too long\n");
    return 2;
  }
  std::memcpy(sun.sun_path, ctl.c_str(), ctl.size());
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0 || listen(lfd, 8) < 0) {
    std::perror("delayline: control socket");
    return 1;
  }
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // No page faults in the forwarding path either.
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) std::perror("delayline: mlockall (continuing)");
  Direction ab{"ab", fa, fb, {}, {}};
  Direction ba{"ba", fb, fa, {}, {}};
  std::random_device rd;
  std::thread t1(Forward, &ab, (uint64_t{rd()} << 32) | rd());
  std::thread t2(Forward, &ba, (uint64_t{rd()} << 32) | rd());
  ServeControl(lfd, &ab, &ba);
  t1.join();
  t2.join();
  close(lfd);
  unlink(ctl.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  segwan::FlagSet f("segwan-delayline",
                    "Lab link emulator: forwards frames between two interfaces with per-direction\n"
                    "delay, jitter and loss.\n"
                    "  run --a IF --b IF --control PATH\n"
                    "  set PATH --dir ab|ba [--delay-ms X] [--jitter-ms Y] [--loss PERCENT]\n"
                    "  get PATH");
  f.AddString("a", "", "run: first interface");
  f.AddString("b", "", "run: second interface");
  f.AddString("control", "", "run: control socket path");
  f.AddString("dir", "", "set: ab (a to b) or ba");
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
