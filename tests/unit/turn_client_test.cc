// TURN client state machine under virtual time, against a small scripted server written with
// the same codec (the real coturn is exercised by tests/integration/turn_client_test.cc).
#include <functional>

#include <gtest/gtest.h>

#include "common/stun/channel_data.h"
#include "common/turn/client.h"

namespace roam::turn {
namespace {

using stun::Class;
using stun::Method;
namespace attr = stun::attr;

const SocketAddress kServer = *SocketAddress::parse("192.0.2.10:3478");
const SocketAddress kClientMapped = *SocketAddress::parse("198.51.100.7:40000");
const SocketAddress kRelayed = *SocketAddress::parse("192.0.2.10:50000");
const SocketAddress kPeer = *SocketAddress::parse("203.0.113.5:6000");
constexpr char kRealm[] = "example.org";
constexpr char kUser[] = "1700000000:alice";
constexpr char kPassword[] = "secret-password";

// Answers like coturn: 401 with REALM/NONCE to unauthenticated requests, long-term integrity,
// reservation tokens, and optional scripted errors.
class ScriptedServer {
 public:
  std::string nonce = "nonce-1";
  int stale_nonce_answers = 0;        // answer 438 this many times first
  std::optional<int> allocate_error;  // answer Allocate with this error code
  std::uint64_t reserved_token = 0x1122334455667788ull;
  bool token_used = false;
  int requests = 0;
  std::vector<Method> methods;

  std::optional<Bytes> handle(ByteSpan datagram) {
    if ((std::to_integer<unsigned>(datagram[0]) & 0xC0) == 0x40) {
      auto cd = stun::parse_channel_data(datagram);
      if (cd) channel_data.emplace_back(cd->channel, Bytes(cd->data.begin(), cd->data.end()));
      return std::nullopt;
    }
    auto m = stun::Message::parse(datagram);
    EXPECT_TRUE(m.has_value());
    if (!m) return std::nullopt;
    if (m->cls() == Class::kIndication) {
      indications.push_back(*m);
      return std::nullopt;
    }
    ++requests;
    methods.push_back(m->method());
    auto key = stun::IntegrityKey::long_term(kUser, kRealm, kPassword);
    if (!m->has(attr::kMessageIntegrity)) return error(*m, 401, true);
    if (m->check_integrity(key) != stun::IntegrityResult::kOk) return error(*m, 401, true);
    if (m->string(attr::kNonce).value_or("") != nonce || stale_nonce_answers > 0) {
      if (stale_nonce_answers > 0) {
        --stale_nonce_answers;
        nonce += "x";
      }
      return error(*m, 438, true);
    }
    stun::MessageBuilder b(m->method(), Class::kSuccess, m->transaction_id());
    switch (m->method()) {
      case Method::kAllocate: {
        if (allocate_error) return error(*m, *allocate_error, false);
        SocketAddress relayed = kRelayed;
        if (auto token = m->u64(attr::kReservationToken)) {
          if (*token != reserved_token || token_used) return error(*m, 404, false);
          token_used = true;
          relayed.port = 50001;
        }
        b.add_xor_address(attr::kXorRelayedAddress, relayed);
        b.add_xor_address(attr::kXorMappedAddress, kClientMapped);
        b.add_u32(attr::kLifetime, 600);
        if (m->even_port_reserve().value_or(false)) b.add_u64(attr::kReservationToken, 42);
        break;
      }
      case Method::kRefresh:
        b.add_u32(attr::kLifetime, m->u32(attr::kLifetime).value_or(600));
        break;
      default:
        break;
    }
    return b.finish(&key, stun::Integrity::kSha1, true);
  }

  Bytes error(const stun::Message& request, int code, bool challenge) {
    stun::MessageBuilder b(request.method(), Class::kError, request.transaction_id());
    b.add_error_code(code, "scripted");
    if (challenge) {
      b.add_string(attr::kRealm, kRealm);
      b.add_string(attr::kNonce, nonce);
    }
    return b.finish(nullptr, stun::Integrity::kNone, true);
  }

