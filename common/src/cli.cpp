#include "segwan/cli.h"

#include <cstdio>
#include <iostream>

#include "segwan/log.h"
#include "segwan/version.h"

namespace segwan {

std::optional<int> StartCommandLine(FlagSet& flags, int argc, const char* const* argv) {
  const std::string& program = flags.Program();
  if (auto err = flags.Parse(argc, argv)) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), err->c_str());
    return 2;
  }
  if (flags.HelpRequested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (flags.VersionRequested()) {
    std::cout << program << " " << Version() << "\n";
    return 0;
  }
  if (flags.Has("config") && !flags.GetString("config").empty()) {
    if (auto err = flags.ParseConfigFile(flags.GetString("config"))) {
      std::fprintf(stderr, "%s: %s\n", program.c_str(), err->c_str());
      return 2;
    }
  }
  if (flags.Has("log-level")) {
    LogLevel level;
    if (!ParseLogLevel(flags.GetString("log-level"), &level)) {
      std::fprintf(stderr, "%s: --log-level: expected debug, info, warn or error\n", program.c_str());
      return 2;
    }
    SetLogLevel(level);
  }
  return std::nullopt;
}

sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

}  // namespace segwan
