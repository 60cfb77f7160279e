#pragma once

#include <string_view>

namespace segwan {

// The project version, from the root CMakeLists.txt.
std::string_view Version();

}  // namespace segwan
