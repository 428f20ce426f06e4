// One QUIC connection (RFC 9000, ngtcp2 0.12.1 + GnuTLS, ALPN "roam/1", TLS 1.3 only) as a
// sans-I/O object: no sockets, no clocks. The owner feeds datagrams with the path they came on
// and the current time, sends what poll_transmit() returns on the path it names, and calls
// handle_timeout() at next_deadline().
//
// Paths are identifiers the owner chooses (PathId). Each distinct PathId is a distinct QUIC path
// to ngtcp2 (a synthetic address pair, differing by IP so a switch is never taken for a NAT
// rebinding, notes/ngtcp2-0.12.1.md quirk 4). The client migrates by naming a PathId it never
// used before (quirk 3: moving back to a recently used path is broken in 0.12.1).
//
// The client takes every datagram it receives as arriving on its current path, whatever PathId
// the owner passes: the owner may receive the server's packets over another physical pair than
// the one it sends on, and ngtcp2 clients drop packets from paths they do not know. The server
// takes each PathId as its own path: a datagram on a new PathId is the client migrating, and
// path_changed() follows when ngtcp2 moves there.
//
// Peer authentication: both ends present their certificate and pin the peer's fingerprint
// (TlsIdentity); a mismatch fails the handshake and closed() names it ("peer certificate
// fingerprint mismatch (expected sha-256 .., got sha-256 ..)" on the end that checked, "peer
// closed: certificate fingerprint mismatch (TLS alert ..)" on the other).
//
// Every packet keeps the QUIC fixed bit 0x40 (no RFC 9287 greasing, notes quirk 1) so the owner
// can tell QUIC from STUN by the first byte. Pacing stays off until the path has an RTT sample
// (quirk 2: no stall after a migration or during the handshake).
//
// Handlers: they run after the connection's own work, from inside the call that caused them
// (receive, poll_transmit, handle_timeout, and the stream/close/migrate calls), never from
// inside ngtcp2. A handler may call any method of the connection (write more from stream_acked,
// answer from stream_data, close, migrate). It must not destroy the connection: the call that
// runs the handler is still on the stack; defer destruction (e.g. post it to the executor).
//
// Not thread-safe: one owner (one strand) drives a connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/quic/tls_identity.h"
#include "common/util/bytes.h"
#include "common/util/expected.h"
#include "common/util/random.h"
#include "common/util/time.h"

