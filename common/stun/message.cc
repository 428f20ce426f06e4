#include "common/stun/message.h"

#include <algorithm>
#include <string>

#include "common/crypto/digest.h"
#include "common/stun/channel_data.h"

namespace roam::stun {
namespace {

// RFC 8489 §14: attribute values are padded to a multiple of 4 bytes.
constexpr std::size_t padded(std::size_t n) {
  return (n + 3) & ~std::size_t{3};
}

// RFC 8489 §5: the length field is 16 bits and always a multiple of 4 (attributes are padded),
// so the largest body a message can carry is 65532 bytes.
constexpr std::size_t kMaxBody = 0xFFFC;

// RFC 8489 §14.5: MESSAGE-INTEGRITY is a 20-byte HMAC-SHA1.
constexpr std::size_t kSha1MacSize = 20;
// RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to 16..32 bytes in steps of 4.
constexpr std::size_t kSha256MacMin = 16;
constexpr std::size_t kSha256MacMax = 32;
// RFC 8489 §14.7: FINGERPRINT is a 32-bit CRC.
constexpr std::size_t kFingerprintSize = 4;

// RFC 8489 §14.1: address family codes in (XOR-)MAPPED-ADDRESS.
constexpr std::uint8_t kFamilyIPv4 = 0x01;
constexpr std::uint8_t kFamilyIPv6 = 0x02;
// RFC 8489 §14.1: family byte + port + 4 or 16 address bytes, after one reserved byte.
constexpr std::size_t kAddressV4Size = 8;
constexpr std::size_t kAddressV6Size = 20;

// RFC 8489 §14.8: class 3..6 and number 0..99 give codes 300..699.
constexpr int kMinErrorCode = 300;
constexpr int kMaxErrorCode = 699;

// RFC 1035 §2.3.4: a domain name (ALTERNATE-DOMAIN, RFC 8489 §14.16) is at most 255 octets.
constexpr std::size_t kMaxDomainSize = 255;

std::uint8_t u8(std::byte b) {
  return std::to_integer<std::uint8_t>(b);
}

// The upper bound string() applies per attribute type. Types outside the RFCs' text attributes
// get the largest text bound (763, RFC 8489 §14.9) so that no caller can be made to copy an
// arbitrarily large value into a std::string through this accessor.
std::size_t text_limit(std::uint16_t type) {
  switch (type) {
    case attr::kUsername:
      return kMaxUsernameSize;
    case attr::kRealm:
      return kMaxRealmSize;
    case attr::kNonce:
      return kMaxNonceSize;
    case attr::kSoftware:
      return kMaxSoftwareSize;
    case attr::kAlternateDomain:
      return kMaxDomainSize;
    default:
      return kMaxSoftwareSize;
  }
}

bool is_known(std::uint16_t type) {
  switch (type) {
    case attr::kMappedAddress:
    case attr::kUsername:
    case attr::kMessageIntegrity:
    case attr::kErrorCode:
    case attr::kUnknownAttributes:
    case attr::kChannelNumber:
    case attr::kLifetime:
    case attr::kXorPeerAddress:
    case attr::kData:
    case attr::kRealm:
    case attr::kNonce:
    case attr::kXorRelayedAddress:
    case attr::kRequestedAddressFamily:
    case attr::kEvenPort:
    case attr::kRequestedTransport:
    case attr::kDontFragment:
    case attr::kMessageIntegritySha256:
    case attr::kPasswordAlgorithm:
    case attr::kUserhash:
    case attr::kXorMappedAddress:
    case attr::kReservationToken:
    case attr::kPriority:
    case attr::kUseCandidate:
      return true;
    default:
      return false;
  }
}

// RFC 8489 §14.2: the port is XORed with the cookie's top 16 bits, an IPv4 address with the
// cookie, an IPv6 address with the cookie followed by the transaction ID. XOR is its own
// inverse, so the same mask serves decoding and encoding.
std::array<std::uint8_t, 16> xor_mask(const TransactionId& id) {
  std::array<std::uint8_t, 16> mask{};
  mask[0] = static_cast<std::uint8_t>(kMagicCookie >> 24);
  mask[1] = static_cast<std::uint8_t>(kMagicCookie >> 16);
  mask[2] = static_cast<std::uint8_t>(kMagicCookie >> 8);
  mask[3] = static_cast<std::uint8_t>(kMagicCookie);
  for (std::size_t i = 0; i < id.size(); ++i)
    mask[4 + i] = u8(id[i]);
  return mask;
}

// Decodes the (XOR-)MAPPED-ADDRESS layout; `mask` is null for the plain form.
expected<SocketAddress, AttributeError> decode_address(ByteSpan v,
                                                       const std::array<std::uint8_t, 16>* mask) {
  if (v.size() < 4) return unexpected(AttributeError::kBadLength);
  // v[0] is reserved: senders set it to zero and receivers ignore it (RFC 8489 §14.1).
  const std::uint8_t family = u8(v[1]);
  std::uint16_t port = load_be16(v.data() + 2);
  if (mask) port ^= static_cast<std::uint16_t>(kMagicCookie >> 16);
  std::array<std::uint8_t, 16> raw{};
  std::size_t n = 0;
  if (family == kFamilyIPv4) {
    if (v.size() != kAddressV4Size) return unexpected(AttributeError::kBadLength);
    n = 4;
  } else if (family == kFamilyIPv6) {
    if (v.size() != kAddressV6Size) return unexpected(AttributeError::kBadLength);
    n = 16;
  } else {
    return unexpected(AttributeError::kBadValue);
  }
  for (std::size_t i = 0; i < n; ++i)
    raw[i] = u8(v[4 + i]) ^ (mask ? (*mask)[i] : 0);
  SocketAddress out;
  out.port = port;
  out.ip = n == 4 ? IpAddress::v4({raw[0], raw[1], raw[2], raw[3]}) : IpAddress::v6(raw);
  return out;
}

}  // namespace

std::string_view describe(ParseError e) {
  switch (e) {
    case ParseError::kTooShort:
      return "shorter than the 20-byte STUN header";
    case ParseError::kNotStun:
      return "not STUN (top two bits set or wrong magic cookie)";
    case ParseError::kBadLength:
      return "STUN length field not a multiple of 4 or not matching the datagram size";
    case ParseError::kAttributeOverflow:
      return "STUN attribute length runs past the end of the message";
    case ParseError::kTooManyAttributes:
      return "too many STUN attributes";
    case ParseError::kAttributeAfterFingerprint:
      return "STUN attribute after FINGERPRINT";
    case ParseError::kBadFingerprint:
      return "STUN FINGERPRINT mismatch";
    case ParseError::kTooLarge:
      return "STUN message larger than the maximum size";
  }
  return "unknown STUN parse error";
}

std::string_view describe(AttributeError e) {
  switch (e) {
    case AttributeError::kMissing:
      return "attribute missing";
    case AttributeError::kBadLength:
      return "attribute length invalid for its type";
    case AttributeError::kBadValue:
      return "attribute value invalid";
  }
  return "unknown attribute error";
}

IntegrityKey IntegrityKey::short_term(std::string_view password) {
  // RFC 8489 §9.1.1: key = OpaqueString(password); the caller prepared the text.
  return IntegrityKey{to_bytes(password)};
}

IntegrityKey IntegrityKey::long_term(std::string_view username, std::string_view realm,
                                     std::string_view password, PasswordAlgorithm algorithm) {
  // RFC 8489 §9.2.2: key = MD5 or SHA-256 of username ":" realm ":" password.
  std::string text;
  text.reserve(username.size() + realm.size() + password.size() + 2);
  text.append(username).append(":").append(realm).append(":").append(password);
  IntegrityKey key;
  if (algorithm == PasswordAlgorithm::kSha256) {
    auto d = crypto::sha256(as_bytes(text));
    key.key.assign(d.begin(), d.end());
  } else {
    auto d = crypto::md5(as_bytes(text));
    key.key.assign(d.begin(), d.end());
  }
  return key;
}

std::uint16_t message_type(std::uint16_t method, Class cls) {
  // RFC 8489 §5, figure 3: M11..M7 C1 M6..M4 C0 M3..M0.
  const unsigned m = method & 0x0FFFu;
  const unsigned c = static_cast<unsigned>(cls);
  return static_cast<std::uint16_t>((m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) |
                                    ((c & 1) << 4) | ((c & 2) << 7));
}

expected<Message, ParseError> Message::parse(ByteSpan datagram) {
  const std::size_t size = datagram.size();
  if (size < kHeaderSize) return unexpected(ParseError::kTooShort);
  if (size > kMaxMessageSize) return unexpected(ParseError::kTooLarge);
  const std::byte* p = datagram.data();
  // RFC 8489 §5: the two most significant bits are zero and bytes 4..7 hold the magic cookie.
  if ((u8(p[0]) & 0xC0) != 0 || load_be32(p + 4) != kMagicCookie) {
    return unexpected(ParseError::kNotStun);
  }
  // RFC 8489 §5: the length excludes the header and is a multiple of 4. Over UDP one datagram
  // is one message, so it must account for every byte.
  const std::size_t length = load_be16(p + 2);
  if (length % 4 != 0 || kHeaderSize + length != size) return unexpected(ParseError::kBadLength);

  Message m;
  const std::uint16_t type = load_be16(p);
  m.method_ =
      static_cast<std::uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  m.class_ = static_cast<Class>(((type >> 4) & 1) | ((type >> 7) & 2));
  std::copy(p + 8, p + kHeaderSize, m.transaction_id_.begin());

  // One allocation: a message cannot hold more attributes than 4-byte slots, nor more than the cap.
  m.attributes_.reserve(std::min(length / kAttributeHeaderSize, kMaxAttributes));
  bool seen_integrity = false;
  bool seen_integrity_sha256 = false;
  bool seen_fingerprint = false;
  std::size_t count = 0;
  // `size - pos` stays a multiple of 4, so a non-zero remainder always holds a full TLV header.
  for (std::size_t pos = kHeaderSize; pos < size;) {
    // RFC 8489 §14.7: FINGERPRINT, when present, is the last attribute.
    if (seen_fingerprint) return unexpected(ParseError::kAttributeAfterFingerprint);
    if (++count > kMaxAttributes) return unexpected(ParseError::kTooManyAttributes);
    const std::uint16_t at = load_be16(p + pos);
    const std::size_t len = load_be16(p + pos + 2);
    const std::size_t value_at = pos + kAttributeHeaderSize;
    // The remainder is a multiple of 4, so a length that fits also fits with its padding.
    if (len > size - value_at) return unexpected(ParseError::kAttributeOverflow);
    pos = value_at + padded(len);

    bool keep = true;
    if (at == attr::kFingerprint) {
      // Verified after the walk, once it is known to be last.
      seen_fingerprint = true;
      if (len != kFingerprintSize) return unexpected(ParseError::kBadFingerprint);
    } else if (seen_integrity_sha256) {
      // RFC 8489 §14.6: only FINGERPRINT may follow MESSAGE-INTEGRITY-SHA256.
      keep = false;
    } else if (at == attr::kMessageIntegritySha256) {
      seen_integrity_sha256 = true;
    } else if (seen_integrity) {
      // RFC 8489 §14.5: after MESSAGE-INTEGRITY only -SHA256 and FINGERPRINT count.
      keep = false;
    } else if (at == attr::kMessageIntegrity) {
      seen_integrity = true;
    }
    if (keep) {
      m.attributes_.push_back(
          AttributeRef{at, static_cast<std::uint32_t>(value_at), static_cast<std::uint16_t>(len)});
    }
  }
  if (seen_fingerprint) {
    // RFC 8489 §14.7: CRC-32 of everything before the attribute, XOR 0x5354554E. The header
    // length already covers FINGERPRINT because it is last.
    const std::size_t fp_at = size - kAttributeHeaderSize - kFingerprintSize;
    const std::uint32_t want = crypto::crc32(datagram.first(fp_at)) ^ kFingerprintXor;
    if (load_be32(p + fp_at + kAttributeHeaderSize) != want) {
      return unexpected(ParseError::kBadFingerprint);
    }
  }
  m.raw_.assign(datagram.begin(), datagram.end());
  return m;
}

const AttributeRef* Message::find(std::uint16_t type) const {
  for (const auto& a : attributes_) {
    if (a.type == type) return &a;
  }
  return nullptr;
}

std::vector<std::uint16_t> Message::unknown_required() const {
  std::vector<std::uint16_t> out;
  for (const auto& a : attributes_) {
    if (!attr::is_comprehension_required(a.type) || is_known(a.type)) continue;
    // One entry per type: the list feeds UNKNOWN-ATTRIBUTES in a 420 (RFC 8489 §14.13).
    if (std::find(out.begin(), out.end(), a.type) == out.end()) out.push_back(a.type);
  }
  return out;
}

expected<SocketAddress, AttributeError> Message::address(std::uint16_t type) const {
  const AttributeRef* a = find(type);
  if (!a) return unexpected(AttributeError::kMissing);
  return decode_address(value(*a), nullptr);
}

expected<SocketAddress, AttributeError> Message::xor_address(std::uint16_t type) const {
  const AttributeRef* a = find(type);
  if (!a) return unexpected(AttributeError::kMissing);
  const auto mask = xor_mask(transaction_id_);
  return decode_address(value(*a), &mask);
}

expected<ErrorCode, AttributeError> Message::error_code() const {
  const AttributeRef* a = find(attr::kErrorCode);
  if (!a) return unexpected(AttributeError::kMissing);
  ByteSpan v = value(*a);
  // RFC 8489 §14.8: 21 reserved bits, 3-bit class, 8-bit number, then the reason phrase.
  if (v.size() < 4 || v.size() - 4 > kMaxReasonSize) {
    return unexpected(AttributeError::kBadLength);
  }
  const int cls = u8(v[2]) & 0x07;  // the reserved bits above it are ignored (§14.8)
  const int number = u8(v[3]);
  if (number > 99) return unexpected(AttributeError::kBadValue);
  const int code = cls * 100 + number;
  if (code < kMinErrorCode || code > kMaxErrorCode) return unexpected(AttributeError::kBadValue);
  return ErrorCode{code, std::string(as_chars(v.subspan(4)))};
}

expected<std::vector<std::uint16_t>, AttributeError> Message::unknown_attributes() const {
  const AttributeRef* a = find(attr::kUnknownAttributes);
  if (!a) return unexpected(AttributeError::kMissing);
  ByteSpan v = value(*a);
  // RFC 8489 §14.13: a list of 16-bit types (normal padding, no RFC 3489 duplication).
  if (v.size() % 2 != 0) return unexpected(AttributeError::kBadLength);
  std::vector<std::uint16_t> out;
  out.reserve(v.size() / 2);
  for (std::size_t i = 0; i < v.size(); i += 2)
    out.push_back(load_be16(v.data() + i));
  return out;
}

expected<std::string, AttributeError> Message::string(std::uint16_t type) const {
  const AttributeRef* a = find(type);
  if (!a) return unexpected(AttributeError::kMissing);
  if (a->length > text_limit(type)) return unexpected(AttributeError::kBadLength);
  return std::string(as_chars(value(*a)));
}

expected<std::uint32_t, AttributeError> Message::u32(std::uint16_t type) const {
  const AttributeRef* a = find(type);
  if (!a) return unexpected(AttributeError::kMissing);
  if (a->length != 4) return unexpected(AttributeError::kBadLength);
  return load_be32(raw_.data() + a->offset);
}

expected<std::uint64_t, AttributeError> Message::u64(std::uint16_t type) const {
  const AttributeRef* a = find(type);
  if (!a) return unexpected(AttributeError::kMissing);
  if (a->length != 8) return unexpected(AttributeError::kBadLength);
  const std::byte* v = raw_.data() + a->offset;
  return (std::uint64_t{load_be32(v)} << 32) | load_be32(v + 4);
}

expected<Bytes, AttributeError> Message::bytes(std::uint16_t type) const {
  const AttributeRef* a = find(type);
  if (!a) return unexpected(AttributeError::kMissing);
  ByteSpan v = value(*a);
  return Bytes(v.begin(), v.end());
}

expected<std::uint16_t, AttributeError> Message::channel_number() const {
  const AttributeRef* a = find(attr::kChannelNumber);
  if (!a) return unexpected(AttributeError::kMissing);
  // RFC 8656 §18.1: 16-bit channel number + 16 RFFU bits (ignored on receipt).
  if (a->length != 4) return unexpected(AttributeError::kBadLength);
  const std::uint16_t channel = load_be16(raw_.data() + a->offset);
  if (channel < kMinChannel || channel > kMaxChannel) return unexpected(AttributeError::kBadValue);
  return channel;
}

expected<std::uint8_t, AttributeError> Message::requested_transport() const {
  const AttributeRef* a = find(attr::kRequestedTransport);
  if (!a) return unexpected(AttributeError::kMissing);
  // RFC 8656 §18.8: protocol number + 24 RFFU bits. Any protocol is returned: refusing it is
  // the server's decision (442), not a decoding error.
  if (a->length != 4) return unexpected(AttributeError::kBadLength);
  return u8(raw_[a->offset]);
}

expected<bool, AttributeError> Message::even_port_reserve() const {
  const AttributeRef* a = find(attr::kEvenPort);
  if (!a) return unexpected(AttributeError::kMissing);
  // RFC 8656 §18.7: one byte, the R bit then 7 RFFU bits.
  if (a->length != 1) return unexpected(AttributeError::kBadLength);
  return (u8(raw_[a->offset]) & 0x80) != 0;
}

expected<AddressFamily, AttributeError> Message::requested_address_family() const {
  const AttributeRef* a = find(attr::kRequestedAddressFamily);
  if (!a) return unexpected(AttributeError::kMissing);
  // RFC 8656 §18.6: family byte (0x01 IPv4, 0x02 IPv6) + 24 RFFU bits.
  if (a->length != 4) return unexpected(AttributeError::kBadLength);
  switch (u8(raw_[a->offset])) {
    case kFamilyIPv4:
      return AddressFamily::kIPv4;
    case kFamilyIPv6:
      return AddressFamily::kIPv6;
    default:
      return unexpected(AttributeError::kBadValue);
  }
}

expected<std::vector<PasswordAlgorithm>, AttributeError> Message::password_algorithms() const {
  const AttributeRef* a = find(attr::kPasswordAlgorithms);
  if (!a) return unexpected(AttributeError::kMissing);
  ByteSpan v = value(*a);
  // RFC 8489 §14.11: repeated {algorithm 16 bits, parameters length 16 bits, parameters padded
  // to 4}. Unknown algorithm numbers are kept: the bid-down check (§9.2.4) compares the list as
  // sent, so it must not be filtered.
  std::vector<PasswordAlgorithm> out;
  std::size_t pos = 0;
  while (pos < v.size()) {
    if (v.size() - pos < 4) return unexpected(AttributeError::kBadLength);
    const std::uint16_t algorithm = load_be16(v.data() + pos);
    const std::size_t params = load_be16(v.data() + pos + 2);
    pos += 4;
    if (padded(params) > v.size() - pos) return unexpected(AttributeError::kBadLength);
    pos += padded(params);
    out.push_back(static_cast<PasswordAlgorithm>(algorithm));
  }
  return out;
}

IntegrityResult Message::check_integrity(const IntegrityKey& key) const {
  // RFC 8489 §14.6: prefer MESSAGE-INTEGRITY-SHA256 when both are present.
  const AttributeRef* a = find(attr::kMessageIntegritySha256);
  const bool sha256 = a != nullptr;
  if (!a) a = find(attr::kMessageIntegrity);
  if (!a) return IntegrityResult::kMissing;
  if (sha256) {
    if (a->length < kSha256MacMin || a->length > kSha256MacMax || a->length % 4 != 0) {
      return IntegrityResult::kMismatch;
    }
  } else if (a->length != kSha1MacSize) {
    return IntegrityResult::kMismatch;
  }
  // RFC 8489 §14.5/§14.6: the HMAC covers the message up to the attribute, with the header
  // length rewritten as if the integrity attribute were the last one.
  const std::size_t prefix = a->offset - kAttributeHeaderSize;
  Bytes input(raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(prefix));
  store_be16(input.data() + 2,
             static_cast<std::uint16_t>(prefix - kHeaderSize + kAttributeHeaderSize + a->length));
  bool ok = false;
  if (sha256) {
    const auto mac = crypto::hmac_sha256(key.key, input);
    ok = crypto::constant_time_equal(ByteSpan(mac).first(a->length), value(*a));
  } else {
    const auto mac = crypto::hmac_sha1(key.key, input);
    ok = crypto::constant_time_equal(mac, value(*a));
  }
  return ok ? IntegrityResult::kOk : IntegrityResult::kMismatch;
}

// --- MessageBuilder ---------------------------------------------------------------------------
//
// An empty out_ marks a builder that can no longer produce a valid message (a value too long for
// a 16-bit length, too many attributes, an out-of-range argument, or finish() already called):
// every later call is a no-op and finish() returns an empty buffer, so a caller bug never yields a
// malformed datagram.

MessageBuilder::MessageBuilder(Method method, Class cls, const TransactionId& id) : id_(id) {
  out_.reserve(128);
  ByteWriter w(out_);
  w.u16(message_type(static_cast<std::uint16_t>(method), cls));
  w.u16(0);
  w.u32(kMagicCookie);
  w.bytes(id_);
}

void MessageBuilder::begin_attribute(std::uint16_t type, std::size_t length) {
  if (out_.size() < kHeaderSize) return;
  const std::size_t body = out_.size() - kHeaderSize + kAttributeHeaderSize + padded(length);
  // An attribute length is a 16-bit field (RFC 8489 §14). Never emit what parse() would refuse:
  // the same body and attribute-count bounds.
  if (length > 0xFFFF || body > kMaxBody || attribute_count_ >= kMaxAttributes) {
    out_.clear();
    return;
  }
  ++attribute_count_;
  ByteWriter w(out_);
  w.u16(type);
  w.u16(static_cast<std::uint16_t>(length));
  store_be16(out_.data() + 2, static_cast<std::uint16_t>(body));
}

namespace {
// Zero padding after a value (RFC 8489 §14: senders pad with zeros).
void pad(Bytes& out) {
  out.resize(padded(out.size()), std::byte{0});
}
}  // namespace

MessageBuilder& MessageBuilder::add_bytes(std::uint16_t type, ByteSpan value) {
  begin_attribute(type, value.size());
  if (out_.empty()) return *this;
  out_.insert(out_.end(), value.begin(), value.end());
  pad(out_);
  return *this;
}

MessageBuilder& MessageBuilder::add_string(std::uint16_t type, std::string_view value) {
  // Refuse to send what a receiver (this codec's string(), RFC 8489 limits) would reject.
  if (value.size() > text_limit(type)) {
    out_.clear();
    return *this;
  }
  return add_bytes(type, as_bytes(value));
}

MessageBuilder& MessageBuilder::add_u32(std::uint16_t type, std::uint32_t value) {
  begin_attribute(type, 4);
  if (out_.empty()) return *this;
  ByteWriter(out_).u32(value);
  return *this;
}

MessageBuilder& MessageBuilder::add_u64(std::uint16_t type, std::uint64_t value) {
  begin_attribute(type, 8);
  if (out_.empty()) return *this;
  ByteWriter w(out_);
  w.u32(static_cast<std::uint32_t>(value >> 32));
  w.u32(static_cast<std::uint32_t>(value));
  return *this;
}

MessageBuilder& MessageBuilder::add_flag(std::uint16_t type) {
  begin_attribute(type, 0);
  return *this;
}

MessageBuilder& MessageBuilder::add_address(std::uint16_t type, const SocketAddress& address) {
  const bool v4 = address.ip.is_v4();
  begin_attribute(type, v4 ? kAddressV4Size : kAddressV6Size);
  if (out_.empty()) return *this;
  ByteWriter w(out_);
  w.u8(0);
  w.u8(v4 ? kFamilyIPv4 : kFamilyIPv6);
  w.u16(address.port);
  for (std::size_t i = 0; i < address.ip.size(); ++i)
    w.u8(address.ip.bytes()[i]);
  return *this;
}

MessageBuilder& MessageBuilder::add_xor_address(std::uint16_t type, const SocketAddress& address) {
  const bool v4 = address.ip.is_v4();
  begin_attribute(type, v4 ? kAddressV4Size : kAddressV6Size);
  if (out_.empty()) return *this;
  const auto mask = xor_mask(id_);
  ByteWriter w(out_);
  w.u8(0);
  w.u8(v4 ? kFamilyIPv4 : kFamilyIPv6);
  w.u16(address.port ^ static_cast<std::uint16_t>(kMagicCookie >> 16));
  for (std::size_t i = 0; i < address.ip.size(); ++i) {
    w.u8(static_cast<std::uint8_t>(address.ip.bytes()[i] ^ mask[i]));
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_error_code(int code, std::string_view reason) {
  if (code < kMinErrorCode || code > kMaxErrorCode || reason.size() > kMaxReasonSize) {
    out_.clear();
    return *this;
  }
  begin_attribute(attr::kErrorCode, 4 + reason.size());
  if (out_.empty()) return *this;
  ByteWriter w(out_);
  w.u16(0);
  w.u8(static_cast<std::uint8_t>(code / 100));
  w.u8(static_cast<std::uint8_t>(code % 100));
  w.bytes(as_bytes(reason));
  pad(out_);
  return *this;
}

MessageBuilder& MessageBuilder::add_unknown_attributes(const std::vector<std::uint16_t>& types) {
  begin_attribute(attr::kUnknownAttributes, 2 * types.size());
  if (out_.empty()) return *this;
  ByteWriter w(out_);
  for (auto t : types)
    w.u16(t);
  pad(out_);
  return *this;
}

MessageBuilder& MessageBuilder::add_channel_number(std::uint16_t channel) {
  if (channel < kMinChannel || channel > kMaxChannel) {
    out_.clear();
    return *this;
  }
  begin_attribute(attr::kChannelNumber, 4);
  if (out_.empty()) return *this;
  ByteWriter w(out_);
  w.u16(channel);
  w.u16(0);
  return *this;
}

MessageBuilder& MessageBuilder::add_requested_transport(std::uint8_t protocol) {
  begin_attribute(attr::kRequestedTransport, 4);
  if (out_.empty()) return *this;
  ByteWriter w(out_);
  w.u8(protocol);
  w.zeros(3);
  return *this;
}

MessageBuilder& MessageBuilder::add_even_port(bool reserve_next) {
  begin_attribute(attr::kEvenPort, 1);
  if (out_.empty()) return *this;
  ByteWriter(out_).u8(reserve_next ? 0x80 : 0x00);
  pad(out_);
  return *this;
}

MessageBuilder& MessageBuilder::add_requested_address_family(AddressFamily family) {
  begin_attribute(attr::kRequestedAddressFamily, 4);
  if (out_.empty()) return *this;
  ByteWriter w(out_);
  w.u8(family == AddressFamily::kIPv4 ? kFamilyIPv4 : kFamilyIPv6);
  w.zeros(3);
  return *this;
}

Bytes MessageBuilder::finish(const IntegrityKey* key, Integrity integrity, bool fingerprint) {
  if (out_.size() < kHeaderSize) return {};
  // begin_attribute() sets the header length to include the attribute it starts, which is
  // exactly the adjustment RFC 8489 §14.5/§14.6/§14.7 ask for before hashing.
  if (key && (integrity == Integrity::kSha1 || integrity == Integrity::kBoth)) {
    begin_attribute(attr::kMessageIntegrity, kSha1MacSize);
    if (out_.empty()) return {};
    const auto mac = crypto::hmac_sha1(key->key, ByteSpan(out_).first(out_.size() - 4));
    // The MAC input excludes the attribute header just written (§14.5: "up to" the attribute).
    out_.insert(out_.end(), mac.begin(), mac.end());
  }
  if (key && (integrity == Integrity::kSha256 || integrity == Integrity::kBoth)) {
    begin_attribute(attr::kMessageIntegritySha256, kSha256MacMax);
    if (out_.empty()) return {};
    const auto mac = crypto::hmac_sha256(key->key, ByteSpan(out_).first(out_.size() - 4));
    out_.insert(out_.end(), mac.begin(), mac.end());
  }
  if (fingerprint) {
    begin_attribute(attr::kFingerprint, kFingerprintSize);
    if (out_.empty()) return {};
    const std::uint32_t crc =
        crypto::crc32(ByteSpan(out_).first(out_.size() - 4)) ^ kFingerprintXor;
    ByteWriter(out_).u32(crc);
  }
  // The builder is single-use: moving out leaves it empty, so later calls are no-ops.
  Bytes done = std::move(out_);
  out_.clear();
  return done;
}

}  // namespace roam::stun
