#include "agent/quic/connection.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "agent/quic/send_buffer.h"
#include "agent/quic/synthetic_path.h"
#include "agent/quic/tls_session.h"

namespace roam::agent::quic {
namespace {

// ngtcp2 timestamps are nanoseconds from an arbitrary origin. The connection's first `now` maps
// to kTsOrigin, not 0, so that a timestamp "well before any real one" exists (see pacing below).
constexpr ngtcp2_tstamp kTsOrigin = 3600 * NGTCP2_SECONDS;
// Connection IDs: 16 random bytes on both ends (RFC 9000 §5.1: unpredictable, at most 20).
constexpr std::size_t kCidLength = 16;
// The smallest datagram QUIC may send (RFC 9000 §14: Initial datagrams are padded to 1200).
constexpr std::size_t kMinUdpPayload = 1200;
// ngtcp2 0.12.1 keeps at most 8 connection IDs from the peer (NGTCP2_MAX_DCID_POOL_SIZE) and
// asserts on a larger active_connection_id_limit; RFC 9000 §18.2 requires at least 2.
constexpr std::uint64_t kMaxActiveConnectionIds = 8;
constexpr std::size_t kMaxStreamPieces = 4;

// Packets that decrypted during the current ngtcp2_conn_read_pkt(). The decrypt callback has no
// user data; read_pkt never nests (handlers run after it returns), so one per thread suffices.
thread_local int t_decrypted_packets = 0;

std::uint64_t to_ns(Duration d) {
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

Duration from_ns(std::uint64_t ns) {
  if (ns == UINT64_MAX) return Duration::zero();
  return std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(ns));
}

std::string hex_code(std::uint64_t code) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kHex[code & 0xf]);
    code >>= 4;
  } while (code);
  return "0x" + out;
}

// "application error 7", "transport error 0xa", "TLS alert 42 (Certificate is bad)".
std::string describe_close_error(const ngtcp2_connection_close_error& e) {
  switch (e.type) {
    case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION:
      return "application error " + std::to_string(e.error_code);
    case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT_VERSION_NEGOTIATION:
      return "version negotiation";
    case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT_IDLE_CLOSE:
      return "idle timeout";
    default:
      break;
  }
  if (e.error_code >= NGTCP2_CRYPTO_ERROR && e.error_code < NGTCP2_CRYPTO_ERROR + 0x100) {
    const auto alert = static_cast<gnutls_alert_description_t>(e.error_code - NGTCP2_CRYPTO_ERROR);
    const char* name = gnutls_alert_get_name(alert);
    return "TLS alert " + std::to_string(e.error_code - NGTCP2_CRYPTO_ERROR) +
           (name ? std::string(" (") + name + ")" : std::string());
  }
  return e.error_code == NGTCP2_NO_ERROR ? std::string("no error")
                                         : "transport error " + hex_code(e.error_code);
}

}  // namespace

namespace connection_detail {

// Everything a handler learns is queued while ngtcp2 runs and delivered after it returns, so a
// handler may call back into the connection (write, open_stream, reset, close, migrate) without
// re-entering ngtcp2 from one of its callbacks.
struct Event {
  enum class Kind : std::uint8_t {
    kHandshakeDone,
    kHandshakeConfirmed,
    kStreamOpened,
    kStreamData,
    kStreamReset,
    kStreamAcked,
    kPathChanged,
    kPathValidated,
    kClosed,
  };
  Kind kind;
  StreamId stream = 0;
  PathId path = 0;
  std::uint64_t code = 0;  // kStreamReset: the application error
  bool flag = false;       // kStreamData: fin; kPathValidated: ok
  Bytes data;              // kStreamData
  std::string reason;      // kClosed
};

struct StreamState {
  explicit StreamState(std::size_t limit) : buffer(limit) {}
  SendBuffer buffer;
  bool fin_requested = false;
  bool fin_sent = false;
  bool write_closed = false;  // reset locally, or the peer stopped reading (STOP_SENDING)
  bool reset_reported = false;
  bool announced = false;  // stream_opened delivered (remote streams)
  bool closed = false;     // ngtcp2 closed it; erased at the next dispatch

  bool wants_send() const {
    return !write_closed && !closed && (buffer.has_unsent() || (fin_requested && !fin_sent));
  }
};

}  // namespace connection_detail

using connection_detail::Event;
using connection_detail::StreamState;

class Connection::Impl {
 public:
  Impl(const ConnectionConfig& cfg, std::shared_ptr<const TlsIdentity> id, RandomSource& rnd,
       TimePoint now, ConnectionHandlers h)
      : config(cfg), identity(std::move(id)), random(rnd), handlers(std::move(h)), epoch(now) {}

  ~Impl() {
    if (conn) ngtcp2_conn_del(conn);
    tls.reset();  // after the connection: ngtcp2 no longer reaches the session
  }

  // --- setup -------------------------------------------------------------------------------
  static std::string check_config(const ConnectionConfig& c);
  expected<void, std::string> create(PathId path, const ngtcp2_pkt_hd* client_initial,
                                     TimePoint now);

