#include "common/turn/client.h"

#include <algorithm>

#include "common/stun/channel_data.h"

namespace roam::turn {
namespace {

using stun::Class;
using stun::Method;
namespace attr = stun::attr;

// Largest application payload one ChannelData message can carry (RFC 8656 §12.4: 16-bit length).
constexpr std::size_t kMaxPayload = 65535;

}  // namespace

Client::Client(ClientConfig config, RandomSource& random)
    : config_(std::move(config)), random_(random) {}

stun::TransactionId Client::new_transaction_id() {
  stun::TransactionId id;
  random_.fill(id);
  return id;
}

void Client::prewarm(TimePoint now) {
  if (state_ != State::kIdle) return;
  state_ = State::kPrewarming;
  start(now, Transaction{.kind = Kind::kPrewarm});
}

void Client::allocate(TimePoint now, const AllocateOptions& options) {
  if (state_ == State::kPrewarming) {
    pending_allocate_ = options;
    return;
  }
  if (state_ != State::kIdle) return;
  pending_allocate_ = options;
  state_ = State::kAllocating;
  allocate_round_trips_ = 0;
  send_allocate(now);
}

void Client::send_allocate(TimePoint now) {
  ++allocate_round_trips_;
  start(now, Transaction{.kind = Kind::kAllocate});
}

void Client::create_permission(TimePoint now, const IpAddress& peer) {
  if (state_ != State::kAllocated) {
    emit(PermissionFailed{peer, Failure::kNotAllocated, 0, {}});
    return;
  }
  auto it = permissions_.find(peer);
  if (it != permissions_.end()) return;  // installed or pending: refreshed automatically
  if (permissions_.size() >= kMaxPermissions) {
    emit(PermissionFailed{peer, Failure::kTooManyRequests, 0, {}});
    return;
  }
  permissions_[peer].pending = true;
  send_permission(now, peer);
}

void Client::send_permission(TimePoint now, const IpAddress& peer) {
  permissions_[peer].pending = true;
  start(now, Transaction{.kind = Kind::kPermission, .peer_ip = peer});
}

expected<std::uint16_t, Failure> Client::bind_channel(TimePoint now, const SocketAddress& peer) {
  if (state_ != State::kAllocated) return unexpected(Failure::kNotAllocated);
  if (auto it = channel_by_peer_.find(peer); it != channel_by_peer_.end()) return it->second;
  if (channels_.size() >= kMaxChannels || next_channel_ > stun::kMaxChannel) {
    return unexpected(Failure::kTooManyRequests);
  }
  std::uint16_t channel = next_channel_++;
  channels_[channel] = Channel{.peer = peer};
  channel_by_peer_[peer] = channel;
  send_channel_bind(now, peer, channel);
  return channel;
}

void Client::send_channel_bind(TimePoint now, const SocketAddress& peer, std::uint16_t channel) {
  channels_[channel].pending = true;
  start(now, Transaction{.kind = Kind::kChannelBind, .peer = peer, .channel = channel});
}

void Client::send_refresh(TimePoint now, std::uint32_t lifetime, Kind kind) {
  start(now, Transaction{.kind = kind, .lifetime = lifetime});
}

void Client::refresh(TimePoint now) {
  if (state_ != State::kAllocated) return;
  for (const auto& [id, t] : transactions_) {
    if (t.kind == Kind::kRefresh) return;
  }
  allocation_refresh_at_ = kNever;  // re-armed by the Refresh success
  send_refresh(now, config_.lifetime_seconds, Kind::kRefresh);
}

void Client::deallocate(TimePoint now) {
  if (state_ == State::kAllocated) {
    state_ = State::kDeallocating;
    allocation_refresh_at_ = kNever;
    permissions_.clear();
    channels_.clear();
    channel_by_peer_.clear();
    send_refresh(now, 0, Kind::kDeallocate);
    return;
  }
  if (state_ == State::kIdle || state_ == State::kPrewarming || state_ == State::kAllocating) {
    // Nothing granted yet (or a grant we will not wait for): forget everything locally.
    transactions_.clear();
    pending_allocate_.reset();
    state_ = State::kClosed;
    emit(Deallocated{.confirmed = false});
  }
}

void Client::set_credentials(Credentials credentials) {
  config_.credentials = std::move(credentials);
  if (!realm_.empty()) {
    key_ = stun::IntegrityKey::long_term(config_.credentials.username, realm_,
                                         config_.credentials.password);
  }
}

stun::Method Client::method_for(Kind kind) {
  switch (kind) {
    case Kind::kPrewarm:
    case Kind::kAllocate:
      return Method::kAllocate;
    case Kind::kRefresh:
    case Kind::kDeallocate:
      return Method::kRefresh;
    case Kind::kPermission:
      return Method::kCreatePermission;
    case Kind::kChannelBind:
      return Method::kChannelBind;
  }
  return Method::kAllocate;
}

expected<Bytes, Failure> Client::wrap(const SocketAddress& peer, ByteSpan data) {
  if (state_ != State::kAllocated) return unexpected(Failure::kNotAllocated);
  if (data.size() > kMaxPayload) return unexpected(Failure::kPayloadTooLarge);
  Bytes out;
  if (auto it = channel_by_peer_.find(peer); it != channel_by_peer_.end()) {
    out.reserve(stun::kChannelDataHeaderSize + data.size());
    stun::encode_channel_data(it->second, data, out);
    return out;
  }
  // RFC 8656 §11.1: Send indications carry no integrity; ChannelData (above) is preferred for
  // any peer data is exchanged with repeatedly, being 32 bytes shorter.
  stun::MessageBuilder b(Method::kSend, Class::kIndication, new_transaction_id());
  b.add_xor_address(attr::kXorPeerAddress, peer);
  b.add_bytes(attr::kData, data);
  return b.finish();
}

std::optional<std::uint16_t> Client::channel_for(const SocketAddress& peer) const {
  auto it = channel_by_peer_.find(peer);
  if (it == channel_by_peer_.end()) return std::nullopt;
  return it->second;
}

void Client::start(TimePoint now, Transaction t) {
  if (transactions_.size() >= kMaxPendingTransactions) {
    on_failure(t, Failure::kTooManyRequests, 0, {});
    return;
  }
  t.authenticated = t.kind != Kind::kPrewarm && key_.has_value() && !nonce_.empty();
  auto id = new_transaction_id();
  t.request = build(t, id);
  t.schedule = stun::RetransmissionSchedule(config_.retransmission, now);
  transmit(t.request);
  transactions_.emplace(id, std::move(t));
}

Bytes Client::build(const Transaction& t, const stun::TransactionId& id) const {
  stun::MessageBuilder b(method_for(t.kind), Class::kRequest, id);
  switch (t.kind) {
    case Kind::kPrewarm:
    case Kind::kAllocate: {
      // RFC 8656 §7.1: REQUESTED-TRANSPORT is mandatory; only UDP relaying is used here.
      b.add_requested_transport(stun::kTransportUdp);
      const auto& o = pending_allocate_;
      if (t.kind == Kind::kAllocate && o) {
        if (o->reservation_token) {
          b.add_u64(attr::kReservationToken, *o->reservation_token);
        } else {
          if (o->even_port) b.add_even_port(o->reserve_next);
          if (o->family) b.add_requested_address_family(*o->family);
        }
        b.add_u32(attr::kLifetime, config_.lifetime_seconds);
      }
      if (!config_.software.empty()) b.add_string(attr::kSoftware, config_.software);
      break;
    }
    case Kind::kRefresh:
    case Kind::kDeallocate:
      b.add_u32(attr::kLifetime, t.lifetime);
      break;
    case Kind::kPermission:
      // RFC 8656 §9.1: the port of XOR-PEER-ADDRESS is ignored for permissions.
      b.add_xor_address(attr::kXorPeerAddress, SocketAddress{*t.peer_ip, 0});
      break;
    case Kind::kChannelBind:
      b.add_channel_number(t.channel);
      b.add_xor_address(attr::kXorPeerAddress, *t.peer);
      break;
  }
  if (t.authenticated) {
    b.add_string(attr::kUsername, config_.credentials.username);
    b.add_string(attr::kRealm, realm_);
    b.add_string(attr::kNonce, nonce_);
    return b.finish(&*key_, stun::Integrity::kSha1, /*fingerprint=*/true);
  }
  return b.finish(nullptr, stun::Integrity::kNone, /*fingerprint=*/true);
}

std::optional<PeerData> Client::handle_datagram(TimePoint now, ByteSpan datagram) {
  if (!datagram.empty()) {
    auto first = std::to_integer<unsigned>(datagram[0]);
    // RFC 8656 §12: ChannelData starts with 0b01; STUN with 0b00 (RFC 8489 §5).
    if ((first & 0xC0) == 0x40) {
      auto cd = stun::parse_channel_data(datagram);
      if (cd) {
        auto it = channels_.find(cd->channel);
        if (it != channels_.end()) return PeerData{it->second.peer, cd->data, true};
      }
      ++dropped_;
      return std::nullopt;
    }
  }
  auto m = stun::Message::parse(datagram);
  if (!m) {
    ++dropped_;
    return std::nullopt;
  }
  if (m->cls() == Class::kIndication && m->method() == Method::kData) {
    auto peer = m->xor_address(attr::kXorPeerAddress);
    const auto* data = m->find(attr::kData);
    if (!peer || data == nullptr || state_ != State::kAllocated) {
      ++dropped_;
      return std::nullopt;
    }
    // The parsed message owns a copy; hand out the bytes of the caller's datagram instead.
    return PeerData{*peer, datagram.subspan(data->offset, data->length), false};
  }
  if (m->cls() == Class::kSuccess || m->cls() == Class::kError) {
    on_response(now, *m);
  } else {
    ++dropped_;
  }
  return std::nullopt;
}

void Client::on_response(TimePoint now, const stun::Message& response) {
  auto it = transactions_.find(response.transaction_id());
  if (it == transactions_.end() || method_for(it->second.kind) != response.method()) {
    ++dropped_;  // late duplicate, or not ours
    return;
  }
  Transaction& pending = it->second;
  if (pending.authenticated) {
    // RFC 8489 §9.2.5: responses to authenticated requests are checked with the same key.
    // Success responses must carry integrity; error responses (401/438) usually do not.
    auto integrity = response.check_integrity(*key_);
    bool ok = integrity == stun::IntegrityResult::kOk ||
              (integrity == stun::IntegrityResult::kMissing && response.cls() == Class::kError);
    if (!ok) {
      ++dropped_;  // forged or corrupted: keep waiting for the real answer
      return;
    }
  }
  Transaction t = std::move(pending);
  transactions_.erase(it);
  if (response.cls() == Class::kSuccess) {
    on_success(now, t, response);
    return;
  }
  auto error = response.error_code();
  if (!error) {
    on_failure(t, Failure::kMalformedResponse, 0, "error response without ERROR-CODE");
    return;
  }
  on_error(now, t, error->code, error->reason, response);
}

bool Client::learn_realm_and_nonce(const stun::Message& m) {
  auto nonce = m.string(attr::kNonce);
  if (!nonce) return false;
  if (auto realm = m.string(attr::kRealm)) {
    realm_ = *realm;
  } else if (realm_.empty()) {
    return false;
  }
  nonce_ = *nonce;
  key_ = stun::IntegrityKey::long_term(config_.credentials.username, realm_,
                                       config_.credentials.password);
  return true;
}

void Client::on_error(TimePoint now, Transaction& t, int code, const std::string& reason,
                      const stun::Message& response) {
  if (code == stun::error::kUnauthorized && !t.authenticated) {
    // The challenge (RFC 8489 §9.2.3): learn REALM and NONCE, then retry with credentials.
    if (!learn_realm_and_nonce(response)) {
      on_failure(t, Failure::kMalformedResponse, code, "401 without REALM/NONCE");
      return;
    }
    if (t.kind == Kind::kPrewarm) {
      emit(NoncePrewarmed{});
      state_ = State::kIdle;
      if (pending_allocate_) {
        state_ = State::kAllocating;
        allocate_round_trips_ = 0;
        send_allocate(now);
      }
      return;
    }
    if (t.kind == Kind::kAllocate) ++allocate_round_trips_;
    start(now, std::move(t));
    return;
  }
  if (code == stun::error::kStaleNonce && t.stale_nonce_retries < kMaxStaleNonceRetries &&
      learn_realm_and_nonce(response)) {
    // RFC 8489 §9.2.5: a new NONCE; retry once with it (bounded).
    ++t.stale_nonce_retries;
    if (t.kind == Kind::kAllocate) ++allocate_round_trips_;
    start(now, std::move(t));
    return;
  }
  on_failure(
      t,
      code == stun::error::kStaleNonce ? Failure::kStaleNonceLoop : failure_from_error_code(code),
      code, reason);
}

void Client::on_success(TimePoint now, Transaction& t, const stun::Message& m) {
  switch (t.kind) {
    case Kind::kPrewarm:
    case Kind::kAllocate: {
      auto relayed = m.xor_address(attr::kXorRelayedAddress);
      auto mapped = m.xor_address(attr::kXorMappedAddress);
      if (!relayed || !mapped) {
        fail_allocation(Failure::kMalformedResponse, 0,
                        "Allocate success without XOR-RELAYED-ADDRESS/XOR-MAPPED-ADDRESS");
        return;
      }
      auto lifetime = seconds(m.u32(attr::kLifetime).value_or(config_.lifetime_seconds));
      std::optional<std::uint64_t> token;
      if (auto tok = m.u64(attr::kReservationToken)) token = *tok;
      relayed_ = *relayed;
      mapped_ = *mapped;
      state_ = State::kAllocated;
      schedule_refresh(now, lifetime);
      emit(Allocated{*relayed, *mapped, token, lifetime, allocate_round_trips_});
      return;
    }
    case Kind::kRefresh: {
      auto lifetime = seconds(m.u32(attr::kLifetime).value_or(t.lifetime));
      if (state_ == State::kAllocated) schedule_refresh(now, lifetime);
      emit(Refreshed{lifetime});
      return;
    }
    case Kind::kDeallocate:
      state_ = State::kClosed;
      emit(Deallocated{});
      return;
    case Kind::kPermission: {
      if (state_ != State::kAllocated) return;
      auto& p = permissions_[*t.peer_ip];
      bool first = !p.installed;
      p.installed = true;
      p.pending = false;
      p.refresh_at = now + kPermissionRefresh;
      if (first) emit(PermissionCreated{*t.peer_ip});
      return;
    }
    case Kind::kChannelBind: {
      auto it = channels_.find(t.channel);
      if (state_ != State::kAllocated || it == channels_.end()) return;
      bool first = !it->second.bound;
      it->second.bound = true;
      it->second.pending = false;
      // A channel binding lasts 600 s but the permission it installs only 300 s (RFC 8656
      // §12): re-binding on the permission schedule keeps both alive.
      it->second.refresh_at = now + kPermissionRefresh;
      if (first) emit(ChannelBound{*t.peer, t.channel});
      return;
    }
  }
}

void Client::on_failure(Transaction& t, Failure failure, int code, const std::string& reason) {
  switch (t.kind) {
    case Kind::kPrewarm:
    case Kind::kAllocate:
      fail_allocation(failure, code, reason);
      return;
    case Kind::kRefresh:
      if (state_ == State::kAllocated) {
        state_ = State::kFailed;
        allocation_refresh_at_ = kNever;
        permissions_.clear();
        channels_.clear();
        channel_by_peer_.clear();
        emit(AllocationLost{failure, code, reason});
      }
      return;
    case Kind::kDeallocate:
      // The server forgets the allocation when its lifetime runs out anyway.
      state_ = State::kClosed;
      emit(Deallocated{.confirmed = false});
      return;
    case Kind::kPermission:
      permissions_.erase(*t.peer_ip);
      emit(PermissionFailed{*t.peer_ip, failure, code, reason});
      return;
    case Kind::kChannelBind:
      channels_.erase(t.channel);
      channel_by_peer_.erase(*t.peer);
      emit(ChannelBindFailed{*t.peer, t.channel, failure, code, reason});
      return;
  }
}

void Client::fail_allocation(Failure failure, int code, const std::string& reason) {
  state_ = State::kFailed;
  pending_allocate_.reset();
  emit(AllocationFailed{failure, code, reason});
}

void Client::schedule_refresh(TimePoint now, Duration lifetime) {
  Duration margin = std::min<Duration>(config_.refresh_margin, lifetime / 2);
  allocation_refresh_at_ = now + lifetime - margin;
}

TimePoint Client::next_deadline() const {
  TimePoint next = allocation_refresh_at_;
  for (const auto& [id, t] : transactions_)
    next = std::min(next, t.schedule.deadline());
  for (const auto& [ip, p] : permissions_) {
    if (!p.pending) next = std::min(next, p.refresh_at);
  }
  for (const auto& [number, c] : channels_) {
    if (!c.pending) next = std::min(next, c.refresh_at);
  }
  return next;
}

void Client::handle_timeout(TimePoint now) {
  std::vector<stun::TransactionId> expired;
  for (auto& [id, t] : transactions_) {
    if (t.schedule.deadline() > now) continue;
    if (t.schedule.on_deadline(now)) {
      transmit(t.request);
    } else {
      expired.push_back(id);
    }
  }
  for (const auto& id : expired) {
    auto node = transactions_.extract(id);
    on_failure(node.mapped(), Failure::kTimeout, 0, {});
  }
  if (state_ != State::kAllocated) return;
  if (now >= allocation_refresh_at_) refresh(now);
  for (auto& [ip, p] : permissions_) {
    if (!p.pending && now >= p.refresh_at) send_permission(now, ip);
  }
  for (auto& [number, c] : channels_) {
    if (!c.pending && now >= c.refresh_at) send_channel_bind(now, c.peer, number);
  }
}

std::optional<Bytes> Client::poll_transmit() {
  if (transmits_.empty()) return std::nullopt;
  Bytes b = std::move(transmits_.front());
  transmits_.pop_front();
  return b;
}

std::optional<Event> Client::poll_event() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void Client::emit(Event e) {
  // Owners poll after every call, so the bound is only hit by an owner that never polls.
  if (events_.size() >= kMaxQueuedEvents) events_.pop_front();
  events_.push_back(std::move(e));
}

void Client::transmit(Bytes b) {
  if (transmits_.size() >= kMaxQueuedTransmits) transmits_.pop_front();
  transmits_.push_back(std::move(b));
}

}  // namespace roam::turn
