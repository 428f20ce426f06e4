#include "common/session/control_frame.h"

#include <algorithm>
#include <charconv>
#include <type_traits>

namespace roam::session {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string hex_byte(unsigned char b) {
  return {'0', 'x', kHexDigits[b >> 4], kHexDigits[b & 0xf]};
}

// The first byte outside 0x20..0x7e, as an error naming `what`.
expected<void, std::string> check_printable(std::string_view what, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x20 || b > 0x7e) {
      return unexpected(std::string(what) + ": byte " + hex_byte(b) +
                        " is not printable ASCII (offset " + std::to_string(i) + ")");
    }
  }
  return {};
}

expected<void, std::string> check_candidate_text(std::string_view text) {
  if (text.empty()) {
    return unexpected(std::string("candidate text: empty; expected 1..512 printable ASCII bytes"));
  }
  if (text.size() > kMaxCandidateTextSize) {
    return unexpected("candidate text: " + std::to_string(text.size()) + " bytes exceeds " +
                      std::to_string(kMaxCandidateTextSize));
  }
  return check_printable("candidate text", text);
}

expected<void, std::string> check_switch_reason(std::string_view reason) {
  if (reason.size() > kMaxSwitchReasonSize) {
    return unexpected("switch reason: " + std::to_string(reason.size()) + " bytes exceeds " +
                      std::to_string(kMaxSwitchReasonSize));
  }
  return check_printable("switch reason", reason);
}

expected<void, std::string> check_address(const SocketAddress& address) {
  if (address.port == 0) {
    return unexpected(std::string("candidate-removed address: port 0; expected 1..65535"));
  }
  return {};
}

std::string address_text(const SocketAddress& address) {
  return address.ip.to_string() + " " + std::to_string(address.port);
}

// "IP PORT": the address as IpAddress::parse reads it (dotted quad or RFC 5952 text, no zone),
// one space, a decimal port.
expected<SocketAddress, std::string> parse_address(std::string_view text) {
  constexpr std::string_view kWhat = "candidate-removed address";
  if (auto printable = check_printable(kWhat, text); !printable) {
    return unexpected(printable.error());
  }
  const auto space = text.find(' ');
  if (space == std::string_view::npos || text.find(' ', space + 1) != std::string_view::npos) {
    return unexpected(std::string(kWhat) + ": expected \"IP PORT\"");
  }
  const auto ip = IpAddress::parse(text.substr(0, space));
  if (!ip) return unexpected(std::string(kWhat) + ": not an IP address");
  const std::string_view port_text = text.substr(space + 1);
  unsigned port = 0;
  const char* end = port_text.data() + port_text.size();
  const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                      port_text.find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits || std::from_chars(port_text.data(), end, port).ptr != end || port == 0 ||
      port > 65535) {
    return unexpected(std::string(kWhat) + ": bad port; expected 1..65535");
  }
  return SocketAddress{*ip, static_cast<std::uint16_t>(port)};
}

std::uint64_t load_be64(const std::byte* p) {
  return (std::uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}

void put_be64(ByteWriter& w, std::uint64_t v) {
  w.u32(static_cast<std::uint32_t>(v >> 32));
  w.u32(static_cast<std::uint32_t>(v));
}

expected<std::uint64_t, std::string> parse_nonce(std::string_view what, ByteSpan payload) {
  if (payload.size() != kPingPayloadSize) {
    return unexpected(std::string(what) + " frame: payload " + std::to_string(payload.size()) +
                      " bytes; expected 8");
  }
  return load_be64(payload.data());
}

// The frame of a known type, or why its payload is invalid.
expected<ControlFrame, std::string> decode_payload(ControlFrameType type, ByteSpan payload) {
  const std::string_view text = as_chars(payload);
  switch (type) {
    case ControlFrameType::kCandidate: {
      if (auto ok = check_candidate_text(text); !ok) return unexpected(ok.error());
      return Candidate{std::string(text)};
    }
    case ControlFrameType::kEndOfCandidates:
      if (!payload.empty()) {
        return unexpected("end-of-candidates frame: payload " + std::to_string(payload.size()) +
                          " bytes; expected none");
      }
      return EndOfCandidates{};
    case ControlFrameType::kCandidateRemoved: {
      auto address = parse_address(text);
      if (!address) return unexpected(std::move(address.error()));
      if (auto ok = check_address(*address); !ok) return unexpected(ok.error());
      return CandidateRemoved{*address};
    }
    case ControlFrameType::kSwitchRequest: {
      if (auto ok = check_switch_reason(text); !ok) return unexpected(ok.error());
      return SwitchRequest{std::string(text)};
    }
    case ControlFrameType::kPing: {
      auto nonce = parse_nonce("ping", payload);
      if (!nonce) return unexpected(std::move(nonce.error()));
      return Ping{*nonce};
    }
    case ControlFrameType::kPong: {
      auto nonce = parse_nonce("pong", payload);
      if (!nonce) return unexpected(std::move(nonce.error()));
      return Pong{*nonce};
    }
  }
  return unexpected(std::string("unknown control frame type"));  // not reached
}

std::string pending_error() {
  return "control stream: more than " + std::to_string(kMaxControlPendingBytes) +
         " bytes pending; call next() between feeds";
}

bool known_type(std::uint8_t type) {
  return type >= static_cast<std::uint8_t>(ControlFrameType::kCandidate) &&
         type <= static_cast<std::uint8_t>(ControlFrameType::kPong);
}

}  // namespace