  // --- time --------------------------------------------------------------------------------
  ngtcp2_tstamp ts(TimePoint now) const {
    const std::int64_t t =
        static_cast<std::int64_t>(kTsOrigin) +
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - epoch).count();
    return t < 0 ? 0 : static_cast<ngtcp2_tstamp>(t);
  }
  TimePoint time_of(ngtcp2_tstamp t) const {
    if (t == UINT64_MAX) return kNever;
    const auto d = static_cast<std::int64_t>(t) - static_cast<std::int64_t>(kTsOrigin);
    return epoch + std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(d));
  }

  // --- I/O ---------------------------------------------------------------------------------
  bool receive(PathId path, ByteSpan datagram, TimePoint now);
  std::optional<Transmit> poll_transmit(TimePoint now);
  ngtcp2_ssize write_packet(std::span<std::uint8_t> buf, ngtcp2_path* path, ngtcp2_tstamp now);
  void handle_timeout(TimePoint now);
  void prepare_pacing(TimePoint now);

  // --- ending ------------------------------------------------------------------------------
  // Ends the connection. With `ccerr`, a CONNECTION_CLOSE is written for poll_transmit() and
  // closed() follows its hand-out; without, closed() is queued at once.
  void end(std::string reason, const ngtcp2_connection_close_error* ccerr, TimePoint now);
  void end_with_liberr(int liberr, TimePoint now);
  void on_read_error(int rv, TimePoint now);
  void on_expiry_error(int rv, TimePoint now);

  // --- events ------------------------------------------------------------------------------
  Event& post(Event::Kind kind) {
    events.push_back(Event{.kind = kind});
    return events.back();
  }
  void post_closed(std::string reason) { post(Event::Kind::kClosed).reason = std::move(reason); }
  void dispatch();
  void track_current_path();
  PathId path_id_of(const ngtcp2_path& path) const {
    return synthetic_path_id(path.local).value_or(current_path);
  }
  StreamState* stream(StreamId id) {
    auto it = streams.find(id);
    return it == streams.end() || it->second.closed ? nullptr : &it->second;
  }
  StreamState& ensure_stream(StreamId id) {
    return streams.try_emplace(id, config.max_send_buffer).first->second;
  }

  // --- ngtcp2 callbacks --------------------------------------------------------------------
  static void rand_cb(uint8_t* dest, size_t len, const ngtcp2_rand_ctx* ctx);
  static int decrypt_cb(uint8_t* dest, const ngtcp2_crypto_aead* aead,
                        const ngtcp2_crypto_aead_ctx* aead_ctx, const uint8_t* ciphertext,
                        size_t ciphertextlen, const uint8_t* nonce, size_t noncelen,
                        const uint8_t* aad, size_t aadlen);
  static int get_new_connection_id_cb(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen,
                                      void* user_data);
  static int get_path_challenge_data_cb(ngtcp2_conn*, uint8_t* data, void* user_data);
  static int handshake_completed_cb(ngtcp2_conn*, void* user_data);
  static int handshake_confirmed_cb(ngtcp2_conn*, void* user_data);
  static int stream_open_cb(ngtcp2_conn*, int64_t stream_id, void* user_data);
  static int recv_stream_data_cb(ngtcp2_conn*, uint32_t flags, int64_t stream_id, uint64_t offset,
                                 const uint8_t* data, size_t datalen, void* user_data,
                                 void* stream_user_data);
  static int acked_stream_data_offset_cb(ngtcp2_conn*, int64_t stream_id, uint64_t offset,
                                         uint64_t datalen, void* user_data, void* stream_user_data);
  static int stream_reset_cb(ngtcp2_conn*, int64_t stream_id, uint64_t final_size,
                             uint64_t app_error_code, void* user_data, void* stream_user_data);
  static int stream_close_cb(ngtcp2_conn*, uint32_t flags, int64_t stream_id,
                             uint64_t app_error_code, void* user_data, void* stream_user_data);
  static int path_validation_cb(ngtcp2_conn*, uint32_t flags, const ngtcp2_path* path,
                                ngtcp2_path_validation_result res, void* user_data);
  static int recv_stateless_reset_cb(ngtcp2_conn*, const ngtcp2_pkt_stateless_reset*,
                                     void* user_data);

  ConnectionConfig config;
  std::shared_ptr<const TlsIdentity> identity;
  RandomSource& random;
  ConnectionHandlers handlers;
  TimePoint epoch;

  std::unique_ptr<TlsSession> tls;
  ngtcp2_conn* conn = nullptr;
  bool in_conn_new = false;

  PathId current_path = 0;
  std::set<PathId> used_paths;  // client: every path it has been on (never reused, quirk 3)

  std::map<StreamId, StreamState> streams;
  StreamId next_stream_turn = 0;  // round robin: the next stream to serve is >= this id
  std::set<StreamId> acked_streams;
  std::vector<StreamId> closed_streams;  // erased outside ngtcp2 calls (write_packet iterates)

  std::vector<Event> events;
  bool dispatching = false;
  bool closed_delivered = false;

  bool handshake_done = false;
  bool handshake_confirmed = false;
  bool paced = false;  // ngtcp2_conn_update_pkt_tx_time is being called (see prepare_pacing)
  bool stateless_reset = false;

  bool ended = false;
  std::optional<Transmit> final_packet;  // the CONNECTION_CLOSE still to hand out
  std::string final_reason;
  TimePoint final_at{};

  ConnectionStats counters;
};

// --- setup ---------------------------------------------------------------------------------

std::string Connection::Impl::check_config(const ConnectionConfig& c) {
  if (c.peer_fingerprint.empty()) return "QUIC: peer_fingerprint is required (pinned certificate)";
  if (c.active_connection_id_limit < 2 || c.active_connection_id_limit > kMaxActiveConnectionIds) {
    return "QUIC: active_connection_id_limit must be 2..8 (RFC 9000 §18.2 minimum; ngtcp2 0.12.1 "
           "keeps at most 8)";
  }
  if (c.max_udp_payload < kMinUdpPayload || c.max_udp_payload > 65527) {
    return "QUIC: max_udp_payload must be 1200..65527 (RFC 9000 §14, §18.2)";
  }
  const std::uint64_t max_varint = NGTCP2_MAX_VARINT;
  if (c.max_stream_data > max_varint || c.max_data > max_varint ||
      c.max_streams_bidi > (1ull << 60) || c.max_streams_uni > (1ull << 60)) {
    return "QUIC: flow-control or stream limits too large (RFC 9000 §4.6, §16)";
  }
  if (c.max_ack_delay >= milliseconds(1 << 14) || c.idle_timeout <= Duration::zero() ||
      c.initial_rtt <= Duration::zero()) {
    return "QUIC: max_ack_delay must be < 2^14 ms; idle_timeout and initial_rtt positive";
  }
  if (c.max_send_buffer == 0) return "QUIC: max_send_buffer must be positive";
  return {};
}

