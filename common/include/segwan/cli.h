#pragma once

#include <signal.h>

#include <optional>

#include "segwan/flags.h"

namespace segwan {

// The start of every SegWAN binary's main(): parses argv, answers --help and --version, reads
// --config FILE when the program declared a "config" flag, and applies --log-level when it
// declared one. Returns the exit code when the program should stop here (0 after --help,
// 2 after a usage error, printed to stderr), nothing when it should go on.
std::optional<int> StartCommandLine(FlagSet& flags, int argc, const char* const* argv);

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards (call
// it before starting any), so that one thread can sigwait() for them on the returned set and
// shut down in order.
sigset_t BlockStopSignals();

}  // namespace segwan
