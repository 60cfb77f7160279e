#pragma once

#include <cstdint>
#include <string>

namespace segwan {

// TAI - UTC in seconds as the kernel knows it (adjtimex); 0 when it was never set. STAMP times
// are TAI on both ends, so whoever turns them into UTC subtracts this.
int32_t TaiUtcOffset();
// What the kernel says of the system clock's synchronisation (adjtimex): synchronised when
// a time daemon (chrony, ntpd, phc2sys...) keeps STA_UNSYNC clear; the error is its estimated
// error then, else its maximum error (at least 1 µs). STAMP reports it in every Error Estimate.
struct ClockSync {
  bool synchronized = false;
  uint64_t error_ns = 1000;
  bool operator==(const ClockSync&) const = default;
};
ClockSync ReadClockSync();
// CLOCK_TAI now, in nanoseconds.
uint64_t NowTaiNs();
// CLOCK_REALTIME now, in milliseconds (UTC).
int64_t NowUtcMs();
// The one conversion between the two time scales of the project: measurements in TAI
// nanoseconds, the API's times in UTC milliseconds, `offset_s` = TAI - UTC.
struct TaiUtc {
  int32_t offset_s = 0;
  int64_t UtcMs(uint64_t tai_ns) const {
    return static_cast<int64_t>(tai_ns / 1'000'000ULL) - static_cast<int64_t>(offset_s) * 1000;
  }
  // Times before the TAI epoch are clamped to it.
  uint64_t TaiNs(int64_t utc_ms) const {
    const int64_t tai_ms = utc_ms + static_cast<int64_t>(offset_s) * 1000;
    return tai_ms <= 0 ? 0 : static_cast<uint64_t>(tai_ms) * 1'000'000ULL;
  }
};

// ISO 8601 UTC with milliseconds: 2026-11-23T21:04:05.123Z (log lines, the REST API).
std::string IsoTime(int64_t utc_ms);

}  // namespace segwan
