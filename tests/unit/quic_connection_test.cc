// The sans-I/O QUIC connection (ngtcp2 0.12.1 + GnuTLS) end to end in virtual time: a client and
// a server Connection joined by a small simulated network of physical links (one-way delay,
// random loss, death) that the client's PathIds are mapped onto. The clock jumps to the next
// arrival or deadline; nothing sleeps.
#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <map>
#include <queue>
#include <set>

#include <gtest/gtest.h>

#include "agent/quic/connection.h"
#include "common/crypto/digest.h"
#include "common/signaling/message.h"

namespace roam::agent::quic {
namespace {

using std::chrono::microseconds;

double ms(Duration d) {
  return to_ms(d);
}

const std::shared_ptr<const TlsIdentity>& client_identity() {
  static const auto id = TlsIdentity::generate().value();
  return id;
}
const std::shared_ptr<const TlsIdentity>& server_identity() {
  static const auto id = TlsIdentity::generate().value();
  return id;
}
const std::shared_ptr<const TlsIdentity>& stranger_identity() {
  static const auto id = TlsIdentity::generate().value();
  return id;
}

Bytes pattern(std::size_t n, std::uint64_t seed) {
  Bytes b(n);
  SeededRandom r(seed);
  r.fill(b);
  return b;
}

// Feeds a byte string into a stream as the send buffer allows, then FIN.
struct Sender {
  StreamId stream = -1;
  Bytes data;
  std::size_t offset = 0;
  bool finished = false;
  bool fin = true;

  void pump(Connection& c) {
    if (finished) return;
    if (offset < data.size()) offset += c.write(stream, ByteSpan(data).subspan(offset));
    if (offset == data.size() && fin) {
      c.finish(stream);
      finished = true;
    }
  }
};

// One end: its connection, what its handlers saw, and a tiny application.
struct Endpoint {
  std::unique_ptr<Connection> conn;
  std::optional<TimePoint> handshake_at;
  std::optional<TimePoint> confirmed_at;
  std::optional<std::string> closed;
  int calls_after_closed = 0;
  std::vector<StreamId> opened;
  std::map<StreamId, Bytes> received;
  std::set<StreamId> fin;
  std::map<StreamId, TimePoint> fin_at;
  std::uint64_t ack_eliciting = 0;      // datagrams sent that the peer will acknowledge
  std::uint64_t not_ack_eliciting = 0;  // ACK-only and the like
  std::vector<std::pair<StreamId, std::uint64_t>> resets;
  std::vector<PathId> path_changes;
  std::vector<std::pair<PathId, bool>> validations;
  int acked_calls = 0;
  // Receive gaps: the longest time between two deliveries of stream bytes.
  std::optional<TimePoint> last_data;
  Duration max_gap{};
  TimePoint max_gap_end{};
  bool echo = false;  // write back everything received, FIN after the peer's FIN
  std::map<StreamId, Sender> echoes;
  std::vector<Sender> senders;

  void pump() {
    if (!conn || conn->is_closed()) return;
    for (auto& s : senders)
      s.pump(*conn);
    for (auto& [id, s] : echoes)
      s.pump(*conn);
  }
};

struct Link {
  Duration delay = milliseconds(20);
  double loss = 0.0;
  bool dead = false;
};

struct InFlight {
  TimePoint at;
  std::uint64_t seq;
  bool to_server;
  PathId path;
  Bytes data;
  bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

class QuicSim {
 public:
  explicit QuicSim(std::uint64_t seed = 1)
      : client_random_(seed * 3 + 1), server_random_(seed * 3 + 2), net_random_(seed * 3 + 3) {
    client_config.is_client = true;
    client_config.peer_fingerprint = server_identity()->fingerprint();
    server_config.is_client = false;
    server_config.peer_fingerprint = client_identity()->fingerprint();
  }

  ConnectionConfig client_config;
  ConnectionConfig server_config;
  Endpoint client;
  Endpoint server;
  TimePoint now = TimePoint{} + seconds(1000);
  std::vector<Link> links{Link{}};
  std::map<PathId, std::size_t> link_of;  // PathId -> physical link (unlisted: link 0)
  // The PathId the client's owner reports for a server datagram sent on `path`.
  std::function<PathId(PathId)> client_rx_path = [](PathId p) { return p; };
  std::vector<Bytes> tap;  // every datagram sent, when `tapping`
  bool tapping = false;
  std::string accept_error;
  std::size_t steps = 0;
  std::size_t stuck = 0;
  bool failed = false;

  void start(PathId path = 1) {
    start_at = now;
    auto c = Connection::connect(client_config, client_identity(), path, client_random_, now,
                                 handlers(client));
    ASSERT_TRUE(c.has_value()) << c.error();
    client.conn = std::move(*c);
  }