expected<void, std::string> Connection::Impl::create(PathId path,
                                                     const ngtcp2_pkt_hd* client_initial,
                                                     TimePoint now) {
  const bool server = client_initial != nullptr;
  auto session = TlsSession::create(server, *identity, config.peer_fingerprint);
  if (!session) return unexpected(session.error());
  tls = std::move(*session);

  ngtcp2_callbacks cb{};
  cb.client_initial = ngtcp2_crypto_client_initial_cb;
  cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = &Impl::decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = &Impl::rand_cb;
  cb.get_new_connection_id = &Impl::get_new_connection_id_cb;
  cb.get_path_challenge_data = &Impl::get_path_challenge_data_cb;
  cb.handshake_completed = &Impl::handshake_completed_cb;
  cb.handshake_confirmed = &Impl::handshake_confirmed_cb;
  cb.stream_open = &Impl::stream_open_cb;
  cb.recv_stream_data = &Impl::recv_stream_data_cb;
  cb.acked_stream_data_offset = &Impl::acked_stream_data_offset_cb;
  cb.stream_reset = &Impl::stream_reset_cb;
  cb.stream_close = &Impl::stream_close_cb;
  cb.path_validation = &Impl::path_validation_cb;
  cb.recv_stateless_reset = &Impl::recv_stateless_reset_cb;
  if (server) {
    cb.client_initial = nullptr;
    cb.recv_retry = nullptr;
  } else {
    cb.recv_client_initial = nullptr;
  }

  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  settings.initial_ts = ts(now);
  settings.initial_rtt = to_ns(config.initial_rtt);
  settings.max_tx_udp_payload_size = config.max_udp_payload;
  // Send max_udp_payload-sized packets from the start, never larger: the size is chosen to fit
  // TURN + IPv6 in a 1500-byte MTU. PMTUD stays on (its probes never exceed
  // max_tx_udp_payload_size): 0.12.1 asserts when a client returns to its previous path while
  // PMTUD is disabled (conn_recv_non_probing_pkt_on_new_path starts it unconditionally).
  settings.no_tx_udp_payload_size_shaping = 1;
  settings.rand_ctx.native_handle = this;

  ngtcp2_transport_params params;
  ngtcp2_transport_params_default(&params);
  params.initial_max_stream_data_bidi_local = config.max_stream_data;
  params.initial_max_stream_data_bidi_remote = config.max_stream_data;
  params.initial_max_stream_data_uni = config.max_stream_data;
  params.initial_max_data = config.max_data;
  params.initial_max_streams_bidi = config.max_streams_bidi;
  params.initial_max_streams_uni = config.max_streams_uni;
  params.max_idle_timeout = to_ns(config.idle_timeout);
  params.max_ack_delay = to_ns(config.max_ack_delay);
  params.active_connection_id_limit = config.active_connection_id_limit;
  params.max_udp_payload_size = config.max_udp_payload;

  ngtcp2_cid scid;
  std::array<std::byte, kCidLength> scid_bytes;
  random.fill(scid_bytes);
  ngtcp2_cid_init(&scid, reinterpret_cast<const uint8_t*>(scid_bytes.data()), kCidLength);

  ngtcp2_path_storage ps;
  make_synthetic_path(ps, server ? PathEnd::kServer : PathEnd::kClient, path);
  current_path = path;
  used_paths.insert(path);

  int rv;
  // Quirk 1: conn_new draws one random byte and clears the fixed bit (0x40) on every packet
  // when its low bit is set (RFC 9287 greasing). Roam demultiplexes STUN/TURN by first byte, so
  // that draw is answered with zero and the bit stays set. (With CUBIC it is conn_new's only
  // draw.)
  in_conn_new = true;
  if (server) {
    params.original_dcid = client_initial->dcid;
    params.stateless_reset_token_present = 1;
    random.fill(std::as_writable_bytes(std::span(params.stateless_reset_token)));
    rv = ngtcp2_conn_server_new(&conn, &client_initial->scid, &scid, &ps.path,
                                client_initial->version, &cb, &settings, &params, nullptr, this);
  } else {
    ngtcp2_cid dcid;
    std::array<std::byte, kCidLength> dcid_bytes;
    random.fill(dcid_bytes);
    ngtcp2_cid_init(&dcid, reinterpret_cast<const uint8_t*>(dcid_bytes.data()), kCidLength);
    rv = ngtcp2_conn_client_new(&conn, &dcid, &scid, &ps.path, NGTCP2_PROTO_VER_V1, &cb, &settings,
                                &params, nullptr, this);
  }
  in_conn_new = false;
  if (rv != 0) {
    conn = nullptr;
    return unexpected(std::string("QUIC: creating the connection failed: ") + ngtcp2_strerror(rv));
  }
  tls->attach(conn);
  if (config.keep_alive > Duration::zero()) {
    ngtcp2_conn_set_keep_alive_timeout(conn, to_ns(config.keep_alive));
  }
  return {};
}

// --- I/O -----------------------------------------------------------------------------------

