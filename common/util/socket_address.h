// IP addresses and transport addresses as plain values (no sockets), shared by the codecs,
// the ICE and TURN state machines and the I/O layers.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace roam {

enum class AddressFamily : std::uint8_t { kIPv4 = 4, kIPv6 = 6 };

class IpAddress {
 public:
  IpAddress() = default;  // 0.0.0.0
  static IpAddress v4(std::array<std::uint8_t, 4> octets);
  static IpAddress v6(const std::array<std::uint8_t, 16>& octets);
  // Dotted quad or RFC 5952 text (no brackets, no zone); nullopt otherwise.
  static std::optional<IpAddress> parse(std::string_view text);

  AddressFamily family() const { return family_; }
  bool is_v4() const { return family_ == AddressFamily::kIPv4; }
  bool is_v6() const { return family_ == AddressFamily::kIPv6; }
  // 4 or 16 significant bytes (network order) at the front of a 16-byte array.
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  std::size_t size() const { return is_v4() ? 4 : 16; }

  bool is_loopback() const;
  bool is_link_local() const;  // 169.254/16, fe80::/10
  bool is_private() const;     // RFC 1918, 100.64/10 (RFC 6598), fc00::/7
  bool is_unspecified() const;
  std::string to_string() const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  AddressFamily family_ = AddressFamily::kIPv4;
  std::array<std::uint8_t, 16> bytes_{};
};

// IP address + port, the "transport address" of RFC 8489.
struct SocketAddress {
  IpAddress ip;
  std::uint16_t port = 0;

  AddressFamily family() const { return ip.family(); }
  // "1.2.3.4:5" or "[::1]:5"; host names are not resolved here.
  static std::optional<SocketAddress> parse(std::string_view text);
  std::string to_string() const;

  auto operator<=>(const SocketAddress&) const = default;
};

}  // namespace roam

template <>
struct std::hash<roam::IpAddress> {
  std::size_t operator()(const roam::IpAddress& a) const noexcept;
};
template <>
struct std::hash<roam::SocketAddress> {
  std::size_t operator()(const roam::SocketAddress& a) const noexcept;
};
