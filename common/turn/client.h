// TURN client (RFC 8656 over UDP) as a sans-I/O state machine for one allocation on one local
// socket: the owner feeds it datagrams from the TURN server and timer expiries, and sends what
// poll_transmit() returns to the server. Virtual time: nothing here reads a clock.
//
// Flow: [prewarm()] → allocate() → Allocated → create_permission()/bind_channel() → wrap()
// data for peers; datagrams from the server go to handle_datagram(), which returns relayed peer
// data directly (no copy) and queues control outcomes as events. The allocation, permissions
// and channels are refreshed automatically before they expire; deallocate() releases it.
//
// Long-term credential flow (RFC 8489 §9.2): the first request is sent without credentials;
// the 401 carries REALM and NONCE; the request is resent with USERNAME, REALM, NONCE and
// MESSAGE-INTEGRITY. prewarm() does the first half early so allocate() costs one round trip
// (notes/coturn-reservations.md). 438 Stale Nonce updates the nonce and retries.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/stun/message.h"
#include "common/stun/retransmission.h"
#include "common/turn/failure.h"
#include "common/util/bytes.h"
#include "common/util/random.h"
#include "common/util/socket_address.h"
#include "common/util/time.h"

namespace roam::turn {

// RFC 8656 §3.2 / §7.2: default allocation lifetime 10 min (the server may shorten it).
inline constexpr std::uint32_t kDefaultLifetimeSeconds = 600;
// RFC 8656 §9: permissions last 300 s; §12: channel bindings last 600 s. We refresh early.
inline constexpr Duration kPermissionLifetime = seconds(300);
inline constexpr Duration kPermissionRefresh = seconds(240);
inline constexpr Duration kChannelLifetime = seconds(600);
inline constexpr Duration kChannelRefresh = seconds(540);
// RFC 8489 §9.2.5 allows retrying after 438; bound the retries so a broken server cannot loop.
inline constexpr int kMaxStaleNonceRetries = 3;
// Bounds on per-allocation state (each is a server-side resource as well).
inline constexpr std::size_t kMaxPermissions = 64;
inline constexpr std::size_t kMaxChannels = kMaxPermissions;
inline constexpr std::size_t kMaxPendingTransactions = 32;
inline constexpr std::size_t kMaxQueuedEvents = 256;
inline constexpr std::size_t kMaxQueuedTransmits = 256;

struct Credentials {
  std::string username;  // REST: "<expiry>:<peer id>"
  std::string password;  // REST: base64(HMAC-SHA1(secret, username))
};

struct ClientConfig {
  SocketAddress server;
  Credentials credentials;
  std::string software = "roam";
  stun::RetransmissionPolicy retransmission;
  std::uint32_t lifetime_seconds = kDefaultLifetimeSeconds;
  // Refresh the allocation this long before it expires (capped at half the lifetime).
  Duration refresh_margin = seconds(60);
};

struct AllocateOptions {
  // RFC 5766 §14.9: redeem a reservation made by an earlier EVEN-PORT(R=1) allocation.
  std::optional<std::uint64_t> reservation_token{};
  // RFC 5766 §14.6 / RFC 8656 §18.7: ask for an even port; `reserve_next` keeps port+1 and
  // returns a RESERVATION-TOKEN for it. Mutually exclusive with reservation_token.
  bool even_port = false;
  bool reserve_next = false;
  // RFC 8656 §18.6: relayed address family. Left unset with a reservation token (coturn
  // answers 400 to the combination: notes/coturn-reservations.md).
  std::optional<AddressFamily> family{};
};

// Outcomes, in the order they happened.
struct NoncePrewarmed {};
struct Allocated {
  SocketAddress relayed;
  SocketAddress mapped;  // XOR-MAPPED-ADDRESS: our server-reflexive address as the server sees it
  std::optional<std::uint64_t> reservation_token;
  Duration lifetime{};
  int round_trips = 0;  // request/response exchanges this allocation took (1 when pre-warmed)
};
struct AllocationFailed {
  Failure failure;
  int code = 0;  // STUN error code, 0 for timeouts/local failures
  std::string reason;
};
struct Refreshed {
  Duration lifetime{};
};
// The allocation is gone (refresh failed, or the server forgot it): start again.
struct AllocationLost {
  Failure failure;
  int code = 0;
  std::string reason;
};
struct Deallocated {
  bool confirmed = true;  // false: the server did not answer; it forgets it at lifetime's end
};
struct PermissionCreated {
  IpAddress peer;
};
struct PermissionFailed {
  IpAddress peer;
  Failure failure;
  int code = 0;
  std::string reason;
};
struct ChannelBound {
  SocketAddress peer;
  std::uint16_t channel;
};
struct ChannelBindFailed {
  SocketAddress peer;
  std::uint16_t channel;
  Failure failure;
  int code = 0;
  std::string reason;
};
using Event =
    std::variant<NoncePrewarmed, Allocated, AllocationFailed, Refreshed, AllocationLost,
                 Deallocated, PermissionCreated, PermissionFailed, ChannelBound, ChannelBindFailed>;

// Peer data relayed by the server (Data indication or ChannelData); `data` points into the
// datagram given to handle_datagram().
struct PeerData {
  SocketAddress peer;
  ByteSpan data;
  bool via_channel = false;
};

enum class State { kIdle, kPrewarming, kAllocating, kAllocated, kDeallocating, kClosed, kFailed };

class Client {
 public:
  Client(ClientConfig config, RandomSource& random);

