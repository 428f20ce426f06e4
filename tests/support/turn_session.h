// A turn::Client on its own real UDP socket, pumped in real time (integration tests).
#pragma once

#include <chrono>
#include <vector>

#include "common/turn/client.h"
#include "tests/support/udp_socket.h"

namespace roam::test {

using namespace std::chrono_literals;

// One client on its own socket, pumped in real time.
class TurnSession {
 public:
  TurnSession(const SocketAddress& server, turn::Credentials credentials)
      : client_(config(server, std::move(credentials)), random_) {}

  static turn::ClientConfig config(const SocketAddress& server, turn::Credentials credentials) {
    turn::ClientConfig c;
    c.server = server;
    c.credentials = std::move(credentials);
    c.retransmission.initial_rto = 200ms;  // loopback: answers are immediate
    return c;
  }

  // Sends what the client queued, feeds replies, fires timers; until `done()` or `timeout`.
  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds timeout = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      flush();
      if (done()) return true;
      auto now = Clock::now();
      if (now >= deadline) return false;
      auto wait = std::min<Duration>(deadline - now, client_.next_deadline() - now);
      auto datagram = socket_.receive(
          std::max(1ms, std::chrono::duration_cast<std::chrono::milliseconds>(wait)));
      now = Clock::now();
      if (datagram) {
        if (datagram->from == client_.config().server) {
          if (auto data = client_.handle_datagram(now, datagram->data)) {
            received_.push_back({data->peer, Bytes(data->data.begin(), data->data.end())});
          }
        }
      }
      if (client_.next_deadline() <= now) client_.handle_timeout(now);
    }
  }

  void flush() {
    while (auto out = client_.poll_transmit())
      socket_.send_to(client_.config().server, *out);
    while (auto e = client_.poll_event())
      events_.push_back(*e);
  }

  template <class T>
  std::optional<T> event() const {
    for (const auto& e : events_) {
      if (auto* v = std::get_if<T>(&e)) return *v;
    }
    return std::nullopt;
  }
  template <class T>
  bool wait_for(std::chrono::milliseconds timeout = 5000ms) {
    return run_until([&] { return event<T>().has_value(); }, timeout);
  }

  turn::Client& client() { return client_; }
  UdpSocket& socket() { return socket_; }
  std::vector<std::pair<SocketAddress, Bytes>>& received() { return received_; }

 private:
  SystemRandom random_;
  UdpSocket socket_;
  turn::Client client_;
  std::vector<turn::Event> events_;
  std::vector<std::pair<SocketAddress, Bytes>> received_;
};

}  // namespace roam::test