namespace roam::agent::quic {

using PathId = std::uint64_t;
using StreamId = std::int64_t;

inline constexpr const char* kAlpn = "roam/1";

struct ConnectionConfig {
  bool is_client = true;
  std::string peer_fingerprint;  // pinned; "sha-256 AB:..:CD"
  Duration idle_timeout = seconds(30);
  // PING after this long without ack-eliciting traffic, so an idle but live connection is not
  // closed by idle_timeout (zero: never). Must be below idle_timeout to matter.
  Duration keep_alive = seconds(10);
  // Small so the peer's acknowledgements prove the path quickly (liveness is judged on them).
  Duration max_ack_delay = milliseconds(5);
  Duration initial_rtt = milliseconds(100);
  std::uint64_t max_stream_data = 8 * 1024 * 1024;  // receive window per stream
  std::uint64_t max_data = 24 * 1024 * 1024;        // receive window per connection
  std::uint64_t max_streams_bidi = 64;
  std::uint64_t max_streams_uni = 64;
  // Spare connection IDs for back-to-back migrations (the peer's active_connection_id_limit):
  // limit - 1 migrations may follow each other before the peer issues new IDs. 2..8 (ngtcp2
  // 0.12.1 keeps at most 8).
  std::uint64_t active_connection_id_limit = 8;
  // UDP payload per packet (sent and accepted). TURN ChannelData adds 4 bytes, IPv6+UDP 48; 1350
  // fits any 1500 MTU. 1200..65527. No PMTU discovery beyond it.
  std::size_t max_udp_payload = 1350;
  // Bytes a stream may have queued but not yet acknowledged (write() accepts up to this).
  std::size_t max_send_buffer = 4 * 1024 * 1024;
};

struct ConnectionStats {
  Duration smoothed_rtt{};
  Duration min_rtt{};
  Duration latest_rtt{};
  std::uint64_t cwnd = 0;
  std::uint64_t bytes_in_flight = 0;
  std::uint64_t pto_count = 0;
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;
  std::uint64_t migrations = 0;  // client: switches initiated; server: path changes seen
};

struct ConnectionHandlers {
  // Handshake complete: 1-RTT keys on both sides, streams may carry data.
  std::function<void()> handshake_completed;
  // Handshake confirmed (RFC 9001 §4.1.2; the client when HANDSHAKE_DONE arrives, the server at
  // completion): the client may migrate from now on.
  std::function<void()> handshake_confirmed;
  // The peer opened a stream (called before its first stream_data).
  std::function<void(StreamId)> stream_opened;
  // In-order stream bytes; `fin` once, with the last bytes (possibly none). The data is
  // consumed (flow control credit returned) when the handler returns.
  std::function<void(StreamId, ByteSpan data, bool fin)> stream_data;
  // The peer reset the stream (RESET_STREAM; reset() sends it with STOP_SENDING) or stopped
  // reading it. A STOP_SENDING alone is reported only when the stream closes (ngtcp2 0.12.1
  // has no callback for it); the stream's queued bytes are dropped at once either way.
  std::function<void(StreamId, std::uint64_t app_error)> stream_reset;
  // Some of the stream's queued bytes were acknowledged (send buffer space is free again).
  std::function<void(StreamId)> stream_acked;
  // Server: the client moved to this path (the path ngtcp2 now sends on).
  std::function<void(PathId)> path_changed;
  // Path validation of a migration finished (client and server).
  std::function<void(PathId, bool ok)> path_validated;
  // The connection is closed (locally, by the peer, idle timeout, handshake failure); says why:
  // "closed locally: <reason>", "peer closed: <phrase> (<error>)", "idle timeout", "handshake
  // timed out ...", "peer certificate fingerprint mismatch (...)", "QUIC error: ...".
  // When a CONNECTION_CLOSE is to be sent, closed() runs in the poll_transmit() call that hands
  // it out; otherwise in the call that found the end. No other handler is called after this one.
  std::function<void(const std::string& reason)> closed;
};

struct Transmit {
  PathId path = 0;
  Bytes data;
  bool ack_eliciting = false;  // the peer will answer it (it adds to bytes in flight)
};

class Connection {
 public:
  // `random` must outlive the connection (connection IDs, reset tokens, path challenges: use
  // SystemRandom outside tests); `now` is the connection's time origin.
  // Errors (both): an invalid config (named field), GnuTLS or ngtcp2 refused the setup.
  //
  // Client: starts the handshake on `path` (the first Initial comes from poll_transmit()).
  static expected<std::unique_ptr<Connection>, std::string> connect(
      const ConnectionConfig& config, std::shared_ptr<const TlsIdentity> identity, PathId path,
      RandomSource& random, TimePoint now, ConnectionHandlers handlers);
  // Server: accepts the client's first Initial datagram that arrived on `path`. Error: not a
  // valid client Initial (the datagram is dropped; the owner may wait for another).
  static expected<std::unique_ptr<Connection>, std::string> accept(
      const ConnectionConfig& config, std::shared_ptr<const TlsIdentity> identity, PathId path,
      ByteSpan first_datagram, RandomSource& random, TimePoint now, ConnectionHandlers handlers);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // --- I/O ---------------------------------------------------------------------------------
  // A datagram that arrived on `path`. True: at least one packet in it decrypted with this
  // connection's keys (proof of life of that path; Initial packets prove less). False: dropped
  // (garbage, stale, undecryptable, or the connection is closed). Never fails the connection on
  // bytes that do not decrypt.
  bool receive(PathId path, ByteSpan datagram, TimePoint now);
  // The next datagram to send (handshake, stream data, ACKs, control frames), or nothing now
  // (congestion window, pacing, nothing to say). Call until it returns nothing after every
  // receive(), handle_timeout() and stream call. Stream data goes round robin, one packet each.
  // After the end, returns the pending CONNECTION_CLOSE once, then nothing.
  std::optional<Transmit> poll_transmit(TimePoint now);
  TimePoint next_deadline() const;  // TimePoint::max() when nothing is scheduled
  // Timers (loss detection, ACK delay, pacing, keep-alive, idle and handshake timeouts). Then
  // poll_transmit().
  void handle_timeout(TimePoint now);

  // --- streams -------------------------------------------------------------------------------
  // Opens a bidirectional stream. Error: the peer's stream limit is reached, or not connected.
  expected<StreamId, std::string> open_stream();
  // Queues bytes on the stream (copied); returns how many were accepted (max_send_buffer bounds
  // the unacknowledged bytes; stream_acked() says when there is room again). 0 for an unknown,
  // finished, reset or stopped stream.
  std::size_t write(StreamId stream, ByteSpan data);
  // FIN after everything queued so far; write() accepts nothing more.
  void finish(StreamId stream);
  // RESET_STREAM and STOP_SENDING with `app_error` (RFC 9000 §3.5); queued bytes are dropped.
  void reset(StreamId stream, std::uint64_t app_error);
  // Bytes queued on the stream and not yet acknowledged by the peer (0 once reset or closed).
  std::size_t unacked(StreamId stream) const;

  // --- migration (client only) ----------------------------------------------------------------
  // Moves to `path` now (immediate migration, validated in parallel; RFC 9000 §9.2): the next
  // packets go out on `path`; path_validated() reports the check. `path` must not have been used
  // before by this connection. Errors: server side; closed; `path` used before; handshake not
  // confirmed yet (or the peer disabled migration); no spare connection ID (limit - 1
  // back-to-back migrations, then about one RTT until the peer issues new IDs).
  expected<void, std::string> migrate(PathId path, TimePoint now);
  // The path packets go out on (server: where the client was last seen migrating to).
  PathId current_path() const;

  // --- lifecycle --------------------------------------------------------------------------------
  // Sends CONNECTION_CLOSE with an application error (through poll_transmit); closed() follows.
  // After it (and after any end) every call is a no-op.
  void close(std::uint64_t app_error, const std::string& reason, TimePoint now);
  bool handshake_completed() const;
  bool handshake_confirmed() const;
  // The connection has ended (possibly with its CONNECTION_CLOSE still to be polled).
  bool is_closed() const;
  bool is_client() const;
  ConnectionStats stats() const;

 private:
  Connection() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace roam::agent::quic