bool Connection::Impl::receive(PathId path, ByteSpan datagram, TimePoint now) {
  if (ended || datagram.empty()) return false;
  ngtcp2_path_storage ps;
  if (ngtcp2_conn_is_server(conn)) {
    // A datagram on a PathId the connection is not on is the client migrating (or a late
    // packet); ngtcp2 decides from the packet numbers.
    make_synthetic_path(ps, PathEnd::kServer, path);
  } else {
    // The client takes everything as arriving on its current path: the owner may receive the
    // server's packets over another physical path, and ngtcp2 clients drop packets from paths
    // they do not know.
    const ngtcp2_path* cur = ngtcp2_conn_get_path(conn);
    ngtcp2_path_storage_init(&ps, cur->local.addr, cur->local.addrlen, cur->remote.addr,
                             cur->remote.addrlen, nullptr);
  }
  t_decrypted_packets = 0;
  const int rv = ngtcp2_conn_read_pkt(conn, &ps.path, nullptr,
                                      reinterpret_cast<const uint8_t*>(datagram.data()),
                                      datagram.size(), ts(now));
  const bool authentic = t_decrypted_packets > 0;
  t_decrypted_packets = 0;
  if (authentic) ++counters.datagrams_received;
  if (rv != 0) {
    // Garbage never ends a connection: only errors raised by packets that decrypted (or the
    // unauthenticated signals QUIC defines: stateless reset, version negotiation) do.
    const bool unauthenticated_signal =
        rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_RECV_VERSION_NEGOTIATION;
    if (authentic || unauthenticated_signal || ngtcp2_err_is_fatal(rv)) on_read_error(rv, now);
  }
  track_current_path();
  dispatch();
  return authentic;
}

void Connection::Impl::prepare_pacing(TimePoint now) {
  // Quirk 2: ngtcp2 paces at cwnd / smoothed_rtt, and after a migration (or before the first
  // sample) smoothed_rtt is initial_rtt, which spaces packets far apart (a 270 ms stall seen
  // after migrations; a 22 ms loopback handshake instead of 1 ms). So pacing stays off until
  // the path has an RTT sample. ngtcp2 accumulates the bytes written meanwhile and would charge
  // them all to the first paced packet; that debt is charged at a time long past and the
  // resulting deadline, already expired, is cancelled by handle_expiry.
  ngtcp2_conn_stat cstat;
  ngtcp2_conn_get_conn_stat(conn, &cstat);
  const bool sampled = cstat.first_rtt_sample_ts != UINT64_MAX;
  if (!sampled) {
    paced = false;
    return;
  }
  if (paced) return;
  paced = true;
  ngtcp2_conn_update_pkt_tx_time(conn, 0);
  if (int rv = ngtcp2_conn_handle_expiry(conn, ts(now)); rv != 0) on_expiry_error(rv, now);
}

ngtcp2_ssize Connection::Impl::write_packet(std::span<std::uint8_t> buf, ngtcp2_path* path,
                                            ngtcp2_tstamp now) {
  // One packet per call, no NGTCP2_WRITE_STREAM_FLAG_MORE: streams take turns packet by packet.
  if (!streams.empty()) {
    auto it = streams.lower_bound(next_stream_turn);
    for (std::size_t tried = 0; tried < streams.size(); ++tried, ++it) {
      if (it == streams.end()) it = streams.begin();
      const StreamId id = it->first;
      StreamState& s = it->second;
      if (!s.wants_send()) continue;
      std::array<ByteSpan, kMaxStreamPieces> pieces;
      const std::size_t count = s.buffer.unsent(pieces);
      std::array<ngtcp2_vec, kMaxStreamPieces> vecs;
      std::uint64_t offered = 0;
      for (std::size_t i = 0; i < count; ++i) {
        vecs[i].base = reinterpret_cast<uint8_t*>(const_cast<std::byte*>(pieces[i].data()));
        vecs[i].len = pieces[i].size();
        offered += pieces[i].size();
      }
      const bool all = offered == s.buffer.unsent_size();
      const uint32_t flags =
          s.fin_requested && all ? NGTCP2_WRITE_STREAM_FLAG_FIN : NGTCP2_WRITE_STREAM_FLAG_NONE;
      ngtcp2_ssize accepted = -1;
      const ngtcp2_ssize n =
          ngtcp2_conn_writev_stream(conn, path, nullptr, buf.data(), buf.size(), &accepted, flags,
                                    id, vecs.data(), count, now);
      if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) continue;  // flow control: another stream's turn
      if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
        s.write_closed = true;  // the peer sent STOP_SENDING, or the stream is gone
        continue;
      }
      if (n < 0) return n;
      if (accepted >= 0) {
        s.buffer.mark_sent(static_cast<std::uint64_t>(accepted));
        if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) &&
            static_cast<std::uint64_t>(accepted) == offered) {
          s.fin_sent = true;
        }
        next_stream_turn = id + 1;
      }
      // 0: congestion window or pacing; no other stream could send now either.
      return n;
    }
  }
  return ngtcp2_conn_writev_stream(conn, path, nullptr, buf.data(), buf.size(), nullptr,
                                   NGTCP2_WRITE_STREAM_FLAG_NONE, -1, nullptr, 0, now);
}

