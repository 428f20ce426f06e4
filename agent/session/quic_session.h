// One QUIC connection to the session's peer, carried over the path engine's ICE pairs.
//
//  - Relay-first: the ICE controlling agent is the QUIC client and starts the handshake on the
//    first selected pair (normally through the relay, or host-to-host on a shared LAN) without
//    waiting for direct checks. The controlled agent accepts the client's first Initial.
//  - Migration: whenever the client's ICE selection moves (a better pair, or the active one
//    failed), the client migrates at once to the new, already-validated pair under a fresh path
//    identity (notes/ngtcp2-0.12.1.md, quirk 3). The server follows the client and, when its own
//    end of the path dies, tells the client over the control stream (candidate removed, switch
//    request) while it sends on its best remaining pair.
//  - Control stream: the client's first bidirectional stream. Both sides send every local
//    candidate, removal and end-of-candidates over it once connected, so path discovery and
//    migration keep working when the signaling server is gone. Pings on it keep an idle
//    connection alive and measure RTT.
//  - Liveness: every authenticated QUIC packet is proof of life of the pair it came on; every
//    ack-eliciting packet sent starts the pair's liveness timer (ice::Agent).
//
// Thread model: the engine's executor; every call on it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include "agent/paths/event_log.h"
#include "agent/paths/path_engine.h"
#include "agent/quic/connection.h"
#include "common/session/control_frame.h"
#include "common/signaling/message.h"

namespace roam::agent {

// A change of the QUIC connection's path.
struct PathSwitch {
  ice::PairInfo from;  // the pair used before (empty pair id 0 for the first path)
  ice::PairInfo to;
  std::string reason;  // the ICE selection reason, or "peer-migrated" on the server
  TimePoint at;
};

struct QuicSessionHandlers {
  std::function<void()> connected;  // handshake done, control stream open: streams may be opened
  std::function<void(quic::StreamId)> stream_opened;  // application streams only
  std::function<void(quic::StreamId, ByteSpan, bool fin)> stream_data;
  std::function<void(quic::StreamId)> stream_acked;
  std::function<void(quic::StreamId, std::uint64_t app_error)> stream_reset;
  std::function<void(const PathSwitch&)> path_switched;
  std::function<void(const std::string& reason)> closed;  // called once
};

class QuicSession {
 public:
  QuicSession(boost::asio::any_io_executor executor, PathEngine& engine, EventLog& log,
              RandomSource& random, std::shared_ptr<const quic::TlsIdentity> identity,
              const signaling::Session& session, QuicSessionHandlers handlers);
  ~QuicSession();
  QuicSession(const QuicSession&) = delete;
  QuicSession& operator=(const QuicSession&) = delete;

  // --- from the path engine ------------------------------------------------------------------
  void on_datagram(ice::LocalId local, const SocketAddress& from, ByteSpan data);
  void on_selected(const std::optional<ice::PairInfo>& pair, std::string_view reason);
  void on_local_candidate(const std::string& text);
  void on_local_candidate_removed(const SocketAddress& address);

  // --- for the application -------------------------------------------------------------------
  expected<quic::StreamId, std::string> open_stream();
  std::size_t write(quic::StreamId stream, ByteSpan data);
  void finish(quic::StreamId stream);
  void reset(quic::StreamId stream, std::uint64_t app_error);
  std::size_t unacked(quic::StreamId stream) const;
  // Sends what the connection has to send (call after writes). Deferred to the end of the
  // current event-loop turn, so a burst of writes and received datagrams costs one flush.
  void flush();
  // Closes the connection (application error 0 = done); closed() follows.
  void close(std::uint64_t app_error, const std::string& reason);

  bool connected() const { return connected_; }
  // Application bytes the streams accepted so far (control stream excluded).
  std::uint64_t bytes_written() const { return bytes_written_; }
  bool is_closed() const { return closed_; }
  std::optional<quic::ConnectionStats> stats() const;
  // The pair the QUIC connection is on now.
  std::optional<ice::PairInfo> active_pair() const;
  boost::json::object status() const;
  // The local interface name of a pair ("" when unknown).
  std::string interface_of(const ice::PairInfo& pair) const { return engine_.interface_of(pair); }

 private:
  struct PathBinding {
    ice::PairInfo pair;
    TimePoint last_used;
  };
  quic::ConnectionHandlers connection_handlers();
  void start_client(const ice::PairInfo& pair);
  void accept(ice::LocalId local, const SocketAddress& from, ByteSpan data);
  quic::PathId server_path_for(ice::LocalId local, const SocketAddress& from, TimePoint now);
  void trim_paths();
  void migrate_to(const ice::PairInfo& pair, const std::string& reason);
  void send_transmit(const quic::Transmit& t);
  void on_control_data(ByteSpan data);
  void on_control_frame(const session::ControlFrame& frame);
  void send_control(const session::ControlFrame& frame);
  void open_control_stream();
  void switched(quic::PathId from, quic::PathId to, const std::string& reason);
  void flush_now();
  void arm_timer();
  void on_timer();
  void send_ping();
  void finish_close(const std::string& reason);

  boost::asio::any_io_executor executor_;
  PathEngine& engine_;
  EventLog& log_;
  RandomSource& random_;
  std::shared_ptr<const quic::TlsIdentity> identity_;
  signaling::Session session_;
  QuicSessionHandlers handlers_;
  bool is_client_;

  std::unique_ptr<quic::Connection> connection_;
  std::map<quic::PathId, PathBinding> paths_;
  quic::PathId next_path_ = 1;
  quic::PathId current_path_ = 0;
  std::optional<ice::PairInfo> wanted_;  // the client's ICE selection
  std::string wanted_reason_;
  bool connected_ = false;  // handshake complete: streams carry data
  bool confirmed_ = false;  // handshake confirmed: the client may migrate
  bool closed_ = false;
  bool in_flush_ = false;
  bool flush_posted_ = false;
  std::uint64_t bytes_written_ = 0;
  TimePoint started_;

  std::optional<quic::StreamId> control_stream_;
  session::ControlFrameReader control_reader_;
  Bytes control_pending_;               // control bytes the stream did not accept yet
  std::vector<std::string> announced_;  // local candidates sent over the control stream

  boost::asio::steady_timer timer_;
  TimePoint armed_ = TimePoint::max();
  boost::asio::steady_timer ping_timer_;
  std::uint64_t ping_nonce_ = 0;
  TimePoint ping_sent_{};
  std::optional<Duration> control_rtt_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace roam::agent
