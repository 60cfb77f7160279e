#pragma once

#include <cstdint>

namespace segwan {

// TAI - UTC in seconds as the kernel knows it (adjtimex); 0 when it was never set. STAMP times
// are TAI on both ends, so whoever turns them into UTC subtracts this.
int32_t TaiUtcOffset();
// CLOCK_TAI now, in nanoseconds.
uint64_t NowTaiNs();
// CLOCK_REALTIME now, in milliseconds (UTC).
int64_t NowUtcMs();

}  // namespace segwan