std::optional<Transmit> Connection::Impl::poll_transmit(TimePoint now) {
  if (ended) {
    if (!final_packet) return std::nullopt;
    std::optional<Transmit> out = std::move(final_packet);
    final_packet.reset();
    ++counters.datagrams_sent;
    post_closed(final_reason);
    dispatch();
    return out;
  }
  prepare_pacing(now);
  if (ended) return poll_transmit(now);

  Bytes buf(config.max_udp_payload);
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_conn_stat before;
  ngtcp2_conn_get_conn_stat(conn, &before);
  const ngtcp2_tstamp t = ts(now);
  const ngtcp2_ssize n =
      write_packet({reinterpret_cast<std::uint8_t*>(buf.data()), buf.size()}, &ps.path, t);
  if (n < 0) {
    end_with_liberr(static_cast<int>(n), now);
    return poll_transmit(now);
  }
  if (paced) ngtcp2_conn_update_pkt_tx_time(conn, t);
  std::optional<Transmit> out;
  if (n > 0) {
    ngtcp2_conn_stat after;
    ngtcp2_conn_get_conn_stat(conn, &after);
    buf.resize(static_cast<std::size_t>(n));
    out = Transmit{.path = path_id_of(ps.path),
                   .data = std::move(buf),
                   .ack_eliciting = after.bytes_in_flight > before.bytes_in_flight};
    ++counters.datagrams_sent;
  }
  track_current_path();
  dispatch();
  return out;
}

void Connection::Impl::handle_timeout(TimePoint now) {
  if (ended) return;
  if (int rv = ngtcp2_conn_handle_expiry(conn, ts(now)); rv != 0) on_expiry_error(rv, now);
  track_current_path();
  dispatch();
}

// --- ending --------------------------------------------------------------------------------

void Connection::Impl::end(std::string reason, const ngtcp2_connection_close_error* ccerr,
                           TimePoint now) {
  if (ended) return;
  ended = true;
  if (ccerr && !ngtcp2_conn_is_in_closing_period(conn) &&
      !ngtcp2_conn_is_in_draining_period(conn)) {
    Bytes buf(config.max_udp_payload);
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    const ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
        conn, &ps.path, nullptr, reinterpret_cast<uint8_t*>(buf.data()), buf.size(), ccerr,
        ts(now));
    if (n > 0) {
      buf.resize(static_cast<std::size_t>(n));
      final_packet = Transmit{.path = path_id_of(ps.path), .data = std::move(buf)};
      final_reason = std::move(reason);
      final_at = now;
      return;
    }
  }
  post_closed(std::move(reason));
}

void Connection::Impl::end_with_liberr(int liberr, TimePoint now) {
  if (liberr == NGTCP2_ERR_IDLE_CLOSE) return end("idle timeout", nullptr, now);
  if (liberr == NGTCP2_ERR_DRAINING || liberr == NGTCP2_ERR_CLOSING) {
    return end("connection closed", nullptr, now);
  }
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, nullptr, 0);
  end(std::string("QUIC error: ") + ngtcp2_strerror(liberr), &ccerr, now);
}

void Connection::Impl::on_read_error(int rv, TimePoint now) {
  switch (rv) {
    case NGTCP2_ERR_DRAINING: {
      if (stateless_reset) return end("peer reset the connection (stateless reset)", nullptr, now);
      ngtcp2_connection_close_error e;
      ngtcp2_conn_get_connection_close_error(conn, &e);
      std::string reason = "peer closed: ";
      if (e.reason && e.reasonlen) {
        reason.append(reinterpret_cast<const char*>(e.reason), e.reasonlen);
        reason += " (" + describe_close_error(e) + ")";
      } else {
        reason += describe_close_error(e);
      }
      return end(std::move(reason), nullptr, now);
    }
    case NGTCP2_ERR_CRYPTO: {
      // The TLS stack failed the handshake: this end rejected the peer (TlsSession recorded
      // why) or GnuTLS refused something. The peer learns it from the alert and the phrase.
      uint8_t alert = ngtcp2_conn_get_tls_alert(conn);
      if (alert == 0) alert = GNUTLS_A_HANDSHAKE_FAILURE;
      std::string reason = tls->rejection();
      std::string phrase = "TLS handshake failed";
      if (reason.starts_with("peer certificate fingerprint mismatch")) {
        phrase = "certificate fingerprint mismatch";
      } else if (reason.find("ALPN") != std::string::npos) {
        phrase = std::string("ALPN \"") + kAlpn + "\" required";
      } else if (!reason.empty()) {
        phrase = "certificate required";
      } else {
        const char* name = gnutls_alert_get_name(static_cast<gnutls_alert_description_t>(alert));
        reason = "TLS handshake failed (alert " + std::to_string(alert) +
                 (name ? std::string(": ") + name : std::string()) + ")";
      }
      ngtcp2_connection_close_error ccerr;
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &ccerr, alert, reinterpret_cast<const uint8_t*>(phrase.data()), phrase.size());
      return end(std::move(reason), &ccerr, now);
    }
    case NGTCP2_ERR_DROP_CONN:
    case NGTCP2_ERR_RETRY:
      return end("connection dropped (invalid client packet)", nullptr, now);
    case NGTCP2_ERR_RECV_VERSION_NEGOTIATION:
      return end("peer does not speak QUIC version 1 (version negotiation)", nullptr, now);
    case NGTCP2_ERR_IDLE_CLOSE:
      return end("idle timeout", nullptr, now);
    default:
      return end_with_liberr(rv, now);
  }
}

void Connection::Impl::on_expiry_error(int rv, TimePoint now) {
  switch (rv) {
    case NGTCP2_ERR_IDLE_CLOSE:
      return end("idle timeout", nullptr, now);
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
      return end("handshake timed out (no answer from the peer)", nullptr, now);
    default:
      return end_with_liberr(rv, now);
  }
}

// --- events --------------------------------------------------------------------------------

void Connection::Impl::track_current_path() {
  if (ended) return;
  const PathId now_on = path_id_of(*ngtcp2_conn_get_path(conn));
  if (now_on == current_path) return;
  current_path = now_on;
  if (ngtcp2_conn_is_server(conn)) {
    ++counters.migrations;
    post(Event::Kind::kPathChanged).path = now_on;
  }
}

