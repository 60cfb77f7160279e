// edge-os: the SegWAN controller. This file only wires the parts together.
#include <cstdio>

#include "edge-os/controller/config.h"
#include "segwan/cli.h"
#include "segwan/log.h"
#include "segwan/version.h"

int main(int argc, char** argv) {
  segwan::FlagSet flags("edge-os",
                        "SegWAN controller: registers edge routers, turns tenants' slices and\n"
                        "delay sessions into per-edge configuration, and keeps their results.");
  segwan::controller::AddControllerFlags(flags);
  if (auto code = segwan::StartCommandLine(flags, argc, argv)) return *code;
  auto config = segwan::controller::ControllerConfigFromFlags(flags);
  if (!config) {
    std::fprintf(stderr, "edge-os: %s\n", config.error().ToString().c_str());
    return 2;
  }
  SEGWAN_LOG(kInfo, "main") << "edge-os " << segwan::Version() << " data in " << config->data_dir
                            << " (no services enabled in this build)";
  return 0;
}