  std::vector<std::pair<std::uint16_t, Bytes>> channel_data;
  std::vector<stun::Message> indications;
};

class TurnClientTest : public ::testing::Test {
 protected:
  TurnClientTest() : client_(config(), random_) {}

  static ClientConfig config() {
    ClientConfig c;
    c.server = kServer;
    c.credentials = {kUser, kPassword};
    return c;
  }

  // Delivers everything the client sends to the server (after `rtt`/2) and the answers back
  // (after another `rtt`/2); `drop` decides which client datagrams are lost.
  void pump(std::function<bool(int)> drop = nullptr) {
    int index = 0;
    while (auto out = client_.poll_transmit()) {
      if (drop && drop(index++)) continue;
      now_ += rtt_ / 2;
      auto answer = server_.handle(*out);
      now_ += rtt_ / 2;
      if (answer) client_.handle_datagram(now_, *answer);
    }
  }

  std::vector<Event> events() {
    std::vector<Event> out;
    while (auto e = client_.poll_event())
      out.push_back(*e);
    return out;
  }

  template <class T>
  std::optional<T> find(const std::vector<Event>& events) {
    for (const auto& e : events) {
      if (auto* v = std::get_if<T>(&e)) return *v;
    }
    return std::nullopt;
  }

  void allocate(const AllocateOptions& options = {}) {
    client_.allocate(now_, options);
    pump();
  }

  SeededRandom random_{7};
  ScriptedServer server_;
  TimePoint now_{};
  Duration rtt_ = milliseconds(40);
  Client client_;
};

TEST_F(TurnClientTest, ColdAllocationTakesTwoRoundTrips) {
  allocate();
  auto ev = events();
  auto allocated = find<Allocated>(ev);
  ASSERT_TRUE(allocated);
  EXPECT_EQ(allocated->relayed, kRelayed);
  EXPECT_EQ(allocated->mapped, kClientMapped);
  EXPECT_EQ(allocated->round_trips, 2);
  EXPECT_EQ(allocated->lifetime, seconds(600));
  EXPECT_EQ(client_.state(), State::kAllocated);
  EXPECT_EQ(server_.requests, 2);
}

TEST_F(TurnClientTest, PrewarmedAllocationTakesOneRoundTrip) {
  client_.prewarm(now_);
  pump();
  auto ev = events();
  ASSERT_TRUE(find<NoncePrewarmed>(ev));
  EXPECT_EQ(client_.state(), State::kIdle);
  server_.requests = 0;
  allocate({.reservation_token = server_.reserved_token});
  auto allocated = find<Allocated>(events());
  ASSERT_TRUE(allocated);
  EXPECT_EQ(allocated->round_trips, 1);
  EXPECT_EQ(server_.requests, 1);
  EXPECT_EQ(allocated->relayed.port, 50001);
}

TEST_F(TurnClientTest, AllocateDuringPrewarmContinuesAfterTheChallenge) {
  client_.prewarm(now_);
  client_.allocate(now_, {});
  pump();
  auto ev = events();
  EXPECT_TRUE(find<NoncePrewarmed>(ev));
  auto allocated = find<Allocated>(ev);
  ASSERT_TRUE(allocated);
  EXPECT_EQ(allocated->round_trips, 1);
}

TEST_F(TurnClientTest, EvenPortReservationReturnsToken) {
  allocate({.even_port = true, .reserve_next = true});
  auto allocated = find<Allocated>(events());
  ASSERT_TRUE(allocated);
  EXPECT_EQ(allocated->reservation_token, 42u);
}

TEST_F(TurnClientTest, UsedTokenFailsWith404) {
  server_.token_used = true;
  allocate({.reservation_token = server_.reserved_token});
  auto failed = find<AllocationFailed>(events());
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->failure, Failure::kTokenNotFound);
  EXPECT_EQ(failed->code, 404);
  EXPECT_EQ(client_.state(), State::kFailed);
  EXPECT_NE(describe(failed->failure).find("new relay grant"), std::string_view::npos);
}

TEST_F(TurnClientTest, WrongPasswordIsUnauthorized) {
  auto c = config();
  c.credentials.password = "wrong";
  Client client(c, random_);
  client.allocate(now_, {});
  int rounds = 0;
  while (auto out = client.poll_transmit()) {
    ++rounds;
    auto answer = server_.handle(*out);
    if (answer) client.handle_datagram(now_, *answer);
  }
  EXPECT_EQ(rounds, 2);  // no endless retry
  std::optional<AllocationFailed> failed;
  while (auto e = client.poll_event()) {
    if (auto* f = std::get_if<AllocationFailed>(&*e)) failed = *f;
  }
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->failure, Failure::kUnauthorized);
}

