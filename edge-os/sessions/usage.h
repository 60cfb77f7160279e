#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "segwan/result.h"

namespace segwan::controller {

// How many delay and loss sessions a tenant has and each device takes part in (as either
// end), counted across both services for the shares (quotas).
struct SessionUsage {
  size_t tenant = 0;
  std::map<std::string, size_t> per_device;
};

// Checks a new session against the shares once it is counted in them (its reservation is
// made first, so two concurrent requests cannot both take the last place).
using QuotaCheck = std::function<std::optional<Error>(const std::string& tenant, const std::vector<std::string>& devices)>;

}  // namespace segwan::controller