  ConnectionHandlers handlers(Endpoint& e) {
    ConnectionHandlers h;
    auto guard = [&e] {
      if (e.closed) ++e.calls_after_closed;
    };
    h.handshake_completed = [this, &e, guard] {
      guard();
      e.handshake_at = now;
    };
    h.handshake_confirmed = [this, &e, guard] {
      guard();
      e.confirmed_at = now;
    };
    h.stream_opened = [&e, guard](StreamId id) {
      guard();
      e.opened.push_back(id);
      if (e.echo) e.echoes[id] = Sender{.stream = id, .fin = false};
    };
    h.stream_data = [this, &e, guard](StreamId id, ByteSpan data, bool fin) {
      guard();
      Bytes& r = e.received[id];
      r.insert(r.end(), data.begin(), data.end());
      if (fin) {
        e.fin.insert(id);
        e.fin_at[id] = now;
      }
      if (!data.empty()) {
        if (e.last_data && now - *e.last_data > e.max_gap) {
          e.max_gap = now - *e.last_data;
          e.max_gap_end = now;
        }
        e.last_data = now;
      }
      if (e.echo) {
        auto [it, added] = e.echoes.try_emplace(id, Sender{.stream = id, .fin = false});
        Sender& s = it->second;
        s.data.insert(s.data.end(), data.begin(), data.end());
        s.fin = s.fin || fin;
        s.pump(*e.conn);
      }
    };
    h.stream_reset = [&e, guard](StreamId id, std::uint64_t code) {
      guard();
      e.resets.emplace_back(id, code);
    };
    h.stream_acked = [&e, guard](StreamId) {
      guard();
      ++e.acked_calls;
      e.pump();
    };
    h.path_changed = [&e, guard](PathId p) {
      guard();
      e.path_changes.push_back(p);
    };
    h.path_validated = [&e, guard](PathId p, bool ok) {
      guard();
      e.validations.emplace_back(p, ok);
    };
    h.closed = [&e, guard](const std::string& reason) {
      guard();
      e.closed = reason;
    };
    return h;
  }

  Link& link_for(PathId p) {
    auto it = link_of.find(p);
    return links[it == link_of.end() ? 0 : it->second];
  }

  void send(const Transmit& t, bool to_server) {
    if (tapping) tap.push_back(t.data);
    Endpoint& from = to_server ? client : server;
    ++(t.ack_eliciting ? from.ack_eliciting : from.not_ack_eliciting);
    ++datagrams;
    Link& l = link_for(t.path);
    if (l.dead) return;
    if (l.loss > 0 && static_cast<double>(net_random_.uniform(1'000'000)) < l.loss * 1e6) return;
    queue_.push(InFlight{now + l.delay, seq_++, to_server, t.path, t.data});
  }

  void flush() {
    for (int round = 0; round < 4; ++round) {
      client.pump();
      server.pump();
      bool any = false;
      for (Endpoint* e : {&client, &server}) {
        if (!e->conn) continue;
        while (auto t = e->conn->poll_transmit(now)) {
          send(*t, e == &client);
          any = true;
        }
      }
      if (!any) break;
    }
  }

  void deliver(InFlight& p) {
    if (p.to_server) {
      if (!server.conn) {
        auto s = Connection::accept(server_config, server_identity(), p.path, p.data,
                                    server_random_, now, handlers(server));
        if (!s) {
          accept_error = s.error();
          return;
        }
        server.conn = std::move(*s);
        return;
      }
      server.conn->receive(p.path, p.data, now);
    } else if (client.conn) {
      client.conn->receive(client_rx_path(p.path), p.data, now);
    }
  }

  TimePoint next_event() const {
    TimePoint t = kNever;
    if (!queue_.empty()) t = queue_.top().at;
    if (client.conn) t = std::min(t, client.conn->next_deadline());
    if (server.conn) t = std::min(t, server.conn->next_deadline());
    return t;
  }

  // One step: send what is ready, jump to the next event (at most `limit`), handle it.
  bool step(TimePoint limit) {
    flush();
    const TimePoint t = next_event();
    if (t > limit) {
      now = limit;
      return false;
    }
    stuck = t <= now ? stuck + 1 : 0;
    if (stuck > 100'000 || failed) {
      if (!failed) {
        ADD_FAILURE() << "simulation does not advance at +" << ms(now - start_at) << " ms: client "
                      << ms(client.conn->next_deadline() - now) << " server "
                      << (server.conn ? ms(server.conn->next_deadline() - now) : -1.0) << " queue "
                      << queue_.size();
      }
      failed = true;
      now = limit;
      return false;
    }
    ++steps;
    now = std::max(now, t);
    while (!queue_.empty() && queue_.top().at <= now) {
      InFlight p = queue_.top();
      queue_.pop();
      deliver(p);
    }
    for (Endpoint* e : {&client, &server}) {
      if (e->conn && e->conn->next_deadline() <= now) e->conn->handle_timeout(now);
    }
    return true;
  }

