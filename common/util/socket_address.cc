#include "common/util/socket_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace roam {

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> octets) {
  IpAddress a;
  a.family_ = AddressFamily::kIPv4;
  std::copy(octets.begin(), octets.end(), a.bytes_.begin());
  return a;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& octets) {
  IpAddress a;
  a.family_ = AddressFamily::kIPv6;
  a.bytes_ = octets;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  // inet_pton() reads a C string: "1.2.3.4\0junk" would parse as 1.2.3.4.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  std::array<std::uint8_t, 16> raw{};
  if (::inet_pton(AF_INET, buf, raw.data()) == 1) {
    return v4({raw[0], raw[1], raw[2], raw[3]});
  }
  if (::inet_pton(AF_INET6, buf, raw.data()) == 1) return v6(raw);
  return std::nullopt;
}

bool IpAddress::is_loopback() const {
  if (is_v4()) return bytes_[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kLoopback6{0, 0, 0, 0, 0, 0, 0, 0,
                                                           0, 0, 0, 0, 0, 0, 0, 1};
  return bytes_ == kLoopback6;
}

bool IpAddress::is_link_local() const {
  if (is_v4()) return bytes_[0] == 169 && bytes_[1] == 254;
  return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

bool IpAddress::is_private() const {
  if (is_v4()) {
    return bytes_[0] == 10 || (bytes_[0] == 172 && (bytes_[1] & 0xf0) == 16) ||
           (bytes_[0] == 192 && bytes_[1] == 168) || (bytes_[0] == 100 && (bytes_[1] & 0xc0) == 64);
  }
  return (bytes_[0] & 0xfe) == 0xfc;
}

bool IpAddress::is_unspecified() const {
  for (std::size_t i = 0; i < size(); ++i) {
    if (bytes_[i] != 0) return false;
  }
  return true;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto ip = IpAddress::parse(host);
  if (!ip || port.empty()) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value > 65535) return std::nullopt;
  return SocketAddress{*ip, static_cast<std::uint16_t>(value)};
}

std::string SocketAddress::to_string() const {
  return ip.is_v4() ? ip.to_string() + ":" + std::to_string(port)
                    : "[" + ip.to_string() + "]:" + std::to_string(port);
}

}  // namespace roam

std::size_t std::hash<roam::IpAddress>::operator()(const roam::IpAddress& a) const noexcept {
  // FNV-1a over the significant bytes; addresses are not attacker-chosen keys here.
  std::size_t h = 1469598103934665603ull ^ static_cast<std::size_t>(a.family());
  for (std::size_t i = 0; i < a.size(); ++i)
    h = (h ^ a.bytes()[i]) * 1099511628211ull;
  return h;
}

std::size_t std::hash<roam::SocketAddress>::operator()(
    const roam::SocketAddress& a) const noexcept {
  return std::hash<roam::IpAddress>{}(a.ip) * 31 + a.port;
}
