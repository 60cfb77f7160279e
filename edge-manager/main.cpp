// edge-manager: the SegWAN agent on an edge router. This file only wires the parts together.
#include <cstdio>

#include "edge-manager/agent/config.h"
#include "edge-manager/agent/kernel_check.h"
#include "edge-manager/agent/server.h"
#include "segwan/cli.h"

int main(int argc, char** argv) {
  segwan::FlagSet flags("edge-manager",
                        "SegWAN edge agent: configures SRv6 slices through netlink, runs STAMP\n"
                        "delay probes and loss counters, and obeys the controller over gRPC.");
  segwan::edge::AddAgentFlags(flags);
  if (auto code = segwan::StartCommandLine(flags, argc, argv)) return *code;
  segwan::DisableMutexDeadlockDetection();
  if (flags.GetBool("check-kernel") || flags.GetBool("check-kernel-missing")) {
    return segwan::edge::PrintKernelCheck(flags.GetString("slice-mode"), flags.GetBool("check-kernel-missing"));
  }
  auto config = segwan::edge::AgentConfigFromFlags(flags);
  if (!config) {
    std::fprintf(stderr, "edge-manager: %s\n", config.error().ToString().c_str());
    return 2;
  }
  return segwan::edge::RunAgent(*config);
}