  bool run_until(const std::function<bool()>& done, Duration max) {
    const TimePoint limit = now + max;
    while (!done()) {
      if (!step(limit) && now >= limit) return done();
    }
    flush();
    return true;
  }

  void run_for(Duration d) {
    const TimePoint limit = now + d;
    while (step(limit)) {
    }
    flush();
  }

  bool connected() const {
    return client.handshake_at.has_value() && server.handshake_at.has_value();
  }

  // Opens a client stream that uploads `data` (and FIN).
  StreamId upload(Bytes data) {
    auto id = client.conn->open_stream();
    EXPECT_TRUE(id.has_value()) << id.error();
    client.senders.push_back(Sender{.stream = *id, .data = std::move(data)});
    return *id;
  }

  TimePoint start_at{};
  std::uint64_t datagrams = 0;

 private:
  SeededRandom client_random_;
  SeededRandom server_random_;
  SeededRandom net_random_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> queue_;
  std::uint64_t seq_ = 0;
};

// --- identity ----------------------------------------------------------------------------------

TEST(QuicTlsIdentity, FingerprintIsRfc8122TextOfTheDerCertificate) {
  auto id = TlsIdentity::generate();
  ASSERT_TRUE(id.has_value()) << id.error();
  EXPECT_TRUE(signaling::valid_fingerprint((*id)->fingerprint())) << (*id)->fingerprint();
  EXPECT_NE((*id)->credentials(), nullptr);
  EXPECT_NE((*id)->fingerprint(), client_identity()->fingerprint());
  // SHA-256("abc") (FIPS 180-2 appendix B.1) in the fingerprint form.
  const unsigned char abc[] = {'a', 'b', 'c'};
  EXPECT_EQ(certificate_fingerprint(abc, 3),
            "sha-256 BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:"
            "10:FF:61:F2:00:15:AD");
}

// --- handshake ---------------------------------------------------------------------------------

TEST(QuicConnection, HandshakeAuthenticatesBothSidesWithoutPacingStall) {
  for (Duration one_way : {Duration(microseconds(500)), Duration(milliseconds(20))}) {
    QuicSim sim;
    sim.links[0].delay = one_way;
    sim.start();
    ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
    const Duration rtt = 2 * one_way;
    ASSERT_TRUE(sim.run_until([&] { return sim.client.confirmed_at.has_value(); }, seconds(5)));
    const Duration client_t = *sim.client.handshake_at - sim.start_at;
    const Duration confirmed_t = *sim.client.confirmed_at - sim.start_at;
    const Duration server_t = *sim.server.handshake_at - sim.start_at;
    std::printf(
        "handshake at %.1f ms one-way: client complete %.2f RTT, server complete %.2f RTT, client "
        "confirmed %.2f RTT\n",
        ms(one_way), ms(client_t) / ms(rtt), ms(server_t) / ms(rtt), ms(confirmed_t) / ms(rtt));
    // Client complete (may send data) after 1 RTT, server after 1.5 RTT, client confirmed
    // (HANDSHAKE_DONE) after 2 RTT; pacing at initial_rtt would add ~8 ms per packet of the
    // server's first flight.
    EXPECT_LT(client_t, 2 * rtt + microseconds(100));
    EXPECT_LT(confirmed_t, 4 * rtt + microseconds(100));
    EXPECT_TRUE(sim.server.confirmed_at.has_value());
    EXPECT_LT(server_t, 3 * rtt + microseconds(100));
    EXPECT_TRUE(sim.client.conn->handshake_completed());
    EXPECT_TRUE(sim.server.conn->handshake_completed());
    EXPECT_FALSE(sim.client.closed);
    EXPECT_FALSE(sim.server.closed);
    EXPECT_TRUE(sim.client.conn->is_client());
    EXPECT_FALSE(sim.server.conn->is_client());
    const ConnectionStats s = sim.client.conn->stats();
    EXPECT_GT(s.smoothed_rtt, Duration::zero());
    EXPECT_GE(s.min_rtt, rtt);
    EXPECT_GT(s.datagrams_sent, 0u);
    EXPECT_GT(s.datagrams_received, 0u);
    EXPECT_GT(s.cwnd, 0u);
  }
}

TEST(QuicConnection, ClientRejectsAServerWithTheWrongFingerprint) {
  QuicSim sim;
  sim.client_config.peer_fingerprint = stranger_identity()->fingerprint();
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.client.closed && sim.server.closed; }, seconds(5)));
  const std::string expected = "peer certificate fingerprint mismatch (expected " +
                               stranger_identity()->fingerprint() + ", got " +
                               server_identity()->fingerprint() + ")";
  EXPECT_EQ(*sim.client.closed, expected);
  EXPECT_NE(sim.server.closed->find("peer closed: certificate fingerprint mismatch"),
            std::string::npos)
      << *sim.server.closed;
  std::printf("client: %s\nserver: %s\n", sim.client.closed->c_str(), sim.server.closed->c_str());
  EXPECT_FALSE(sim.client.handshake_at);
  EXPECT_FALSE(sim.server.handshake_at);
  EXPECT_TRUE(sim.client.conn->is_closed());
  EXPECT_TRUE(sim.server.conn->is_closed());
}

