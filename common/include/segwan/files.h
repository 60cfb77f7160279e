#pragma once

#include <optional>
#include <string>

#include "segwan/result.h"

namespace segwan {

// The first line of a file without trailing spaces or CR (token files); nothing when the file
// cannot be read.
std::optional<std::string> ReadFirstLine(const std::string& path);

// Writes `data` to `path` through a temporary file, fsync and rename: readers see the old
// file or the new one, never half of one. `mode` is the new file's (0600 for keys).
Status WriteFileAtomic(const std::string& path, const std::string& data, unsigned mode);

}  // namespace segwan
