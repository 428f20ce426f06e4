// Fuzz target for the STUN codec: parse, every accessor on every attribute, integrity with a fixed
// key, and for every message that parses, re-encoding with MessageBuilder must reproduce the
// same message (same header, same attribute values, integrity and FINGERPRINT valid). Any
// violated invariant aborts so libFuzzer records the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "common/stun/demux.h"
#include "common/stun/message.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace roam;
using namespace roam::stun;

template <class T, class E>
bool same(const expected<T, E>& a, const expected<T, E>& b) {
  if (a.has_value() != b.has_value()) return false;
  return a.has_value() ? *a == *b : a.error() == b.error();
}

bool same_error_code(const expected<ErrorCode, AttributeError>& a,
                     const expected<ErrorCode, AttributeError>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a.has_value()) return a.error() == b.error();
  return a->code == b->code && a->reason == b->reason;
}

bool is_integrity_or_fingerprint(std::uint16_t type) {
  return type == attr::kMessageIntegrity || type == attr::kMessageIntegritySha256 ||
         type == attr::kFingerprint;
}

// Every accessor; checks the bounds each one promises.
void exercise(const Message& m) {
  for (const AttributeRef& a : m.attributes()) {
    FUZZ_CHECK(std::size_t{a.offset} + a.length <= m.raw().size());
    FUZZ_CHECK(a.offset >= kHeaderSize + kAttributeHeaderSize);
    FUZZ_CHECK(m.value(a).size() == a.length);
    if (auto addr = m.address(a.type)) FUZZ_CHECK(addr->ip.is_v4() || addr->ip.is_v6());
    (void)m.xor_address(a.type);
    if (auto s = m.string(a.type)) FUZZ_CHECK(s->size() <= kMaxSoftwareSize);
    if (m.u32(a.type)) FUZZ_CHECK(m.find(a.type)->length == 4);
    (void)m.u64(a.type);
    if (auto b = m.bytes(a.type)) FUZZ_CHECK(b->size() == m.find(a.type)->length);
  }
  if (auto e = m.error_code()) {
    FUZZ_CHECK(e->code >= 300 && e->code <= 699);
    FUZZ_CHECK(e->reason.size() <= kMaxReasonSize);
  }
  if (auto u = m.unknown_attributes(); !u) FUZZ_CHECK(!describe(u.error()).empty());
  if (auto c = m.channel_number()) FUZZ_CHECK(*c >= 0x4000 && *c <= 0x4FFF);
  (void)m.requested_transport();
  (void)m.even_port_reserve();
  (void)m.requested_address_family();
  (void)m.password_algorithms();
  for (auto t : m.unknown_required())
    FUZZ_CHECK(attr::is_comprehension_required(t));
  FUZZ_CHECK(m.attributes().size() <= kMaxAttributes);
}

// The result of every accessor depends only on attribute values and the transaction ID.
void expect_same_content(const Message& a, const Message& b) {
  FUZZ_CHECK(a.raw_method() == b.raw_method());
  FUZZ_CHECK(a.cls() == b.cls());
  FUZZ_CHECK(a.transaction_id() == b.transaction_id());
  for (const AttributeRef& r : a.attributes()) {
    const std::uint16_t t = r.type;
    // Their values are recomputed (another key, zero padding), so they legitimately differ.
    if (is_integrity_or_fingerprint(t)) continue;
    FUZZ_CHECK(same(a.address(t), b.address(t)));
    FUZZ_CHECK(same(a.xor_address(t), b.xor_address(t)));
    FUZZ_CHECK(same(a.string(t), b.string(t)));
    FUZZ_CHECK(same(a.u32(t), b.u32(t)));
    FUZZ_CHECK(same(a.u64(t), b.u64(t)));
    FUZZ_CHECK(same(a.bytes(t), b.bytes(t)));
  }
  FUZZ_CHECK(same_error_code(a.error_code(), b.error_code()));
  FUZZ_CHECK(same(a.unknown_attributes(), b.unknown_attributes()));
  FUZZ_CHECK(same(a.channel_number(), b.channel_number()));
  FUZZ_CHECK(same(a.requested_transport(), b.requested_transport()));
  FUZZ_CHECK(same(a.even_port_reserve(), b.even_port_reserve()));
  FUZZ_CHECK(same(a.requested_address_family(), b.requested_address_family()));
  FUZZ_CHECK(same(a.password_algorithms(), b.password_algorithms()));
  FUZZ_CHECK(a.unknown_required() == b.unknown_required());
}

