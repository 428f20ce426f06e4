// A plain blocking UDP socket for tests (the "plain UDP peer" of TURN tests, and the transport
// that drives sans-I/O clients in real time).
#pragma once

#include <chrono>
#include <optional>

#include "common/util/bytes.h"
#include "common/util/socket_address.h"

namespace roam::test {

class UdpSocket {
 public:
  // Binds to `local` (port 0 = any free port).
  explicit UdpSocket(const SocketAddress& local = *SocketAddress::parse("127.0.0.1:0"));
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  SocketAddress local_address() const { return local_; }
  void send_to(const SocketAddress& to, ByteSpan data);
  struct Datagram {
    SocketAddress from;
    Bytes data;
  };
  // Waits up to `timeout` for one datagram.
  std::optional<Datagram> receive(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  SocketAddress local_;
};

}  // namespace roam::test
