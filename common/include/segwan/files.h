#pragma once

#include <optional>
#include <string>

namespace segwan {

// The first line of a file without trailing spaces or CR (token files); nothing when the file
// cannot be read.
std::optional<std::string> ReadFirstLine(const std::string& path);

}  // namespace segwan
