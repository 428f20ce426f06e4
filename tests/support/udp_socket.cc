#include "tests/support/udp_socket.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace roam::test {
namespace {

socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (a.ip.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(a.port);
    std::memcpy(&s->sin_addr, a.ip.bytes().data(), 4);
    return sizeof *s;
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(a.port);
  std::memcpy(&s->sin6_addr, a.ip.bytes().data(), 16);
  return sizeof *s;
}

SocketAddress from_sockaddr(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    std::array<std::uint8_t, 4> b;
    std::memcpy(b.data(), &s->sin_addr, 4);
    return {IpAddress::v4(b), ntohs(s->sin_port)};
  }
  const auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
  std::array<std::uint8_t, 16> b;
  std::memcpy(b.data(), &s->sin6_addr, 16);
  return {IpAddress::v6(b), ntohs(s->sin6_port)};
}

}  // namespace

UdpSocket::UdpSocket(const SocketAddress& local) {
  fd_ = ::socket(local.ip.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
  if (fd_ < 0) throw std::runtime_error("socket() failed");
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(local, ss);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd_);
    throw std::runtime_error("bind() failed for " + local.to_string());
  }
  len = sizeof ss;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  local_ = from_sockaddr(ss);
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

void UdpSocket::send_to(const SocketAddress& to, ByteSpan data) {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(to, ss);
  ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
}

std::optional<UdpSocket::Datagram> UdpSocket::receive(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  Bytes buf(65536);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<std::size_t>(n));
  return Datagram{from_sockaddr(ss), std::move(buf)};
}

}  // namespace roam::test
