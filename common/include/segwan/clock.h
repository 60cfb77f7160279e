#pragma once

#include <cstdint>
#include <string>

namespace segwan {

// TAI - UTC in seconds as the kernel knows it (adjtimex); 0 when it was never set. STAMP times
// are TAI on both ends, so whoever turns them into UTC subtracts this.
int32_t TaiUtcOffset();
// CLOCK_TAI now, in nanoseconds.
uint64_t NowTaiNs();
// CLOCK_REALTIME now, in milliseconds (UTC).
int64_t NowUtcMs();
// ISO 8601 UTC with milliseconds: 2026-11-23T21:04:05.123Z (log lines, the REST API).
std::string IsoTime(int64_t utc_ms);

}  // namespace segwan