// The variant's alternatives are in wire-type order.
static_assert(std::is_same_v<std::variant_alternative_t<0, ControlFrame>, Candidate>);
static_assert(std::is_same_v<std::variant_alternative_t<1, ControlFrame>, EndOfCandidates>);
static_assert(std::is_same_v<std::variant_alternative_t<2, ControlFrame>, CandidateRemoved>);
static_assert(std::is_same_v<std::variant_alternative_t<3, ControlFrame>, SwitchRequest>);
static_assert(std::is_same_v<std::variant_alternative_t<4, ControlFrame>, Ping>);
static_assert(std::is_same_v<std::variant_alternative_t<5, ControlFrame>, Pong>);

ControlFrameType type_of(const ControlFrame& frame) {
  return static_cast<ControlFrameType>(frame.index() + 1);
}

std::string_view type_name(const ControlFrame& frame) {
  switch (type_of(frame)) {
    case ControlFrameType::kCandidate:
      return "candidate";
    case ControlFrameType::kEndOfCandidates:
      return "end-of-candidates";
    case ControlFrameType::kCandidateRemoved:
      return "candidate-removed";
    case ControlFrameType::kSwitchRequest:
      return "switch-request";
    case ControlFrameType::kPing:
      return "ping";
    case ControlFrameType::kPong:
      return "pong";
  }
  return "unknown";
}

expected<void, std::string> validate(const ControlFrame& frame) {
  if (const auto* c = std::get_if<Candidate>(&frame)) return check_candidate_text(c->text);
  if (const auto* r = std::get_if<CandidateRemoved>(&frame)) return check_address(r->address);
  if (const auto* s = std::get_if<SwitchRequest>(&frame)) return check_switch_reason(s->reason);
  return {};
}

Bytes encode(const ControlFrame& frame) {
  if (!validate(frame)) return {};
  Bytes payload;
  ByteWriter p(payload);
  if (const auto* c = std::get_if<Candidate>(&frame)) {
    p.bytes(as_bytes(c->text));
  } else if (const auto* r = std::get_if<CandidateRemoved>(&frame)) {
    p.bytes(as_bytes(address_text(r->address)));
  } else if (const auto* s = std::get_if<SwitchRequest>(&frame)) {
    p.bytes(as_bytes(s->reason));
  } else if (const auto* ping = std::get_if<Ping>(&frame)) {
    put_be64(p, ping->nonce);
  } else if (const auto* pong = std::get_if<Pong>(&frame)) {
    put_be64(p, pong->nonce);
  }
  // validate() bounds every payload well below kMaxControlPayloadSize.
  Bytes out;
  out.reserve(kControlFrameHeaderSize + payload.size());
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(type_of(frame)));
  w.u16(static_cast<std::uint16_t>(payload.size()));
  w.bytes(payload);
  return out;
}

expected<void, std::string> ControlFrameReader::fail(std::string error) {
  error_ = std::move(error);
  partial_.clear();
  partial_.shrink_to_fit();
  return unexpected(*error_);
}

expected<void, std::string> ControlFrameReader::feed(ByteSpan data) {
  if (error_) return unexpected(*error_);
  while (!data.empty()) {
    // The header first, then exactly the payload it declares.
    if (partial_.size() < kControlFrameHeaderSize) {
      const std::size_t n = std::min(kControlFrameHeaderSize - partial_.size(), data.size());
      partial_.insert(partial_.end(), data.begin(), data.begin() + n);
      data = data.subspan(n);
      if (partial_.size() < kControlFrameHeaderSize) break;
    }
    const auto type = std::to_integer<std::uint8_t>(partial_[0]);
    const std::size_t length = load_be16(partial_.data() + 1);
    if (length > kMaxControlPayloadSize) {
      return fail("control frame type " + std::to_string(type) + ": payload " +
                  std::to_string(length) + " bytes exceeds " +
                  std::to_string(kMaxControlPayloadSize));
    }
    const std::size_t frame_size = kControlFrameHeaderSize + length;
    const std::size_t n = std::min(frame_size - partial_.size(), data.size());
    partial_.insert(partial_.end(), data.begin(), data.begin() + n);
    data = data.subspan(n);
    if (partial_.size() < frame_size) break;

    if (known_type(type)) {
      // Checked per frame, so one large feed cannot queue more than the bound either.
      if (queued_bytes_ + frame_size > kMaxControlPendingBytes) return fail(pending_error());
      auto frame = decode_payload(static_cast<ControlFrameType>(type),
                                  ByteSpan(partial_).subspan(kControlFrameHeaderSize));
      if (!frame) return fail(std::move(frame.error()));
      frames_.emplace_back(std::move(*frame), frame_size);
      queued_bytes_ += frame_size;
    } else {
      ++skipped_unknown_;
    }
    partial_.clear();
  }
  if (pending_bytes() > kMaxControlPendingBytes) return fail(pending_error());
  return {};
}

std::optional<ControlFrame> ControlFrameReader::next() {
  if (frames_.empty()) return std::nullopt;
  auto [frame, size] = std::move(frames_.front());
  frames_.pop_front();
  queued_bytes_ -= size;
  return std::move(frame);
}

}  // namespace roam::session