// After a typed re-encode, reserved bits and the reserved address byte are zero, so raw views
// (bytes(), string() of a non-text type) may differ; each type's own accessor must not.
void expect_same_meaning(const Message& a, const Message& b) {
  FUZZ_CHECK(a.raw_method() == b.raw_method());
  FUZZ_CHECK(a.cls() == b.cls());
  FUZZ_CHECK(a.transaction_id() == b.transaction_id());
  FUZZ_CHECK(a.unknown_required() == b.unknown_required());
  FUZZ_CHECK(same_error_code(a.error_code(), b.error_code()));
  FUZZ_CHECK(same(a.unknown_attributes(), b.unknown_attributes()));
  FUZZ_CHECK(same(a.channel_number(), b.channel_number()));
  FUZZ_CHECK(same(a.requested_transport(), b.requested_transport()));
  FUZZ_CHECK(same(a.even_port_reserve(), b.even_port_reserve()));
  FUZZ_CHECK(same(a.requested_address_family(), b.requested_address_family()));
  for (const AttributeRef& r : a.attributes()) {
    const std::uint16_t t = r.type;
    switch (t) {
      case attr::kMappedAddress:
      case attr::kAlternateServer:
        FUZZ_CHECK(same(a.address(t), b.address(t)));
        break;
      case attr::kXorMappedAddress:
      case attr::kXorPeerAddress:
      case attr::kXorRelayedAddress:
        FUZZ_CHECK(same(a.xor_address(t), b.xor_address(t)));
        break;
      case attr::kUsername:
      case attr::kRealm:
      case attr::kNonce:
      case attr::kSoftware:
      case attr::kAlternateDomain:
      case attr::kPriority:
      case attr::kLifetime:
      case attr::kIceControlled:
      case attr::kIceControlling:
      case attr::kReservationToken:
      case attr::kUseCandidate:
      case attr::kDontFragment:
        FUZZ_CHECK(same(a.bytes(t), b.bytes(t)));  // written byte for byte
        break;
      default:
        break;
    }
  }
}

Bytes reencode(const Message& m, const IntegrityKey& key) {
  MessageBuilder b(static_cast<Method>(m.raw_method()), m.cls(), m.transaction_id());
  for (const AttributeRef& a : m.attributes()) {
    if (!is_integrity_or_fingerprint(a.type)) b.add_bytes(a.type, m.value(a));
  }
  const bool sha1 = m.has(attr::kMessageIntegrity);
  const bool sha256 = m.has(attr::kMessageIntegritySha256);
  const Integrity mode = sha1 && sha256 ? Integrity::kBoth
                         : sha256       ? Integrity::kSha256
                         : sha1         ? Integrity::kSha1
                                        : Integrity::kNone;
  return b.finish(&key, mode, m.has_fingerprint());
}

