// The sans-I/O TURN client against a real coturn (turnserver) on a free loopback port, driven
// in real time over real UDP sockets, with a plain UDP socket as the peer.
#include <chrono>
#include <ctime>
#include <thread>

#include <gtest/gtest.h>

#include "common/auth/turn_rest.h"
#include "common/turn/client.h"
#include "tests/support/servers.h"
#include "tests/support/turn_session.h"
#include "tests/support/udp_socket.h"

namespace roam::turn {
namespace {

using namespace std::chrono_literals;
using test::Coturn;
using test::UdpSocket;
using Session = test::TurnSession;

class TurnAgainstCoturn : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string skip;
    coturn_ = Coturn::start({}, &skip);
    if (!coturn_) GTEST_SKIP() << skip;
  }

  Credentials credentials(const std::string& peer) {
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    auto c = auth::turn_rest::mint(coturn_->options().secret, peer, now, std::chrono::seconds(600));
    EXPECT_TRUE(c.has_value());
    return {c->username, c->password};
  }

  std::unique_ptr<Coturn> coturn_;
};

TEST_F(TurnAgainstCoturn, ColdAllocationTakesTwoRoundTrips) {
  Session s(coturn_->address(), credentials("alice"));
  s.client().allocate(Clock::now(), {});
  ASSERT_TRUE(s.wait_for<Allocated>()) << coturn_->log();
  auto a = *s.event<Allocated>();
  EXPECT_EQ(a.round_trips, 2);
  EXPECT_EQ(a.relayed.ip.to_string(), "127.0.0.1");
  EXPECT_GE(a.relayed.port, coturn_->min_relay_port());
  EXPECT_LE(a.relayed.port, coturn_->max_relay_port());
  EXPECT_EQ(a.mapped, s.socket().local_address());  // no NAT on loopback
  EXPECT_EQ(s.client().state(), State::kAllocated);
}

TEST_F(TurnAgainstCoturn, PrewarmedAllocationTakesOneRoundTrip) {
  Session s(coturn_->address(), credentials("alice"));
  s.client().prewarm(Clock::now());
  ASSERT_TRUE(s.wait_for<NoncePrewarmed>()) << coturn_->log();
  s.client().allocate(Clock::now(), {});
  ASSERT_TRUE(s.wait_for<Allocated>()) << coturn_->log();
  EXPECT_EQ(s.event<Allocated>()->round_trips, 1);
}

TEST_F(TurnAgainstCoturn, ReservationTokenIsRedeemedToTheReservedAddress) {
  // The pool's way: EVEN-PORT R=1, then delete the reserving allocation at once.
  Session reserver(coturn_->address(), credentials("relay-pool"));
  reserver.client().allocate(Clock::now(), {.even_port = true, .reserve_next = true});
  ASSERT_TRUE(reserver.wait_for<Allocated>()) << coturn_->log();
  auto reserved = *reserver.event<Allocated>();
  ASSERT_TRUE(reserved.reservation_token);
  EXPECT_EQ(reserved.relayed.port % 2, 0);
  reserver.client().deallocate(Clock::now());
  ASSERT_TRUE(reserver.wait_for<Deallocated>());
  EXPECT_TRUE(reserver.event<Deallocated>()->confirmed);

  // Another socket, another user, pre-warmed: one round trip to exactly port+1.
  Session redeemer(coturn_->address(), credentials("bob"));
  redeemer.client().prewarm(Clock::now());
  ASSERT_TRUE(redeemer.wait_for<NoncePrewarmed>());
  redeemer.client().allocate(Clock::now(), {.reservation_token = *reserved.reservation_token});
  ASSERT_TRUE(redeemer.wait_for<Allocated>()) << coturn_->log();
  auto got = *redeemer.event<Allocated>();
  EXPECT_EQ(got.relayed.ip, reserved.relayed.ip);
  EXPECT_EQ(got.relayed.port, reserved.relayed.port + 1);
  EXPECT_EQ(got.round_trips, 1);

  // A token is single-use: a third client gets 404.
  Session late(coturn_->address(), credentials("carol"));
  late.client().allocate(Clock::now(), {.reservation_token = *reserved.reservation_token});
  ASSERT_TRUE(late.wait_for<AllocationFailed>());
  EXPECT_EQ(late.event<AllocationFailed>()->failure, Failure::kTokenNotFound);
  EXPECT_EQ(late.event<AllocationFailed>()->code, 404);
}