TEST(QuicConnection, ServerRejectsAClientWithTheWrongFingerprint) {
  QuicSim sim;
  sim.server_config.peer_fingerprint = stranger_identity()->fingerprint();
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.client.closed && sim.server.closed; }, seconds(5)));
  EXPECT_EQ(*sim.server.closed, "peer certificate fingerprint mismatch (expected " +
                                    stranger_identity()->fingerprint() + ", got " +
                                    client_identity()->fingerprint() + ")");
  EXPECT_NE(sim.client.closed->find("peer closed: certificate fingerprint mismatch"),
            std::string::npos)
      << *sim.client.closed;
  std::printf("server: %s\nclient: %s\n", sim.server.closed->c_str(), sim.client.closed->c_str());
  // TLS 1.3 client authentication: the client completes (it verified the server) before the
  // server rejects its certificate; it is never confirmed (no HANDSHAKE_DONE).
  EXPECT_FALSE(sim.client.confirmed_at);
  EXPECT_FALSE(sim.server.handshake_at);
}

TEST(QuicConnection, ConfigErrorsAreNamed) {
  SeededRandom r(1);
  ConnectionConfig c;
  auto none = Connection::connect(c, client_identity(), 1, r, TimePoint{}, {});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("peer_fingerprint"), std::string::npos);
  c.peer_fingerprint = server_identity()->fingerprint();
  c.active_connection_id_limit = 9;
  auto limit = Connection::connect(c, client_identity(), 1, r, TimePoint{}, {});
  ASSERT_FALSE(limit);
  EXPECT_NE(limit.error().find("active_connection_id_limit"), std::string::npos);
  c.active_connection_id_limit = 8;
  auto side = Connection::accept(c, server_identity(), 1, as_bytes("x"), r, TimePoint{}, {});
  ASSERT_FALSE(side);
  EXPECT_NE(side.error().find("is_client"), std::string::npos);
}

// --- streams -----------------------------------------------------------------------------------

TEST(QuicConnection, Transfers8MiBBothWaysIntact) {
  QuicSim sim;
  sim.server.echo = true;
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  const Bytes data = pattern(8 << 20, 42);
  const StreamId id = sim.upload(data);
  const TimePoint t0 = sim.now;
  ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(60)));
  EXPECT_EQ(sim.server.opened, std::vector<StreamId>{id});
  EXPECT_TRUE(sim.server.fin.contains(id));
  EXPECT_EQ(crypto::sha256(sim.server.received[id]), crypto::sha256(data));
  EXPECT_EQ(crypto::sha256(sim.client.received[id]), crypto::sha256(data));
  EXPECT_GT(sim.client.acked_calls, 0);
  std::printf("8 MiB echoed at 40 ms RTT in %.0f ms virtual, %llu datagrams\n", ms(sim.now - t0),
              static_cast<unsigned long long>(sim.datagrams));
  sim.run_for(milliseconds(200));
  EXPECT_EQ(sim.client.conn->unacked(id), 0u);
  EXPECT_FALSE(sim.client.closed);
}

TEST(QuicConnection, Transfers8MiBUnder2PercentLoss) {
  QuicSim sim(7);
  sim.links[0].loss = 0.02;
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(10)));
  const Bytes data = pattern(8 << 20, 43);
  const StreamId id = sim.upload(data);
  const TimePoint t0 = sim.now;
  ASSERT_TRUE(sim.run_until([&] { return sim.server.fin.contains(id); }, seconds(120)));
  EXPECT_TRUE(sim.server.received[id] == data);
  std::printf("8 MiB at 2%% loss in %.0f ms virtual\n", ms(sim.now - t0));
  // The client's data packets are ack-eliciting; the server mostly answers with bare ACKs.
  EXPECT_GT(sim.client.ack_eliciting, 6000u);
  EXPECT_GT(sim.server.not_ack_eliciting, 1000u);
  EXPECT_LT(sim.server.ack_eliciting, sim.server.not_ack_eliciting);
}