TEST_F(TurnClientTest, StaleNonceIsRetriedThenGivesUp) {
  server_.stale_nonce_answers = 1;
  allocate();
  auto allocated = find<Allocated>(events());
  ASSERT_TRUE(allocated);
  EXPECT_EQ(allocated->round_trips, 3);

  ScriptedServer stubborn;
  stubborn.stale_nonce_answers = 100;
  server_ = stubborn;
  Client client(config(), random_);
  client.allocate(now_, {});
  int rounds = 0;
  while (auto out = client.poll_transmit()) {
    ++rounds;
    if (auto answer = server_.handle(*out)) client.handle_datagram(now_, *answer);
  }
  EXPECT_EQ(rounds, 2 + kMaxStaleNonceRetries);
  std::optional<AllocationFailed> failed;
  while (auto e = client.poll_event()) {
    if (auto* f = std::get_if<AllocationFailed>(&*e)) failed = *f;
  }
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->failure, Failure::kStaleNonceLoop);
}

TEST_F(TurnClientTest, ErrorCodesMapToClearOutcomes) {
  for (auto [code, failure] :
       std::vector<std::pair<int, Failure>>{{437, Failure::kAllocationMismatch},
                                            {486, Failure::kQuotaReached},
                                            {508, Failure::kInsufficientCapacity},
                                            {403, Failure::kForbidden}}) {
    ScriptedServer server;
    server.allocate_error = code;
    Client client(config(), random_);
    client.allocate(now_, {});
    while (auto out = client.poll_transmit()) {
      if (auto answer = server.handle(*out)) client.handle_datagram(now_, *answer);
    }
    std::optional<AllocationFailed> failed;
    while (auto e = client.poll_event()) {
      if (auto* f = std::get_if<AllocationFailed>(&*e)) failed = *f;
    }
    ASSERT_TRUE(failed) << code;
    EXPECT_EQ(failed->failure, failure) << code;
    EXPECT_EQ(failed->code, code);
    EXPECT_FALSE(describe(failure).empty());
  }
}

TEST_F(TurnClientTest, RetransmitsOnRfc8489ScheduleThenTimesOut) {
  client_.allocate(now_, {});
  std::vector<Duration> sent_at;
  const TimePoint start = now_;
  for (;;) {
    while (client_.poll_transmit())
      sent_at.push_back(now_ - start);  // all lost
    TimePoint deadline = client_.next_deadline();
    if (deadline == kNever) break;
    now_ = deadline;
    client_.handle_timeout(now_);
  }
  // RFC 8489 §6.2.1: 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; failure at 39.5 s.
  std::vector<Duration> expected_at;
  for (int ms : {0, 500, 1500, 3500, 7500, 15500, 31500})
    expected_at.push_back(milliseconds(ms));
  EXPECT_EQ(sent_at, expected_at);
  EXPECT_EQ(now_ - start, milliseconds(39500));
  auto failed = find<AllocationFailed>(events());
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->failure, Failure::kTimeout);
}