TEST_F(TurnAgainstCoturn, PermissionChannelAndDataBothWaysWithPlainUdpPeer) {
  Session s(coturn_->address(), credentials("alice"));
  UdpSocket peer;
  const SocketAddress peer_address = peer.local_address();
  s.client().allocate(Clock::now(), {});
  ASSERT_TRUE(s.wait_for<Allocated>()) << coturn_->log();
  const SocketAddress relayed = *s.client().relayed_address();

  s.client().create_permission(Clock::now(), peer_address.ip);
  ASSERT_TRUE(s.wait_for<PermissionCreated>()) << coturn_->log();

  // Client → peer by Send indication.
  auto out = s.client().wrap(peer_address, as_bytes("via send indication"));
  ASSERT_TRUE(out);
  s.socket().send_to(coturn_->address(), *out);
  auto got = peer.receive(2000ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->from, relayed);
  EXPECT_EQ(as_chars(got->data), "via send indication");

  // Peer → client by Data indication.
  peer.send_to(relayed, as_bytes("via data indication"));
  ASSERT_TRUE(s.run_until([&] { return !s.received().empty(); }));
  EXPECT_EQ(s.received()[0].first, peer_address);
  EXPECT_EQ(as_chars(s.received()[0].second), "via data indication");

  // Channel: ChannelData pipelined right behind the ChannelBind, before its success.
  auto channel = s.client().bind_channel(Clock::now(), peer_address);
  ASSERT_TRUE(channel);
  auto cd = s.client().wrap(peer_address, as_bytes("via channel"));
  ASSERT_TRUE(cd);
  s.flush();  // the ChannelBind request first
  s.socket().send_to(coturn_->address(), *cd);
  got = peer.receive(2000ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(as_chars(got->data), "via channel");
  ASSERT_TRUE(s.wait_for<ChannelBound>()) << coturn_->log();

  peer.send_to(relayed, as_bytes("back via channel"));
  ASSERT_TRUE(s.run_until([&] { return s.received().size() == 2; }));
  EXPECT_EQ(as_chars(s.received()[1].second), "back via channel");
}

TEST_F(TurnAgainstCoturn, RefreshAndDelete) {
  Session s(coturn_->address(), credentials("alice"));
  s.client().allocate(Clock::now(), {});
  ASSERT_TRUE(s.wait_for<Allocated>()) << coturn_->log();
  // The refresh is due 540 s from now: warp the client's clock (only the client's: coturn
  // answers whenever asked) instead of waiting.
  s.client().handle_timeout(Clock::now() + std::chrono::seconds(541));
  ASSERT_TRUE(s.wait_for<Refreshed>()) << coturn_->log();
  EXPECT_EQ(s.event<Refreshed>()->lifetime, std::chrono::seconds(600));

  UdpSocket peer;
  s.client().create_permission(Clock::now(), peer.local_address().ip);
  ASSERT_TRUE(s.wait_for<PermissionCreated>());
  const SocketAddress relayed = *s.client().relayed_address();
  s.client().deallocate(Clock::now());
  ASSERT_TRUE(s.wait_for<Deallocated>()) << coturn_->log();
  EXPECT_TRUE(s.event<Deallocated>()->confirmed);
  // Deleted: nothing the peer sends to the old relayed address comes through any more. coturn
  // keeps a deleted allocation's socket for about a second (it also answers 437 to a new
  // Allocate on the same 5-tuple for that long: notes/coturn-reservations.md), so wait that out.
  std::this_thread::sleep_for(2s);
  while (s.socket().receive(0ms)) {
  }
  peer.send_to(relayed, as_bytes("anyone?"));
  auto stray = s.socket().receive(300ms);
  EXPECT_FALSE(stray) << "from " << stray->from.to_string() << ": " << to_hex(stray->data);
}

TEST_F(TurnAgainstCoturn, WrongCredentialsGiveAClearError) {
  auto good = credentials("alice");
  Session s(coturn_->address(), {good.username, "not-the-password"});
  s.client().allocate(Clock::now(), {});
  ASSERT_TRUE(s.wait_for<AllocationFailed>()) << coturn_->log();
  auto failed = *s.event<AllocationFailed>();
  EXPECT_EQ(failed.failure, Failure::kUnauthorized);
  EXPECT_EQ(failed.code, 401);
  EXPECT_NE(describe(failed.failure).find("shared secret"), std::string_view::npos);
}

TEST_F(TurnAgainstCoturn, SecondAllocationOnSameSocketIsAllocationMismatch) {
  Session s(coturn_->address(), credentials("alice"));
  s.client().allocate(Clock::now(), {});
  ASSERT_TRUE(s.wait_for<Allocated>());
  // A second client state machine on a socket that already has an allocation.
  ClientConfig c = Session::config(coturn_->address(), credentials("alice"));
  SystemRandom random;
  Client second(c, random);
  second.allocate(Clock::now(), {});
  std::optional<Event> outcome;
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!outcome && std::chrono::steady_clock::now() < deadline) {
    while (auto b = second.poll_transmit())
      s.socket().send_to(coturn_->address(), *b);
    if (auto d = s.socket().receive(100ms)) second.handle_datagram(Clock::now(), d->data);
    while (auto e = second.poll_event())
      outcome = e;
  }
  ASSERT_TRUE(outcome);
  auto* failed = std::get_if<AllocationFailed>(&*outcome);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->failure, Failure::kAllocationMismatch);
  EXPECT_EQ(failed->code, 437);
}

}  // namespace
}  // namespace roam::turn