TEST(QuicConnection, SendBufferIsBoundedAndStreamsShareTheLink) {
  QuicSim sim;
  sim.client_config.max_send_buffer = 256 * 1024;
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  auto id = sim.client.conn->open_stream();
  ASSERT_TRUE(id);
  const Bytes big = pattern(1 << 20, 5);
  EXPECT_EQ(sim.client.conn->write(*id, big), 256u * 1024);
  EXPECT_EQ(sim.client.conn->unacked(*id), 256u * 1024);
  EXPECT_EQ(sim.client.conn->write(*id, big), 0u);
  sim.client.senders.push_back(Sender{.stream = *id, .data = big, .offset = 256 * 1024});
  // Two more streams start later and still finish: the streams take turns.
  std::vector<StreamId> ids{*id};
  for (int i = 0; i < 2; ++i)
    ids.push_back(sim.upload(pattern(512 * 1024, 10 + i)));
  ASSERT_TRUE(sim.run_until(
      [&] {
        return std::all_of(ids.begin(), ids.end(),
                           [&](StreamId s) { return sim.server.fin.contains(s); });
      },
      seconds(30)));
  EXPECT_TRUE(sim.server.received[*id] == big);
  EXPECT_TRUE(sim.server.received[ids[1]] == pattern(512 * 1024, 10));
  EXPECT_TRUE(sim.server.received[ids[2]] == pattern(512 * 1024, 11));
  EXPECT_EQ(sim.server.opened, ids);
  // Round robin: the two later, shorter streams end before the first, longer one.
  EXPECT_LT(sim.server.fin_at[ids[1]], sim.server.fin_at[ids[0]]);
  EXPECT_LT(sim.server.fin_at[ids[2]], sim.server.fin_at[ids[0]]);
}

TEST(QuicConnection, ResetReachesThePeerWithItsCode) {
  QuicSim sim;
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  auto id = sim.client.conn->open_stream();
  ASSERT_TRUE(id);
  sim.client.conn->write(*id, as_bytes("hello"));
  sim.run_for(milliseconds(100));
  sim.client.conn->reset(*id, 77);
  EXPECT_EQ(sim.client.conn->unacked(*id), 0u);
  EXPECT_EQ(sim.client.conn->write(*id, as_bytes("more")), 0u);
  sim.run_for(milliseconds(200));
  ASSERT_EQ(sim.server.resets.size(), 1u);
  EXPECT_EQ(sim.server.resets[0], std::make_pair(*id, std::uint64_t{77}));
  EXPECT_TRUE(sim.client.resets.empty());  // its own reset is not reported back
  EXPECT_FALSE(sim.client.closed);
  EXPECT_FALSE(sim.server.closed);
}

TEST(QuicConnection, OpenStreamNeedsTheHandshake) {
  QuicSim sim;
  sim.start();
  auto id = sim.client.conn->open_stream();
  ASSERT_FALSE(id);
  EXPECT_NE(id.error().find("handshake"), std::string::npos);
  EXPECT_EQ(sim.client.conn->write(0, as_bytes("x")), 0u);
}

// --- migration ---------------------------------------------------------------------------------

struct MigrationRun {
  std::size_t migrations = 0;
  Duration server_gap{};
  Duration client_gap{};
};

// Uploads and echoes `size` bytes while the client moves to a fresh PathId every `every`,
// cycling over three physical links with one-way delays `delays`.
MigrationRun migrate_during_transfer(std::array<Duration, 3> delays, std::size_t size,
                                     Duration every) {
  QuicSim sim(3);
  sim.links = {Link{.delay = delays[0]}, Link{.delay = delays[1]}, Link{.delay = delays[2]}};
  // Every switch takes a fresh PathId; the links repeat (back to a physical path, new id).
  std::vector<PathId> route;
  for (PathId p = 11; p < 11 + 24; ++p) {
    route.push_back(p);
    sim.link_of[p] = (p - 10) % 3;
  }
  sim.link_of[10] = 0;
  sim.server.echo = true;
  sim.start(10);
  EXPECT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  const Bytes data = pattern(size, 44);
  const StreamId id = sim.upload(data);
  sim.run_for(every);
  std::vector<PathId> done;
  for (PathId p : route) {
    if (sim.client.fin.contains(id)) break;
    auto ok = sim.client.conn->migrate(p, sim.now);
    EXPECT_TRUE(ok) << ok.error();
    if (!ok) break;
    EXPECT_EQ(sim.client.conn->current_path(), p);
    done.push_back(p);
    sim.run_for(every);
  }
  EXPECT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(60)));
  EXPECT_TRUE(sim.server.received[id] == data);
  EXPECT_TRUE(sim.client.received[id] == data);
  EXPECT_EQ(sim.server.path_changes, done);
  if (!done.empty()) {
    EXPECT_EQ(sim.server.conn->current_path(), done.back());
  }
  EXPECT_EQ(sim.client.conn->stats().migrations, done.size());
  EXPECT_EQ(sim.server.conn->stats().migrations, done.size());
  for (auto [p, ok] : sim.client.validations)
    EXPECT_TRUE(ok) << "path " << p;
  EXPECT_FALSE(sim.client.closed);
  return {done.size(), sim.server.max_gap, sim.client.max_gap};
}