TEST_F(TurnClientTest, LostRequestIsRetransmittedAndSucceeds) {
  client_.allocate(now_, {});
  ASSERT_TRUE(client_.poll_transmit());  // first transmission lost
  now_ = client_.next_deadline();
  client_.handle_timeout(now_);
  pump();
  EXPECT_TRUE(find<Allocated>(events()));
}

TEST_F(TurnClientTest, PermissionChannelAndDataBothWays) {
  allocate();
  events();
  client_.create_permission(now_, kPeer.ip);
  pump();
  EXPECT_TRUE(find<PermissionCreated>(events()));

  // Before a channel: Send indication with XOR-PEER-ADDRESS and DATA.
  Bytes payload = to_bytes("hello peer");
  auto wrapped = client_.wrap(kPeer, payload);
  ASSERT_TRUE(wrapped);
  server_.handle(*wrapped);
  ASSERT_EQ(server_.indications.size(), 1u);
  EXPECT_EQ(server_.indications[0].method(), Method::kSend);
  EXPECT_EQ(server_.indications[0].xor_address(attr::kXorPeerAddress).value(), kPeer);
  EXPECT_EQ(server_.indications[0].bytes(attr::kData).value(), payload);

  // Channel bound: data goes as ChannelData at once, even before the bind succeeds.
  auto channel = client_.bind_channel(now_, kPeer);
  ASSERT_TRUE(channel);
  EXPECT_EQ(*channel, 0x4000);
  auto cd = client_.wrap(kPeer, payload);
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->size(), 4 + payload.size());
  pump();  // the ChannelBind
  EXPECT_TRUE(find<ChannelBound>(events()));
  server_.handle(*cd);
  ASSERT_EQ(server_.channel_data.size(), 1u);
  EXPECT_EQ(server_.channel_data[0].second, payload);

  // Server → client: ChannelData and Data indication both come out as peer data.
  Bytes from_peer;
  stun::encode_channel_data(0x4000, as_bytes("pong"), from_peer);
  auto received = client_.handle_datagram(now_, from_peer);
  ASSERT_TRUE(received);
  EXPECT_EQ(received->peer, kPeer);
  EXPECT_EQ(as_chars(received->data), "pong");
  EXPECT_TRUE(received->via_channel);

  stun::TransactionId id{};
  stun::MessageBuilder b(Method::kData, Class::kIndication, id);
  b.add_xor_address(attr::kXorPeerAddress, kPeer);
  b.add_bytes(attr::kData, as_bytes("indicated"));
  auto indication = b.finish();
  received = client_.handle_datagram(now_, indication);
  ASSERT_TRUE(received);
  EXPECT_EQ(as_chars(received->data), "indicated");
  EXPECT_FALSE(received->via_channel);

  // Unknown channel is dropped and counted.
  Bytes stray;
  stun::encode_channel_data(0x4abc, as_bytes("?"), stray);
  EXPECT_FALSE(client_.handle_datagram(now_, stray));
  EXPECT_EQ(client_.dropped_datagrams(), 1u);
}

TEST_F(TurnClientTest, RefreshesAllocationPermissionsAndChannelsBeforeExpiry) {
  allocate();
  client_.create_permission(now_, kPeer.ip);
  pump();
  ASSERT_TRUE(client_.bind_channel(now_, kPeer));
  pump();
  events();
  server_.methods.clear();
  // Run 20 virtual minutes; answer everything.
  const TimePoint end = now_ + std::chrono::minutes(20);
  while (client_.next_deadline() < end) {
    now_ = client_.next_deadline();
    client_.handle_timeout(now_);
    pump();
  }
  int refreshes = 0, permissions = 0, binds = 0;
  for (auto m : server_.methods) {
    refreshes += m == Method::kRefresh;
    permissions += m == Method::kCreatePermission;
    binds += m == Method::kChannelBind;
  }
  EXPECT_EQ(refreshes, 2);    // every 540 s (600 s lifetime − 60 s margin)
  EXPECT_GE(permissions, 4);  // every 240 s (RFC 8656 §9: 300 s lifetime)
  EXPECT_GE(binds, 4);        // channel re-bound with its permission
  EXPECT_EQ(client_.state(), State::kAllocated);
  EXPECT_TRUE(client_.wrap(kPeer, as_bytes("x")));
}

