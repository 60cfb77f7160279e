#include "segwan/clock.h"

#include <sys/timex.h>

#include <ctime>

namespace segwan {

int32_t TaiUtcOffset() {
  timex tx{};
  if (adjtimex(&tx) < 0) return 0;
  return tx.tai;
}

uint64_t NowTaiNs() {
  timespec ts;
  clock_gettime(CLOCK_TAI, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

int64_t NowUtcMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace segwan