void Connection::Impl::dispatch() {
  for (StreamId id : closed_streams) {
    if (auto it = streams.find(id); it != streams.end() && it->second.closed) streams.erase(it);
  }
  closed_streams.clear();
  for (StreamId id : acked_streams)
    post(Event::Kind::kStreamAcked).stream = id;
  acked_streams.clear();
  // A handler that calls back into the connection queues more events; the outer loop delivers
  // them, in order.
  if (dispatching) return;
  dispatching = true;
  for (std::size_t i = 0; i < events.size() && !closed_delivered; ++i) {
    Event ev = std::move(events[i]);
    switch (ev.kind) {
      case Event::Kind::kHandshakeDone:
        if (handlers.handshake_completed) handlers.handshake_completed();
        break;
      case Event::Kind::kHandshakeConfirmed:
        if (handlers.handshake_confirmed) handlers.handshake_confirmed();
        break;
      case Event::Kind::kStreamOpened:
        if (handlers.stream_opened) handlers.stream_opened(ev.stream);
        break;
      case Event::Kind::kStreamData:
        if (handlers.stream_data) handlers.stream_data(ev.stream, ev.data, ev.flag);
        // Consumed: return the flow-control credit (RFC 9000 §4.2).
        if (!ended && !ev.data.empty()) {
          ngtcp2_conn_extend_max_stream_offset(conn, ev.stream, ev.data.size());
          ngtcp2_conn_extend_max_offset(conn, ev.data.size());
        }
        break;
      case Event::Kind::kStreamReset:
        if (handlers.stream_reset) handlers.stream_reset(ev.stream, ev.code);
        break;
      case Event::Kind::kStreamAcked:
        if (handlers.stream_acked) handlers.stream_acked(ev.stream);
        break;
      case Event::Kind::kPathChanged:
        if (handlers.path_changed) handlers.path_changed(ev.path);
        break;
      case Event::Kind::kPathValidated:
        if (handlers.path_validated) handlers.path_validated(ev.path, ev.flag);
        break;
      case Event::Kind::kClosed:
        closed_delivered = true;
        if (handlers.closed) handlers.closed(ev.reason);
        break;
    }
    for (StreamId id : acked_streams)
      post(Event::Kind::kStreamAcked).stream = id;
    acked_streams.clear();
  }
  events.clear();
  dispatching = false;
}

// --- callbacks -----------------------------------------------------------------------------

void Connection::Impl::rand_cb(uint8_t* dest, size_t len, const ngtcp2_rand_ctx* ctx) {
  auto* self = static_cast<Impl*>(ctx->native_handle);
  if (self->in_conn_new) {
    std::memset(dest, 0, len);  // quirk 1: keep the fixed bit
    return;
  }
  self->random.fill({reinterpret_cast<std::byte*>(dest), len});
}

int Connection::Impl::decrypt_cb(uint8_t* dest, const ngtcp2_crypto_aead* aead,
                                 const ngtcp2_crypto_aead_ctx* aead_ctx, const uint8_t* ciphertext,
                                 size_t ciphertextlen, const uint8_t* nonce, size_t noncelen,
                                 const uint8_t* aad, size_t aadlen) {
  const int rv = ngtcp2_crypto_decrypt_cb(dest, aead, aead_ctx, ciphertext, ciphertextlen, nonce,
                                          noncelen, aad, aadlen);
  if (rv == 0) ++t_decrypted_packets;
  return rv;
}

int Connection::Impl::get_new_connection_id_cb(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token,
                                               size_t cidlen, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  std::array<std::byte, NGTCP2_MAX_CIDLEN> bytes{};
  cidlen = std::min<size_t>(cidlen, bytes.size());
  self->random.fill({bytes.data(), cidlen});
  ngtcp2_cid_init(cid, reinterpret_cast<const uint8_t*>(bytes.data()), cidlen);
  self->random.fill({reinterpret_cast<std::byte*>(token), NGTCP2_STATELESS_RESET_TOKENLEN});
  return 0;
}

int Connection::Impl::get_path_challenge_data_cb(ngtcp2_conn*, uint8_t* data, void* user_data) {
  static_cast<Impl*>(user_data)->random.fill(
      {reinterpret_cast<std::byte*>(data), NGTCP2_PATH_CHALLENGE_DATALEN});
  return 0;
}

int Connection::Impl::handshake_completed_cb(ngtcp2_conn* conn, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  // 1-RTT keys are ready on both sides: application data may flow (the client need not wait
  // another half round trip for HANDSHAKE_DONE). The server's handshake is also confirmed now
  // (RFC 9001 §4.1.2); the client's when HANDSHAKE_DONE arrives, which gates migration.
  self->handshake_done = true;
  self->post(Event::Kind::kHandshakeDone);
  if (ngtcp2_conn_is_server(conn)) {
    self->handshake_confirmed = true;
    self->post(Event::Kind::kHandshakeConfirmed);
  }
  return 0;
}

int Connection::Impl::handshake_confirmed_cb(ngtcp2_conn* conn, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  if (!ngtcp2_conn_is_server(conn) && !self->handshake_confirmed) {
    self->handshake_confirmed = true;
    self->post(Event::Kind::kHandshakeConfirmed);
  }
  return 0;
}

int Connection::Impl::stream_open_cb(ngtcp2_conn*, int64_t stream_id, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  StreamState& s = self->ensure_stream(stream_id);
  if (!s.announced) {
    s.announced = true;
    self->post(Event::Kind::kStreamOpened).stream = stream_id;
  }
  return 0;
}

