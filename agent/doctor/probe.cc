#include "agent/doctor/probe.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/net/endpoint.h"
#include "common/net/turn_driver.h"
#include "common/stun/binding.h"
#include "common/stun/retransmission.h"

namespace roam::agent {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;

struct Received {
  SocketAddress from;
  std::size_t size;
};

// One datagram, or nothing by `deadline`.
awaitable<std::optional<Received>> receive_until(udp::socket& socket, Bytes& buffer,
                                                 TimePoint deadline) {
  asio::steady_timer timer(socket.get_executor());
  timer.expires_at(deadline);
  udp::endpoint from;
  auto receive =
      socket.async_receive_from(asio::buffer(buffer), from, asio::as_tuple(asio::use_awaitable));
  auto result =
      co_await (std::move(receive) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (result.index() != 0) co_return std::nullopt;
  auto [ec, size] = std::get<0>(result);
  if (ec) co_return std::nullopt;
  co_return Received{net::from_endpoint(from), size};
}

awaitable<void> send_to(udp::socket& socket, const SocketAddress& to, ByteSpan data) {
  auto [ec, n] =
      co_await socket.async_send_to(asio::buffer(data.data(), data.size()), net::to_endpoint(to),
                                    asio::as_tuple(asio::use_awaitable));
  (void)ec;  // a send error shows up as a missing answer
  (void)n;
}

// Doctor's budget is seconds, not RFC 8489's 39.5 s: 4 transmissions over ~2 s, then give up.
constexpr stun::RetransmissionPolicy kDoctorRetransmission{
    .initial_rto = milliseconds(300), .max_transmissions = 4, .final_wait_rtos = 4};

}  // namespace

awaitable<StunProbeResult> probe_stun(udp::socket& socket, SocketAddress server, Duration timeout) {
  StunProbeResult result;
  SystemRandom random;
  stun::TransactionId id;
  random.fill(id);
  const Bytes request = stun::make_binding_request(id);
  const TimePoint start = Clock::now();
  const TimePoint end = start + timeout;
  stun::RetransmissionSchedule schedule(kDoctorRetransmission, start);
  co_await send_to(socket, server, request);
  Bytes buffer(2048);
  for (;;) {
    auto got = co_await receive_until(socket, buffer, std::min(schedule.deadline(), end));
    TimePoint now = Clock::now();
    if (got) {
      if (got->from != server) continue;
      auto m = stun::Message::parse(ByteSpan(buffer).first(got->size));
      if (!m || m->transaction_id() != id) continue;
      auto mapped = stun::binding_result(*m, id);
      result.rtt = now - start;
      result.transmissions = schedule.transmissions();
      if (mapped) {
        result.mapped = *mapped;
      } else {
        result.error = mapped.error();
      }
      co_return result;
    }
    if (now >= end || !schedule.on_deadline(now)) {
      result.transmissions = schedule.transmissions();
      result.error = "no answer from " + server.to_string() + " after " +
                     std::to_string(result.transmissions) +
                     " transmissions: UDP to it is blocked, or the server is down";
      co_return result;
    }
    co_await send_to(socket, server, request);
  }
}

awaitable<TurnProbeResult> probe_turn(udp::socket& socket, SocketAddress server,
                                      turn::Credentials credentials, Duration timeout) {
  TurnProbeResult result;
  SystemRandom random;
  turn::ClientConfig config;
  config.server = server;
  config.credentials = std::move(credentials);
  config.software = "roam-doctor";
  config.retransmission = kDoctorRetransmission;
  turn::Client client(config, random);
  const TimePoint start = Clock::now();
  client.allocate(start, {});
  auto outcome = co_await net::drive_turn_client(
      socket, client, start + timeout, [&](const turn::Event& event) {
        if (auto* a = std::get_if<turn::Allocated>(&event)) {
          result.relayed = a->relayed;
          result.mapped = a->mapped;
          result.round_trips = a->round_trips;
          result.elapsed = Clock::now() - start;
          client.deallocate(Clock::now());  // a doctor leaves nothing allocated behind
        } else if (auto* f = std::get_if<turn::AllocationFailed>(&event)) {
          result.error = std::string(turn::describe(f->failure));
          if (f->code != 0) result.error += " [" + std::to_string(f->code) + " " + f->reason + "]";
          return true;
        } else if (auto* d = std::get_if<turn::Deallocated>(&event)) {
          result.deallocated = d->confirmed;
          return true;
        }
        return false;
      });
  if (outcome != net::DriveResult::kStopped && !result.relayed) {
    result.error = "TURN allocation did not finish in time";
  }
  result.realm = client.realm();
  co_return result;
}

}  // namespace roam::agent
