#include "segwan/net.h"

#include <arpa/inet.h>

#include <charconv>

namespace segwan {

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(family, bytes.data(), buf, sizeof buf)) return "?";
  return buf;
}

std::string IpPrefix::ToString() const {
  return address.ToString() + "/" + std::to_string(length);
}

bool IpPrefix::Contains(const IpAddress& a) const {
  if (a.family != address.family) return false;
  int bits = length;
  for (size_t i = 0; i < a.size() && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & mask) != (address.bytes[i] & mask)) return false;
  }
  return true;
}

std::optional<IpAddress> ParseIpv6(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  IpAddress a;
  a.family = AF_INET6;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::optional<IpAddress> ParseIpv4(std::string_view text) {
  if (text.empty() || text.size() >= INET_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  IpAddress a;
  a.family = AF_INET;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::optional<IpAddress> ParseIp(std::string_view text) {
  if (text.find(':') != std::string_view::npos) return ParseIpv6(text);
  return ParseIpv4(text);
}

std::optional<IpPrefix> ParsePrefix(std::string_view text, bool allow_host_bits) {
  const auto slash = text.find('/');
  auto addr = ParseIp(text.substr(0, slash));
  if (!addr) return std::nullopt;
  const int max = addr->family == AF_INET ? 32 : 128;
  int length = max;
  if (slash != std::string_view::npos) {
    auto rest = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), length);
    if (ec != std::errc() || ptr != rest.data() + rest.size() || rest.empty()) return std::nullopt;
    if (length < 0 || length > max) return std::nullopt;
  }
  IpPrefix p{*addr, length};
  bool host_bits = false;
  for (int i = 0; i < max / 8; ++i) {
    const int keep = std::min(8, std::max(0, length - i * 8));
    const uint8_t mask = keep == 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - keep));
    if (p.address.bytes[i] & ~mask) host_bits = true;
    p.address.bytes[i] &= mask;
  }
  if (host_bits && !allow_host_bits) return std::nullopt;
  return p;
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> ParseHostPort(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    hp.host = std::string(text.substr(1, close - 1));
    if (!ParseIpv6(hp.host)) return std::nullopt;
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return std::nullopt;  // v6 needs brackets
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

bool IsValidIdentifier(std::string_view text, size_t max_length) {
  if (text.empty() || text.size() > max_length) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return true;
}

}  // namespace segwan
