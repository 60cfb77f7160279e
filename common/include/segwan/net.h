#pragma once

#include <netinet/in.h>

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace segwan {

// An IPv4 or IPv6 address in network byte order.
struct IpAddress {
  int family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};

  size_t size() const { return family == AF_INET ? 4 : 16; }
  bool IsLinkLocal() const { return family == AF_INET6 && bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80; }
  std::string ToString() const;
  bool operator==(const IpAddress&) const = default;
  auto operator<=>(const IpAddress&) const = default;  // an order, for maps
};

struct IpPrefix {
  IpAddress address;  // host bits cleared
  int length = 0;

  std::string ToString() const;
  bool Contains(const IpAddress& a) const;
  bool operator==(const IpPrefix&) const = default;
};

std::optional<IpAddress> ParseIp(std::string_view text);
std::optional<IpAddress> ParseIpv6(std::string_view text);
std::optional<IpAddress> ParseIpv4(std::string_view text);
// "2001:db8::/32", "10.0.0.0/8"; a bare address is a host prefix. Rejects set host bits
// unless `allow_host_bits` (then they are cleared).
std::optional<IpPrefix> ParsePrefix(std::string_view text, bool allow_host_bits = false);

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string ToString() const;  // brackets around IPv6 literals
};
// "host:port", "[v6]:port", "v4:port". Port 1..65535 required.
std::optional<HostPort> ParseHostPort(std::string_view text);

// [a-z0-9][a-z0-9-]{0,max-1}: device ids, slice ids.
bool IsValidIdentifier(std::string_view text, size_t max_length = 63);

}  // namespace segwan
