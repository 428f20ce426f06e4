#include "relay/health/coturn_monitor.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/net/endpoint.h"
#include "common/net/turn_driver.h"
#include "common/stun/binding.h"

namespace roam::relay {

namespace asio = boost::asio;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;

namespace {

// How long one check waits for answers. Not tied tightly to the interval: a loaded machine
// answering in 300 ms is slow, not down. Checks run one after the other, never piling up.
Duration check_timeout(Duration interval) {
  return std::clamp<Duration>(interval, milliseconds(500), seconds(2));
}

udp::socket open_socket(asio::any_io_executor executor, const SocketAddress& towards) {
  udp::socket s(executor);
  auto family = towards.ip.is_v4() ? udp::v4() : udp::v6();
  s.open(family);
  s.bind(udp::endpoint(family, 0));
  return s;
}

}  // namespace

CoturnMonitor::CoturnMonitor(asio::any_io_executor executor, CoturnMonitorConfig config)
    : executor_(std::move(executor)), config_(std::move(config)) {}

CoturnMonitor::~CoturnMonitor() = default;

void CoturnMonitor::stop() {
  stopping_ = true;
  if (sleeper_) sleeper_->cancel();
}

asio::awaitable<bool> CoturnMonitor::stun_check() {
  auto socket = open_socket(executor_, config_.coturn);
  stun::TransactionId id;
  random_.fill(id);
  auto request = stun::make_binding_request(id, "roam-relay");
  auto server = net::to_endpoint(config_.coturn);
  const TimePoint deadline = Clock::now() + check_timeout(config_.interval);
  // Two transmissions within the budget: one lost datagram is not an outage.
  for (int attempt = 0; attempt < 2; ++attempt) {
    co_await socket.async_send_to(asio::buffer(request), server,
                                  asio::as_tuple(asio::use_awaitable));
    asio::steady_timer timer(executor_);
    timer.expires_at(std::min(deadline, Clock::now() + check_timeout(config_.interval) / 2));
    Bytes buffer(1500);
    for (;;) {
      udp::endpoint from;
      auto r = co_await (socket.async_receive_from(asio::buffer(buffer), from,
                                                   asio::as_tuple(asio::use_awaitable)) ||
                         timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() != 0) break;
      auto [ec, n] = std::get<0>(r);
      if (ec) break;
      auto m = stun::Message::parse(ByteSpan(buffer).first(n));
      if (m && stun::binding_result(*m, id)) co_return true;
    }
  }
  co_return false;
}

asio::awaitable<CoturnMonitor::Canary> CoturnMonitor::canary_check() {
  const TimePoint deadline = Clock::now() + check_timeout(config_.interval);
  if (canary_ && Clock::now() - canary_made_at_ > config_.canary_lifetime) {
    co_await release_canary();  // its credentials are about to expire: replace it
    canary_.reset();
    canary_socket_.reset();
  }
  if (canary_ && canary_->state() == turn::State::kAllocated) {
    canary_->refresh(Clock::now());  // no-op while an earlier refresh is still unanswered
    Canary outcome = Canary::kNoAnswer;
    co_await net::drive_turn_client(*canary_socket_, *canary_, deadline, [&](const turn::Event& e) {
      if (std::holds_alternative<turn::Refreshed>(e)) outcome = Canary::kAlive;
      // Lost is definitive: coturn answered 437 (it no longer knows the allocation), or the
      // refresh went unanswered through every retransmission.
      if (std::holds_alternative<turn::AllocationLost>(e)) outcome = Canary::kLost;
      return outcome != Canary::kNoAnswer;
    });
    if (outcome == Canary::kLost) {
      canary_.reset();
      canary_socket_.reset();
    }
    co_return outcome;
  }
  // (Re)make the canary: a plain allocation held for as long as this coturn lives.
  canary_socket_ = std::make_unique<udp::socket>(open_socket(executor_, config_.coturn));
  turn::ClientConfig c;
  c.server = config_.coturn;
  c.credentials = config_.credentials();
  c.software = "roam-relay-canary";
  c.retransmission.initial_rto = milliseconds(100);
  canary_ = std::make_unique<turn::Client>(c, random_);
  canary_made_at_ = Clock::now();
  canary_->allocate(Clock::now(), {});
  bool made = false;
  co_await net::drive_turn_client(*canary_socket_, *canary_, deadline, [&](const turn::Event& e) {
    made = std::holds_alternative<turn::Allocated>(e);
    return made || std::holds_alternative<turn::AllocationFailed>(e);
  });
  if (!made) {
    canary_.reset();
    canary_socket_.reset();
  }
  co_return made ? Canary::kMade : Canary::kNotMade;
}

asio::awaitable<void> CoturnMonitor::release_canary() {
  if (!canary_ || canary_->state() != turn::State::kAllocated) co_return;
  canary_->deallocate(Clock::now());
  co_await net::drive_turn_client(
      *canary_socket_, *canary_, Clock::now() + milliseconds(500),
      [](const turn::Event& e) { return std::holds_alternative<turn::Deallocated>(e); });
}

asio::awaitable<void> CoturnMonitor::run(std::function<void(const CoturnStatus&)> on_change) {
  sleeper_ = std::make_shared<asio::steady_timer>(executor_);
  while (!stopping_) {
    const TimePoint started = Clock::now();
    bool answered = co_await stun_check();
    CoturnStatus next = status_;
    if (answered) {
      consecutive_failures_ = 0;
      Canary canary = co_await canary_check();
      // A canary that coturn forgot means coturn forgot every allocation: it restarted (or
      // lost its state), and with it every reservation of the pool.
      if (canary == Canary::kLost && status_.healthy) {
        spdlog::warn("coturn {} lost its allocations (restarted?): discarding the token pool",
                     config_.coturn.to_string());
        ++next.epoch;
      }
      if (!status_.healthy) {
        next.healthy = true;
        ++next.epoch;  // back from an outage: whatever it held before is void
        spdlog::info("coturn {} is up", config_.coturn.to_string());
      }
    } else if (++consecutive_failures_ >= config_.failures_before_down && status_.healthy) {
      next.healthy = false;
      canary_.reset();
      canary_socket_.reset();
      spdlog::warn("coturn {} is down: {} health checks in a row failed",
                   config_.coturn.to_string(), consecutive_failures_);
    }
    if (next.healthy != status_.healthy || next.epoch != status_.epoch) {
      status_ = next;
      on_change(status_);
    }
    sleeper_->expires_at(started + config_.interval);
    co_await sleeper_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_await release_canary();
}

}  // namespace roam::relay