TEST(QuicConnection, RepeatedMigrationsDuringATransferKeepDataFlowing) {
  const auto run = migrate_during_transfer({milliseconds(20), milliseconds(25), milliseconds(15)},
                                           8 << 20, milliseconds(120));
  EXPECT_GE(run.migrations, 5u) << "the transfer ended before enough migrations";
  const Duration rtt = milliseconds(50);  // the slowest link
  std::printf(
      "%zu migrations at 30-50 ms RTT: longest receive gap server %.1f ms, client %.1f ms\n",
      run.migrations, ms(run.server_gap), ms(run.client_gap));
  EXPECT_LT(run.server_gap, 3 * rtt);
  EXPECT_LT(run.client_gap, 3 * rtt);
}

TEST(QuicConnection, MigrationsAtLowRttDoNotStallOnPacing) {
  // At 2 ms RTT a pacing restart from initial_rtt (100 ms) would space packets ~9 ms apart.
  const auto run = migrate_during_transfer(
      {microseconds(1000), microseconds(1000), microseconds(1000)}, 8 << 20, milliseconds(4));
  EXPECT_GE(run.migrations, 5u);
  const Duration rtt = milliseconds(2);
  std::printf("%zu migrations at 2 ms RTT: longest receive gap server %.2f ms, client %.2f ms\n",
              run.migrations, ms(run.server_gap), ms(run.client_gap));
  EXPECT_LT(run.server_gap, 4 * rtt);
  EXPECT_LT(run.client_gap, 4 * rtt);
}

TEST(QuicConnection, MigratingAwayFromADeadPathDeliversEverything) {
  QuicSim sim(4);
  sim.links = {Link{}, Link{}};
  sim.link_of = {{1, 0}, {2, 1}};
  sim.server.echo = true;
  sim.start(1);
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  const Bytes data = pattern(4 << 20, 45);
  const StreamId id = sim.upload(data);
  sim.run_for(milliseconds(200));
  sim.links[0].dead = true;        // drops everything, both ways, including what is in flight later
  sim.run_for(milliseconds(100));  // the owner notices (no ACKs) and moves
  const TimePoint moved = sim.now;
  ASSERT_TRUE(sim.client.conn->migrate(2, sim.now));
  ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(60)));
  EXPECT_TRUE(sim.server.received[id] == data);
  EXPECT_TRUE(sim.client.received[id] == data);
  EXPECT_EQ(sim.server.path_changes, std::vector<PathId>{2});
  std::printf("dead path: moved at +%.0f ms, all echoed %.0f ms later\n", ms(moved - sim.start_at),
              ms(sim.now - moved));
  EXPECT_FALSE(sim.client.closed);
}

TEST(QuicConnection, ClientAcceptsServerPacketsOnAnotherPathId) {
  QuicSim sim(5);
  // The owner receives the server's datagrams over a pair it never sends on.
  sim.client_rx_path = [](PathId) { return PathId{999}; };
  sim.server.echo = true;
  sim.start(1);
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  const Bytes data = pattern(1 << 20, 46);
  const StreamId id = sim.upload(data);
  ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(30)));
  EXPECT_TRUE(sim.client.received[id] == data);
  ASSERT_TRUE(sim.client.conn->migrate(2, sim.now));
  const StreamId id2 = sim.upload(pattern(256 * 1024, 47));
  ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id2); }, seconds(30)));
  EXPECT_TRUE(sim.client.received[id2] == pattern(256 * 1024, 47));
  EXPECT_EQ(sim.client.conn->current_path(), 2u);
}

TEST(QuicConnection, MigrationErrorsAreNamed) {
  QuicSim sim;
  sim.start(1);
  auto early = sim.client.conn->migrate(2, sim.now);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().find("handshake is confirmed"), std::string::npos) << early.error();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  auto server = sim.server.conn->migrate(5, sim.now);
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().find("only the client"), std::string::npos);
  auto same = sim.client.conn->migrate(1, sim.now);
  ASSERT_FALSE(same);
  EXPECT_NE(same.error().find("used before"), std::string::npos);
  sim.run_for(milliseconds(100));
  ASSERT_TRUE(sim.client.conn->migrate(2, sim.now));
  auto back = sim.client.conn->migrate(1, sim.now);
  ASSERT_FALSE(back);
  EXPECT_NE(back.error().find("fresh PathId"), std::string::npos);
}

