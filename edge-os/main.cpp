// edge-os: the SegWAN controller. This file only wires the parts together.
#include <cstdio>
#include <iostream>

#include "edge-os/controller/config.h"
#include "segwan/log.h"
#include "segwan/version.h"

int main(int argc, char** argv) {
  segwan::FlagSet flags("edge-os",
                        "SegWAN controller: registers edge routers, turns tenants' slices and\n"
                        "delay sessions into per-edge configuration, and keeps their results.");
  segwan::controller::AddControllerFlags(flags);
  if (auto err = flags.Parse(argc, argv)) {
    std::fprintf(stderr, "edge-os: %s\n", err->c_str());
    return 2;
  }
  if (flags.HelpRequested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (flags.VersionRequested()) {
    std::cout << "edge-os " << segwan::Version() << "\n";
    return 0;
  }
  if (!flags.GetString("config").empty()) {
    if (auto err = flags.ParseConfigFile(flags.GetString("config"))) {
      std::fprintf(stderr, "edge-os: %s\n", err->c_str());
      return 2;
    }
  }
  segwan::LogLevel level;
  if (!segwan::ParseLogLevel(flags.GetString("log-level"), &level)) {
    std::fprintf(stderr, "edge-os: --log-level: expected debug, info, warn or error\n");
    return 2;
  }
  segwan::SetLogLevel(level);
  auto config = segwan::controller::ControllerConfigFromFlags(flags);
  if (!config) {
    std::fprintf(stderr, "edge-os: %s\n", config.error().ToString().c_str());
    return 2;
  }
  SEGWAN_LOG(kInfo, "main") << "edge-os " << segwan::Version() << " data in " << config->data_dir
                            << " (no services enabled in this build)";
  return 0;
}
