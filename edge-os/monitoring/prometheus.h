#pragma once

#include <string>

#include "edge-os/controller/controller.h"

namespace segwan::controller {

// The controller's metrics in the Prometheus text format (version 0.0.4): devices, ingest,
// store and result streams, and per session a histogram of one-way delay in seconds (two
// series sets per session: direct and return, 16 series each).
std::string PrometheusText(const Metrics& m);

}  // namespace segwan::controller