TEST_F(TurnClientTest, LostRefreshReportsAllocationLost) {
  allocate();
  events();
  now_ = client_.next_deadline();
  client_.handle_timeout(now_);
  while (client_.next_deadline() != kNever) {
    while (client_.poll_transmit()) {
    }
    now_ = client_.next_deadline();
    client_.handle_timeout(now_);
  }
  auto lost = find<AllocationLost>(events());
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->failure, Failure::kTimeout);
  EXPECT_EQ(client_.state(), State::kFailed);
}

TEST_F(TurnClientTest, ExplicitRefreshReportsAServerThatForgotTheAllocation) {
  allocate();
  events();
  client_.refresh(now_);
  pump();
  EXPECT_TRUE(find<Refreshed>(events()));
  // A restarted server answers 437: the allocation is gone.
  client_.refresh(now_);
  auto request = client_.poll_transmit();
  ASSERT_TRUE(request);
  auto m = stun::Message::parse(*request);
  client_.handle_datagram(now_, server_.error(*m, 437, false));
  auto lost = find<AllocationLost>(events());
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->failure, Failure::kAllocationMismatch);
  EXPECT_EQ(client_.state(), State::kFailed);
}

TEST_F(TurnClientTest, DeallocateSendsZeroLifetime) {
  allocate();
  events();
  client_.deallocate(now_);
  pump();
  EXPECT_TRUE(find<Deallocated>(events()));
  EXPECT_EQ(client_.state(), State::kClosed);
  EXPECT_EQ(server_.methods.back(), Method::kRefresh);
}

TEST_F(TurnClientTest, ForgedSuccessWithoutIntegrityIsIgnored) {
  client_.prewarm(now_);
  pump();
  events();
  client_.allocate(now_, {});
  auto request = client_.poll_transmit();
  ASSERT_TRUE(request);
  auto m = stun::Message::parse(*request);
  ASSERT_TRUE(m);
  stun::MessageBuilder forged(Method::kAllocate, Class::kSuccess, m->transaction_id());
  forged.add_xor_address(attr::kXorRelayedAddress, kPeer);
  forged.add_xor_address(attr::kXorMappedAddress, kPeer);
  client_.handle_datagram(now_, forged.finish());
  EXPECT_EQ(client_.state(), State::kAllocating);
  EXPECT_EQ(client_.dropped_datagrams(), 1u);
  // The real answer still completes it.
  client_.handle_datagram(now_, *server_.handle(*request));
  EXPECT_TRUE(find<Allocated>(events()));
}

TEST_F(TurnClientTest, OperationsBeforeAllocationFailClearly) {
  EXPECT_EQ(client_.wrap(kPeer, as_bytes("x")).error(), Failure::kNotAllocated);
  EXPECT_EQ(client_.bind_channel(now_, kPeer).error(), Failure::kNotAllocated);
  client_.create_permission(now_, kPeer.ip);
  auto failed = find<PermissionFailed>(events());
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->failure, Failure::kNotAllocated);
}

TEST_F(TurnClientTest, GarbageFromServerIsDroppedNotFatal) {
  allocate();
  events();
  SeededRandom r(99);
  for (int i = 0; i < 2000; ++i) {
    Bytes junk(r.uniform(100));
    r.fill(junk);
    client_.handle_datagram(now_, junk);
  }
  EXPECT_EQ(client_.state(), State::kAllocated);
  EXPECT_GT(client_.dropped_datagrams(), 0u);
}

}  // namespace
}  // namespace roam::turn