  // Sends an unauthenticated Allocate to learn REALM and NONCE (emits NoncePrewarmed). Only in
  // kIdle. A later allocate() then takes one round trip.
  void prewarm(TimePoint now);
  // Starts the allocation. In kIdle or kPrewarming (waits for the nonce, then goes on).
  void allocate(TimePoint now, const AllocateOptions& options);
  // Installs (and keeps refreshing) a permission for `peer` (RFC 8656 §9). Needs kAllocated.
  void create_permission(TimePoint now, const IpAddress& peer);
  // Binds a channel to `peer` (RFC 8656 §12), which also installs its permission. Data can be
  // sent on the channel at once (pipelined after the Allocate success: coturn relays it, see
  // notes/coturn-reservations.md). Returns the channel number or the failure.
  expected<std::uint16_t, Failure> bind_channel(TimePoint now, const SocketAddress& peer);
  // Refreshes the allocation now (it is also refreshed automatically before it expires):
  // emits Refreshed, or AllocationLost when the server no longer has it (437) — which is how
  // a restarted server shows. No-op unless kAllocated or while a refresh is in flight.
  void refresh(TimePoint now);
  // Releases the allocation (Refresh with LIFETIME 0, RFC 8656 §7); emits Deallocated.
  void deallocate(TimePoint now);
  // New credentials (e.g. REST ones about to expire); used from the next request on.
  void set_credentials(Credentials credentials);

  // Wraps `data` for `peer`: ChannelData if a channel is bound to it, else a Send indication
  // (RFC 8656 §11). The result goes to the TURN server. Needs kAllocated.
  expected<Bytes, Failure> wrap(const SocketAddress& peer, ByteSpan data);

  // A datagram that came from the TURN server's address. Returns relayed peer data, if it was
  // data; responses advance the state machine (see poll_event()). Anything malformed, unknown
  // or unauthenticated is dropped and counted in dropped_datagrams().
  std::optional<PeerData> handle_datagram(TimePoint now, ByteSpan datagram);

  // The next datagram to send to the TURN server, if any.
  std::optional<Bytes> poll_transmit();
  bool has_transmit() const { return !transmits_.empty(); }
  std::optional<Event> poll_event();
  // When handle_timeout() must be called next (kNever if nothing is scheduled).
  TimePoint next_deadline() const;
  void handle_timeout(TimePoint now);

  State state() const { return state_; }
  const ClientConfig& config() const { return config_; }
  std::optional<SocketAddress> relayed_address() const { return relayed_; }
  std::optional<SocketAddress> mapped_address() const { return mapped_; }
  std::optional<std::uint16_t> channel_for(const SocketAddress& peer) const;
  // The REALM the server announced in its challenge (empty before it).
  const std::string& realm() const { return realm_; }
  std::uint64_t dropped_datagrams() const { return dropped_; }

 private:
  enum class Kind { kPrewarm, kAllocate, kRefresh, kDeallocate, kPermission, kChannelBind };
  struct Transaction {
    Kind kind;
    Bytes request{};
    stun::RetransmissionSchedule schedule{};
    bool authenticated = false;
    int stale_nonce_retries = 0;
    std::optional<IpAddress> peer_ip{};   // kPermission
    std::optional<SocketAddress> peer{};  // kChannelBind
    std::uint16_t channel = 0;            // kChannelBind
    std::uint32_t lifetime = 0;           // kRefresh / kDeallocate
  };
  struct Permission {
    TimePoint refresh_at = kNever;
    bool installed = false;
    bool pending = false;
  };
  struct Channel {
    SocketAddress peer;
    TimePoint refresh_at = kNever;
    bool bound = false;
    bool pending = false;
  };

  static stun::Method method_for(Kind kind);
  stun::TransactionId new_transaction_id();
  // Builds and sends a request of `kind`; authenticated when REALM/NONCE are known.
  void start(TimePoint now, Transaction t);
  Bytes build(const Transaction& t, const stun::TransactionId& id) const;
  void send_allocate(TimePoint now);
  void send_permission(TimePoint now, const IpAddress& peer);
  void send_channel_bind(TimePoint now, const SocketAddress& peer, std::uint16_t channel);
  void send_refresh(TimePoint now, std::uint32_t lifetime, Kind kind);
  void on_response(TimePoint now, const stun::Message& response);
  void on_success(TimePoint now, Transaction& t, const stun::Message& response);
  void on_error(TimePoint now, Transaction& t, int code, const std::string& reason,
                const stun::Message& response);
  void on_failure(Transaction& t, Failure failure, int code, const std::string& reason);
  std::optional<PeerData> on_data_indication(const stun::Message& m);
  void emit(Event e);
  void transmit(Bytes b);
  void schedule_refresh(TimePoint now, Duration lifetime);
  bool learn_realm_and_nonce(const stun::Message& m);
  void fail_allocation(Failure failure, int code, const std::string& reason);

  ClientConfig config_;
  RandomSource& random_;
  State state_ = State::kIdle;
  std::optional<AllocateOptions> pending_allocate_;  // allocate() during prewarm
  std::string realm_;
  std::string nonce_;
  std::optional<stun::IntegrityKey> key_;
  std::optional<SocketAddress> relayed_;
  std::optional<SocketAddress> mapped_;
  TimePoint allocation_refresh_at_ = kNever;
  int allocate_round_trips_ = 0;
  std::map<stun::TransactionId, Transaction> transactions_;
  std::map<IpAddress, Permission> permissions_;
  std::map<std::uint16_t, Channel> channels_;
  std::map<SocketAddress, std::uint16_t> channel_by_peer_;
  std::uint16_t next_channel_ = 0x4000;  // RFC 8656 §12: 0x4000–0x4FFF
  std::deque<Bytes> transmits_;
  std::deque<Event> events_;
  std::uint64_t dropped_ = 0;
};

}  // namespace roam::turn