TEST(QuicConnection, SevenBackToBackMigrationsWithLimitEight) {
  QuicSim sim;
  sim.start(1);
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  sim.run_for(milliseconds(100));  // NEW_CONNECTION_ID frames arrive
  for (PathId p = 2; p <= 8; ++p) {
    auto ok = sim.client.conn->migrate(p, sim.now);
    ASSERT_TRUE(ok) << "migration to " << p << ": " << ok.error();
  }
  auto eighth = sim.client.conn->migrate(9, sim.now);
  ASSERT_FALSE(eighth);
  EXPECT_NE(eighth.error().find("no spare connection ID"), std::string::npos) << eighth.error();
  sim.server.echo = true;
  const Bytes data = pattern(512 * 1024, 48);
  const StreamId id = sim.upload(data);
  ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(30)));
  EXPECT_TRUE(sim.client.received[id] == data);
  EXPECT_EQ(sim.server.conn->current_path(), 8u);
  // The peer issued new IDs meanwhile.
  EXPECT_TRUE(sim.client.conn->migrate(9, sim.now));
}

// --- wire format and hostile input ------------------------------------------------------------

TEST(QuicConnection, EveryDatagramKeepsTheFixedBit) {
  int datagrams = 0;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    QuicSim sim(seed);
    sim.tapping = true;
    sim.server.echo = true;
    sim.start();
    ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
    const StreamId id = sim.upload(pattern(64 * 1024, seed));
    ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(10)));
    sim.client.conn->close(0, "done", sim.now);
    sim.run_for(milliseconds(100));
    for (const Bytes& d : sim.tap) {
      ASSERT_FALSE(d.empty());
      EXPECT_EQ(std::to_integer<unsigned>(d[0]) & 0x40, 0x40u) << "seed " << seed;
      ++datagrams;
    }
  }
  std::printf("%d datagrams over 16 seeds, all with 0x40 set\n", datagrams);
}

TEST(QuicConnection, GarbageIsDroppedAndChangesNothing) {
  QuicSim sim(9);
  sim.tapping = true;
  sim.server.echo = true;
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  const std::vector<Bytes> captured = sim.tap;
  SeededRandom r(99);
  std::vector<Bytes> junk;
  for (std::size_t n : {1, 2, 5, 20, 21, 40, 1199, 1200, 1350, 1500, 65536, 200000}) {
    junk.push_back(pattern(n, n));
    Bytes long_header = pattern(n, n + 1);
    long_header[0] = std::byte{0xc0};  // long header, fixed bit
    junk.push_back(long_header);
    Bytes short_header = pattern(n, n + 2);
    short_header[0] = std::byte{0x40};
    junk.push_back(short_header);
  }
  for (const Bytes& real : captured) {
    // Truncated and bit-flipped copies of real packets of this connection.
    junk.emplace_back(real.begin(), real.begin() + static_cast<std::ptrdiff_t>(real.size() / 2));
    Bytes flipped = real;
    flipped[flipped.size() / 2] ^= std::byte{0x01};
    junk.push_back(flipped);
    Bytes tail = real;
    tail.back() ^= std::byte{0x80};
    junk.push_back(tail);
  }
  for (const Bytes& j : junk) {
    EXPECT_FALSE(sim.client.conn->receive(1, j, sim.now));
    EXPECT_FALSE(sim.server.conn->receive(1, j, sim.now));
    EXPECT_FALSE(sim.server.conn->receive(77, j, sim.now));
  }
  EXPECT_FALSE(sim.client.conn->receive(1, {}, sim.now));
  for (const Bytes& j : junk) {
    SeededRandom rs(1);
    EXPECT_FALSE(Connection::accept(sim.server_config, server_identity(), 1, j, rs, sim.now, {}));
  }
  EXPECT_FALSE(sim.client.closed);
  EXPECT_FALSE(sim.server.closed);
  const Bytes data = pattern(1 << 20, 49);
  const StreamId id = sim.upload(data);
  ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(30)));
  EXPECT_TRUE(sim.client.received[id] == data);
  EXPECT_EQ(sim.server.path_changes, std::vector<PathId>{});  // junk on path 77 moved nothing
}