int Connection::Impl::recv_stream_data_cb(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id,
                                          uint64_t, const uint8_t* data, size_t datalen,
                                          void* user_data, void*) {
  auto* self = static_cast<Impl*>(user_data);
  if (!ngtcp2_conn_is_local_stream(conn, stream_id)) {
    StreamState& s = self->ensure_stream(stream_id);
    if (!s.announced) {
      s.announced = true;
      self->post(Event::Kind::kStreamOpened).stream = stream_id;
    }
  }
  const auto* p = reinterpret_cast<const std::byte*>(data);
  Event& e = self->post(Event::Kind::kStreamData);
  e.stream = stream_id;
  e.data.assign(p, p + datalen);
  e.flag = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
  return 0;
}

int Connection::Impl::acked_stream_data_offset_cb(ngtcp2_conn*, int64_t stream_id, uint64_t offset,
                                                  uint64_t datalen, void* user_data, void*) {
  auto* self = static_cast<Impl*>(user_data);
  if (StreamState* s = self->stream(stream_id)) {
    s->buffer.acknowledge_to(offset + datalen);
    if (datalen > 0) self->acked_streams.insert(stream_id);
  }
  return 0;
}

int Connection::Impl::stream_reset_cb(ngtcp2_conn*, int64_t stream_id, uint64_t,
                                      uint64_t app_error_code, void* user_data, void*) {
  auto* self = static_cast<Impl*>(user_data);
  StreamState& s = self->ensure_stream(stream_id);
  if (!s.reset_reported) {
    s.reset_reported = true;
    Event& e = self->post(Event::Kind::kStreamReset);
    e.stream = stream_id;
    e.code = app_error_code;
  }
  return 0;
}

int Connection::Impl::stream_close_cb(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id,
                                      uint64_t app_error_code, void* user_data, void*) {
  auto* self = static_cast<Impl*>(user_data);
  StreamState& s = self->ensure_stream(stream_id);
  // An error code nobody reported yet: the peer's STOP_SENDING (ngtcp2 0.12.1 has no callback
  // for it). Resets from either end were reported already.
  if ((flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) && !s.reset_reported) {
    s.reset_reported = true;
    Event& e = self->post(Event::Kind::kStreamReset);
    e.stream = stream_id;
    e.code = app_error_code;
  }
  // ngtcp2 no longer refers to the stream's data.
  s.closed = true;
  self->closed_streams.push_back(stream_id);
  if (!ngtcp2_conn_is_local_stream(conn, stream_id)) {
    // Let the peer open another one in its place (RFC 9000 §4.6: MAX_STREAMS).
    if (ngtcp2_is_bidi_stream(stream_id)) {
      ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    } else {
      ngtcp2_conn_extend_max_streams_uni(conn, 1);
    }
  }
  return 0;
}

int Connection::Impl::path_validation_cb(ngtcp2_conn*, uint32_t, const ngtcp2_path* path,
                                         ngtcp2_path_validation_result res, void* user_data) {
  auto* self = static_cast<Impl*>(user_data);
  Event& e = self->post(Event::Kind::kPathValidated);
  e.path = self->path_id_of(*path);
  e.flag = res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS;
  return 0;
}

int Connection::Impl::recv_stateless_reset_cb(ngtcp2_conn*, const ngtcp2_pkt_stateless_reset*,
                                              void* user_data) {
  static_cast<Impl*>(user_data)->stateless_reset = true;
  return 0;
}

// --- Connection ----------------------------------------------------------------------------

expected<std::unique_ptr<Connection>, std::string> Connection::connect(
    const ConnectionConfig& config, std::shared_ptr<const TlsIdentity> identity, PathId path,
    RandomSource& random, TimePoint now, ConnectionHandlers handlers) {
  if (!config.is_client) return unexpected(std::string("QUIC: connect() needs is_client = true"));
  if (!identity) return unexpected(std::string("QUIC: a TLS identity is required"));
  if (auto error = Impl::check_config(config); !error.empty()) return unexpected(error);
  std::unique_ptr<Connection> c(new Connection());
  c->impl_ = std::make_unique<Impl>(config, std::move(identity), random, now, std::move(handlers));
  if (auto ok = c->impl_->create(path, nullptr, now); !ok) return unexpected(ok.error());
  return c;
}

expected<std::unique_ptr<Connection>, std::string> Connection::accept(
    const ConnectionConfig& config, std::shared_ptr<const TlsIdentity> identity, PathId path,
    ByteSpan first_datagram, RandomSource& random, TimePoint now, ConnectionHandlers handlers) {
  if (config.is_client) return unexpected(std::string("QUIC: accept() needs is_client = false"));
  if (!identity) return unexpected(std::string("QUIC: a TLS identity is required"));
  if (auto error = Impl::check_config(config); !error.empty()) return unexpected(error);
  ngtcp2_pkt_hd hd;
  const auto* data = reinterpret_cast<const uint8_t*>(first_datagram.data());
  if (first_datagram.empty() || ngtcp2_accept(&hd, data, first_datagram.size()) != 0) {
    return unexpected(std::string("QUIC: not a client Initial packet"));
  }
  if (!ngtcp2_is_supported_version(hd.version) || ngtcp2_is_reserved_version(hd.version)) {
    return unexpected("QUIC: unsupported version " + hex_code(hd.version));
  }
  std::unique_ptr<Connection> c(new Connection());
  // The handlers join once the Initial is accepted: a rejected datagram must not reach them.
  c->impl_ = std::make_unique<Impl>(config, std::move(identity), random, now, ConnectionHandlers{});
  if (auto ok = c->impl_->create(path, &hd, now); !ok) return unexpected(ok.error());
  if (!c->impl_->receive(path, first_datagram, now) || c->impl_->ended) {
    return unexpected(std::string("QUIC: the client Initial did not decrypt"));
  }
  c->impl_->handlers = std::move(handlers);
  return c;
}

Connection::~Connection() = default;

bool Connection::receive(PathId path, ByteSpan datagram, TimePoint now) {
  return impl_->receive(path, datagram, now);
}