// Re-encodes through the typed builder calls, decoding the first attribute of each type with its
// accessor (later duplicates, and values an accessor rejects, are copied as bytes). Reserved bits
// are written as zero, so bytes may differ but every accessor must return the same result.
Bytes reencode_typed(const Message& m, const IntegrityKey& key) {
  MessageBuilder b(static_cast<Method>(m.raw_method()), m.cls(), m.transaction_id());
  for (const AttributeRef& a : m.attributes()) {
    const std::uint16_t t = a.type;
    if (is_integrity_or_fingerprint(t)) continue;
    bool done = false;
    if (m.find(t) == &a) {
      switch (t) {
        case attr::kMappedAddress:
        case attr::kAlternateServer:
          if (auto v = m.address(t)) b.add_address(t, *v), done = true;
          break;
        case attr::kXorMappedAddress:
        case attr::kXorPeerAddress:
        case attr::kXorRelayedAddress:
          if (auto v = m.xor_address(t)) b.add_xor_address(t, *v), done = true;
          break;
        case attr::kErrorCode:
          if (auto v = m.error_code()) b.add_error_code(v->code, v->reason), done = true;
          break;
        case attr::kUnknownAttributes:
          if (auto v = m.unknown_attributes()) b.add_unknown_attributes(*v), done = true;
          break;
        case attr::kChannelNumber:
          if (auto v = m.channel_number()) b.add_channel_number(*v), done = true;
          break;
        case attr::kRequestedTransport:
          if (auto v = m.requested_transport()) b.add_requested_transport(*v), done = true;
          break;
        case attr::kEvenPort:
          if (auto v = m.even_port_reserve()) b.add_even_port(*v), done = true;
          break;
        case attr::kRequestedAddressFamily:
          if (auto v = m.requested_address_family()) {
            b.add_requested_address_family(*v), done = true;
          }
          break;
        case attr::kUsername:
        case attr::kRealm:
        case attr::kNonce:
        case attr::kSoftware:
        case attr::kAlternateDomain:
          if (auto v = m.string(t)) b.add_string(t, *v), done = true;
          break;
        case attr::kPriority:
        case attr::kLifetime:
          if (auto v = m.u32(t)) b.add_u32(t, *v), done = true;
          break;
        case attr::kIceControlled:
        case attr::kIceControlling:
        case attr::kReservationToken:
          if (auto v = m.u64(t)) b.add_u64(t, *v), done = true;
          break;
        case attr::kUseCandidate:
        case attr::kDontFragment:
          if (a.length == 0) b.add_flag(t), done = true;
          break;
        default:
          break;
      }
    }
    if (!done) b.add_bytes(t, m.value(a));
  }
  return b.finish(&key, Integrity::kSha1, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(reinterpret_cast<const std::byte*>(data), size);
  static const IntegrityKey kKey = IntegrityKey::short_term("VOkJxbRl1RmTxUk/WvJxBt");

  auto m = Message::parse(in);
  // Demux agrees with the parser: whatever parses is recognised as STUN from any source.
  if (m) FUZZ_CHECK(looks_like_stun(in) && classify(in, false) == PacketKind::kStun);
  if (!looks_like_stun(in)) FUZZ_CHECK(!m);
  if (!m) {
    FUZZ_CHECK(!describe(m.error()).empty());
    return 0;
  }
  FUZZ_CHECK(m->raw().size() == size);
  exercise(*m);
  (void)m->check_integrity(kKey);

  Bytes out = reencode(*m, kKey);
  if (out.empty()) {
    // Only possible when full-size integrity attributes no longer fit the 16-bit length.
    FUZZ_CHECK(size + 16 > kHeaderSize + 0xFFFC);
    return 0;
  }
  auto again = Message::parse(out);
  FUZZ_CHECK(again.has_value());
  exercise(*again);
  expect_same_content(*m, *again);
  FUZZ_CHECK(again->has_fingerprint() == m->has_fingerprint());
  if (m->has(attr::kMessageIntegrity) || m->has(attr::kMessageIntegritySha256)) {
    FUZZ_CHECK(again->check_integrity(kKey) == IntegrityResult::kOk);
  } else {
    FUZZ_CHECK(again->check_integrity(kKey) == IntegrityResult::kMissing);
  }
  // Non-integrity attributes survive in order.
  std::size_t j = 0;
  for (const AttributeRef& a : m->attributes()) {
    if (is_integrity_or_fingerprint(a.type)) continue;
    while (j < again->attributes().size() &&
           is_integrity_or_fingerprint(again->attributes()[j].type)) {
      ++j;
    }
    FUZZ_CHECK(j < again->attributes().size());
    const AttributeRef& b = again->attributes()[j++];
    FUZZ_CHECK(a.type == b.type && a.length == b.length);
    const ByteSpan va = m->value(a);
    const ByteSpan vb = again->value(b);
    FUZZ_CHECK(std::equal(va.begin(), va.end(), vb.begin(), vb.end()));
  }
  // Encoding is canonical: a second round trip is byte-identical.
  FUZZ_CHECK(reencode(*again, kKey) == out);

  // Through the typed builder calls: same content, integrity and FINGERPRINT valid.
  Bytes typed = reencode_typed(*m, kKey);
  if (!typed.empty()) {
    auto t = Message::parse(typed);
    FUZZ_CHECK(t.has_value());
    expect_same_meaning(*m, *t);
    FUZZ_CHECK(t->has_fingerprint());
    FUZZ_CHECK(t->check_integrity(kKey) == IntegrityResult::kOk);
  } else {
    // It adds MESSAGE-INTEGRITY and FINGERPRINT: refused only past the size or count bounds.
    std::size_t body = 0;
    for (const AttributeRef& a : m->attributes())
      body += !is_integrity_or_fingerprint(a.type);
    FUZZ_CHECK(size + 64 > kHeaderSize + 0xFFFC || body + 2 > kMaxAttributes);
  }

  // Long-term credentials built from the message's own USERNAME and REALM (both algorithms).
  auto user = m->string(attr::kUsername);
  auto realm = m->string(attr::kRealm);
  if (user && realm) {
    (void)m->check_integrity(IntegrityKey::long_term(*user, *realm, "pass"));
    (void)m->check_integrity(
        IntegrityKey::long_term(*user, *realm, "pass", PasswordAlgorithm::kSha256));
  }
  return 0;
}
