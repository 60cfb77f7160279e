// edge-manager: the SegWAN agent on an edge router. This file only wires the parts together.
#include <cstdio>
#include <iostream>

#include "edge-manager/agent/config.h"
#include "edge-manager/agent/server.h"
#include "segwan/log.h"
#include "segwan/version.h"

int main(int argc, char** argv) {
  segwan::FlagSet flags("edge-manager",
                        "SegWAN edge agent: configures SRv6 slices through netlink, runs STAMP\n"
                        "delay probes and loss counters, and obeys the controller over gRPC.");
  segwan::edge::AddAgentFlags(flags);
  if (auto err = flags.Parse(argc, argv)) {
    std::fprintf(stderr, "edge-manager: %s\n", err->c_str());
    return 2;
  }
  if (flags.HelpRequested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (flags.VersionRequested()) {
    std::cout << "edge-manager " << segwan::Version() << "\n";
    return 0;
  }
  if (!flags.GetString("config").empty()) {
    if (auto err = flags.ParseConfigFile(flags.GetString("config"))) {
      std::fprintf(stderr, "edge-manager: %s\n", err->c_str());
      return 2;
    }
  }
  segwan::LogLevel level;
  if (!segwan::ParseLogLevel(flags.GetString("log-level"), &level)) {
    std::fprintf(stderr, "edge-manager: --log-level: expected debug, info, warn or error\n");
    return 2;
  }
  segwan::SetLogLevel(level);
  auto config = segwan::edge::AgentConfigFromFlags(flags);
  if (!config) {
    std::fprintf(stderr, "edge-manager: %s\n", config.error().ToString().c_str());
    return 2;
  }
  return segwan::edge::RunAgent(*config);
}
