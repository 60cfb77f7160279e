#pragma once

#include <sstream>
#include <string_view>

namespace segwan {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Process-wide minimum level; lines below it are not formatted at all.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warn", "error"; returns false on anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out);
// Writes one line "2026-11-23T02:25:33.123Z INFO component: message" to stderr, atomically.
void LogLine(LogLevel level, std::string_view component, std::string_view message);

namespace detail {
class LogMessage {
 public:
  LogMessage(LogLevel level, std::string_view component) : level_(level), component_(component) {}
  ~LogMessage() { LogLine(level_, component_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::string_view component_;
  std::ostringstream stream_;
};
}  // namespace detail

}  // namespace segwan

// SEGWAN_LOG(kInfo, "netlink") << "added route " << route;
// (A one-pass `for`, not an `if`, so that it nests safely in an unbraced if/else.)
#define SEGWAN_LOG(level, component)                                                   \
  for (bool segwan_log_on_ = ::segwan::LogLevel::level >= ::segwan::GetLogLevel();     \
       segwan_log_on_; segwan_log_on_ = false)                                         \
    ::segwan::detail::LogMessage(::segwan::LogLevel::level, component).stream()
