#include "segwan/clock.h"

#include <sys/timex.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace segwan {

int32_t TaiUtcOffset() {
  timex tx{};
  if (adjtimex(&tx) < 0) return 0;
  return tx.tai;
}

ClockSync ReadClockSync() {
  timex tx{};
  const int state = adjtimex(&tx);
  if (state < 0) return {};
  ClockSync c;
  c.synchronized = state != TIME_ERROR && !(tx.status & STA_UNSYNC);
  const long us = c.synchronized ? tx.esterror : tx.maxerror;
  c.error_ns = std::max<uint64_t>(1000, static_cast<uint64_t>(std::max(0L, us)) * 1000);
  return c;
}

uint64_t NowTaiNs() {
  timespec ts;
  clock_gettime(CLOCK_TAI, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::string IsoTime(int64_t ms) {
  const auto secs = static_cast<time_t>(ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1,
                t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

int64_t NowUtcMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace segwan
