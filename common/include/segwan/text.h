#pragma once

// Text from the outside world: checked before it is trusted, counted in characters, and
// made safe before it reaches a log line.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace segwan {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s);
// Characters (code points) of well-formed UTF-8.
size_t Utf8Length(std::string_view s);
// True when `s` holds a C0 control character or DEL.
bool HasControl(std::string_view s);
// Every '%' is followed by two hex digits.
bool IsValidPercentEncoding(std::string_view s);
// A decimal integer and nothing else: "5abc", "", "+", " 5" and out-of-range values are not.
std::optional<int64_t> ParseWholeInt(std::string_view s);
// "a,b,,c" -> {"a", "b", "c"}: the non-empty items between separators.
std::vector<std::string> SplitList(std::string_view text, char separator = ',');
// Control characters, DEL and backslashes as \xNN / \\: one log line stays one line.
std::string EscapeForLog(std::string_view s);

}  // namespace segwan