TEST(QuicConnection, SurvivesMutatedAndReplayedPacketsOnAnyPath) {
  // An attacker on the path flips bits, truncates, glues and races copies of real datagrams in
  // from other addresses (new PathIds), during the handshake and a transfer. ngtcp2 0.12.1
  // asserted (aborting the process) when such a race made the server fall back to its
  // previous path with PMTUD disabled.
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    QuicSim sim(seed);
    sim.tapping = true;
    sim.server.echo = true;
    sim.start();
    SeededRandom r(seed * 77);
    auto attack = [&](int n) {
      for (int i = 0; i < n && !sim.tap.empty(); ++i) {
        Bytes p = sim.tap[r.uniform(sim.tap.size())];
        switch (r.uniform(5)) {
          case 0:
            p[r.uniform(p.size())] ^= std::byte(1u << r.uniform(8));
            break;
          case 1:
            p.resize(r.uniform(p.size()) + 1);
            break;
          case 2:
            for (int k = 0; k < 8; ++k)
              p[r.uniform(p.size())] = std::byte(r.uniform(256));
            break;
          case 3: {
            const Bytes& q = sim.tap[r.uniform(sim.tap.size())];
            p.insert(p.end(), q.begin(), q.end());
            break;
          }
          default:
            break;  // an exact copy
        }
        const PathId via = r.uniform(2) ? 1 : 2 + r.uniform(1000);
        if (sim.client.conn) sim.client.conn->receive(via, p, sim.now);
        if (sim.server.conn) sim.server.conn->receive(via, p, sim.now);
      }
    };
    for (int k = 0; k < 20 && !sim.connected(); ++k) {
      sim.step(sim.now + milliseconds(10));
      attack(100);
    }
    ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(20)));
    const Bytes data = pattern(1 << 20, seed);
    const StreamId id = sim.upload(data);
    for (int k = 0; k < 50 && !sim.client.fin.contains(id); ++k) {
      sim.run_for(milliseconds(10));
      attack(300);
    }
    ASSERT_TRUE(sim.run_until([&] { return sim.client.fin.contains(id); }, seconds(30)));
    EXPECT_TRUE(sim.client.received[id] == data) << "seed " << seed;
    EXPECT_FALSE(sim.client.closed);
    EXPECT_FALSE(sim.server.closed);
  }
}

// --- closing -----------------------------------------------------------------------------------

TEST(QuicConnection, CloseSendsOneConnectionCloseThenGoesQuiet) {
  QuicSim sim;
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  auto id = sim.client.conn->open_stream();
  ASSERT_TRUE(id);
  sim.client.conn->close(7, "bye", sim.now);
  EXPECT_TRUE(sim.client.conn->is_closed());
  EXPECT_FALSE(sim.client.closed);  // follows the CONNECTION_CLOSE's hand-out
  auto cc = sim.client.conn->poll_transmit(sim.now);
  ASSERT_TRUE(cc);
  EXPECT_EQ(sim.client.closed, "closed locally: bye");
  EXPECT_FALSE(sim.client.conn->poll_transmit(sim.now));
  sim.send(*cc, true);
  sim.run_for(milliseconds(100));
  EXPECT_EQ(sim.server.closed, "peer closed: bye (application error 7)");
  // Everything is a no-op afterwards.
  EXPECT_EQ(sim.client.conn->write(*id, as_bytes("x")), 0u);
  EXPECT_FALSE(sim.client.conn->open_stream());
  EXPECT_FALSE(sim.client.conn->migrate(3, sim.now));
  sim.client.conn->close(1, "again", sim.now);
  sim.client.conn->handle_timeout(sim.now + seconds(100));
  EXPECT_EQ(sim.client.conn->next_deadline(), kNever);
  EXPECT_EQ(sim.server.conn->next_deadline(), kNever);
  EXPECT_EQ(sim.client.calls_after_closed, 0);
  EXPECT_EQ(sim.server.calls_after_closed, 0);
}

TEST(QuicConnection, IdleTimeoutClosesBothEndsOfADeadLink) {
  QuicSim sim;
  sim.client_config.idle_timeout = seconds(3);
  sim.server_config.idle_timeout = seconds(3);
  sim.client_config.keep_alive = seconds(1);
  sim.server_config.keep_alive = seconds(1);
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.connected(); }, seconds(5)));
  // Quiet but alive: keep-alives hold it open well past the idle timeout.
  sim.run_for(seconds(10));
  EXPECT_FALSE(sim.client.closed);
  EXPECT_FALSE(sim.server.closed);
  sim.links[0].dead = true;
  const TimePoint died = sim.now;
  ASSERT_TRUE(sim.run_until([&] { return sim.client.closed && sim.server.closed; }, seconds(20)));
  EXPECT_EQ(*sim.client.closed, "idle timeout");
  EXPECT_EQ(*sim.server.closed, "idle timeout");
  EXPECT_LE(sim.now - died, seconds(4));
}

TEST(QuicConnection, HandshakeTimesOutWithoutAServer) {
  QuicSim sim;
  sim.links[0].dead = true;
  sim.start();
  ASSERT_TRUE(sim.run_until([&] { return sim.client.closed.has_value(); }, seconds(60)));
  EXPECT_NE(sim.client.closed->find("timed out"), std::string::npos) << *sim.client.closed;
}

}  // namespace
}  // namespace roam::agent::quic