std::optional<Transmit> Connection::poll_transmit(TimePoint now) {
  return impl_->poll_transmit(now);
}

TimePoint Connection::next_deadline() const {
  if (impl_->ended) return impl_->final_packet ? impl_->final_at : kNever;
  const ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(impl_->conn);
  if (expiry == UINT64_MAX) return kNever;
  // One nanosecond late: ngtcp2 0.12.1 handles some timers only strictly after their expiry
  // (retired connection IDs: `retired_ts + pto < ts`), so a timer fired exactly on time would
  // come back due at once, forever, under a clock that does not move on by itself.
  return impl_->time_of(expiry + 1);
}

void Connection::handle_timeout(TimePoint now) {
  impl_->handle_timeout(now);
}

expected<StreamId, std::string> Connection::open_stream() {
  Impl& d = *impl_;
  if (d.ended) return unexpected(std::string("connection closed"));
  if (!ngtcp2_conn_get_handshake_completed(d.conn)) {
    return unexpected(std::string("not connected yet (handshake in progress)"));
  }
  int64_t id = -1;
  const int rv = ngtcp2_conn_open_bidi_stream(d.conn, &id, nullptr);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
    return unexpected(
        std::string("the peer's stream limit is reached (max_streams_bidi); wait "
                    "for a stream to close"));
  }
  if (rv != 0) return unexpected(std::string("opening a stream failed: ") + ngtcp2_strerror(rv));
  d.ensure_stream(id).announced = true;
  return id;
}

std::size_t Connection::write(StreamId stream, ByteSpan data) {
  Impl& d = *impl_;
  if (d.ended) return 0;
  StreamState* s = d.stream(stream);
  if (s == nullptr || s->write_closed || s->fin_requested) return 0;
  return s->buffer.append(data);
}

void Connection::finish(StreamId stream) {
  Impl& d = *impl_;
  if (d.ended) return;
  if (StreamState* s = d.stream(stream); s && !s->write_closed) s->fin_requested = true;
}

void Connection::reset(StreamId stream, std::uint64_t app_error) {
  Impl& d = *impl_;
  if (d.ended) return;
  StreamState* s = d.stream(stream);
  if (s == nullptr) return;
  s->write_closed = true;
  s->reset_reported = true;  // the owner knows; a reset crossing ours is not reported back
  ngtcp2_conn_shutdown_stream(d.conn, stream, app_error);
  d.dispatch();
}

std::size_t Connection::unacked(StreamId stream) const {
  const StreamState* s = impl_->stream(stream);
  if (impl_->ended || s == nullptr || s->write_closed) return 0;
  return s->buffer.unacked();
}

expected<void, std::string> Connection::migrate(PathId path, TimePoint now) {
  Impl& d = *impl_;
  if (ngtcp2_conn_is_server(d.conn)) {
    return unexpected(std::string("only the client migrates (RFC 9000 §9)"));
  }
  if (d.ended) return unexpected(std::string("connection closed"));
  if (d.used_paths.contains(path)) {
    return unexpected("path " + std::to_string(path) +
                      " was used before: give every switch a fresh PathId (ngtcp2 0.12.1 cannot "
                      "move back to a recent path)");
  }
  ngtcp2_path_storage ps;
  make_synthetic_path(ps, PathEnd::kClient, path);
  const int rv = ngtcp2_conn_initiate_immediate_migration(d.conn, &ps.path, d.ts(now));
  switch (rv) {
    case 0:
      break;
    case NGTCP2_ERR_INVALID_STATE: {
      const ngtcp2_transport_params* peer = ngtcp2_conn_get_remote_transport_params(d.conn);
      if (d.handshake_done && peer && peer->disable_active_migration) {
        return unexpected(std::string("the peer disabled active migration"));
      }
      return unexpected(std::string("cannot migrate before the handshake is confirmed"));
    }
    case NGTCP2_ERR_CONN_ID_BLOCKED:
      return unexpected(std::string(
          "no spare connection ID from the peer (active_connection_id_limit); retry once the "
          "peer issued new ones (about one RTT after the previous migration)"));
    case NGTCP2_ERR_INVALID_ARGUMENT:
      return unexpected("path " + std::to_string(path) + " is the current path");
    default:
      return unexpected(std::string("migration failed: ") + ngtcp2_strerror(rv));
  }
  d.used_paths.insert(path);
  d.current_path = path;
  ++d.counters.migrations;
  d.dispatch();
  return {};
}

PathId Connection::current_path() const {
  return impl_->current_path;
}

void Connection::close(std::uint64_t app_error, const std::string& reason, TimePoint now) {
  Impl& d = *impl_;
  if (d.ended) return;
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_set_application_error(
      &ccerr, app_error, reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  d.end("closed locally: " + reason, &ccerr, now);
  d.dispatch();
}

bool Connection::handshake_completed() const {
  return impl_->handshake_done;
}

bool Connection::handshake_confirmed() const {
  return impl_->handshake_confirmed;
}

bool Connection::is_closed() const {
  return impl_->ended;
}

bool Connection::is_client() const {
  return !ngtcp2_conn_is_server(impl_->conn);
}

ConnectionStats Connection::stats() const {
  ngtcp2_conn_stat cstat;
  ngtcp2_conn_get_conn_stat(impl_->conn, &cstat);
  ConnectionStats s = impl_->counters;
  s.smoothed_rtt = from_ns(cstat.smoothed_rtt);
  s.min_rtt = from_ns(cstat.min_rtt);
  s.latest_rtt = from_ns(cstat.latest_rtt);
  s.cwnd = cstat.cwnd;
  s.bytes_in_flight = cstat.bytes_in_flight;
  s.pto_count = cstat.pto_count;
  return s;
}

}  // namespace roam::agent::quic
