// STUN messages (RFC 8489) with the TURN (RFC 8656, RFC 5766) and ICE (RFC 8445) attributes:
// a bounds-checked parser into an owned, bounded struct, typed attribute accessors, and a
// builder that appends MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT. Pure functions over bytes:
// no sockets, no clocks, no globals.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/bytes.h"
#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::stun {

// RFC 8489 §5: fixed header, magic cookie, 96-bit transaction ID.
inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::size_t kAttributeHeaderSize = 4;
using TransactionId = std::array<std::byte, 12>;

// Bounds on what the parser accepts. STUN over UDP must fit a datagram; 64 attributes is far
// more than any real message carries (RFC 8489 sends < 15) and caps parsing work.
inline constexpr std::size_t kMaxMessageSize = 65535 + kHeaderSize;
inline constexpr std::size_t kMaxAttributes = 64;
// RFC 8489 §14.3, §14.9, §14.10, §14.14, §14.8: textual attribute limits (bytes, after encoding).
inline constexpr std::size_t kMaxUsernameSize = 513;
inline constexpr std::size_t kMaxRealmSize = 763;
inline constexpr std::size_t kMaxNonceSize = 763;
inline constexpr std::size_t kMaxSoftwareSize = 763;
inline constexpr std::size_t kMaxReasonSize = 763;

// RFC 8489 §5: the class bits C1/C0 of the message type.
enum class Class : std::uint8_t { kRequest = 0, kIndication = 1, kSuccess = 2, kError = 3 };

// RFC 8489 §18.2, RFC 8656 §17.
enum class Method : std::uint16_t {
  kBinding = 0x001,
  kAllocate = 0x003,
  kRefresh = 0x004,
  kSend = 0x006,
  kData = 0x007,
  kCreatePermission = 0x008,
  kChannelBind = 0x009,
};

// Attribute type codes. 0x0000–0x7FFF are comprehension-required (RFC 8489 §14).
namespace attr {
inline constexpr std::uint16_t kMappedAddress = 0x0001;           // RFC 8489 §14.1
inline constexpr std::uint16_t kUsername = 0x0006;                // RFC 8489 §14.3
inline constexpr std::uint16_t kMessageIntegrity = 0x0008;        // RFC 8489 §14.5
inline constexpr std::uint16_t kErrorCode = 0x0009;               // RFC 8489 §14.8
inline constexpr std::uint16_t kUnknownAttributes = 0x000A;       // RFC 8489 §14.13
inline constexpr std::uint16_t kChannelNumber = 0x000C;           // RFC 8656 §18.1
inline constexpr std::uint16_t kLifetime = 0x000D;                // RFC 8656 §18.2
inline constexpr std::uint16_t kXorPeerAddress = 0x0012;          // RFC 8656 §18.3
inline constexpr std::uint16_t kData = 0x0013;                    // RFC 8656 §18.4
inline constexpr std::uint16_t kRealm = 0x0014;                   // RFC 8489 §14.9
inline constexpr std::uint16_t kNonce = 0x0015;                   // RFC 8489 §14.10
inline constexpr std::uint16_t kXorRelayedAddress = 0x0016;       // RFC 8656 §18.5
inline constexpr std::uint16_t kRequestedAddressFamily = 0x0017;  // RFC 8656 §18.6
inline constexpr std::uint16_t kEvenPort = 0x0018;                // RFC 8656 §18.7
inline constexpr std::uint16_t kRequestedTransport = 0x0019;      // RFC 8656 §18.8
inline constexpr std::uint16_t kDontFragment = 0x001A;            // RFC 8656 §18.9
inline constexpr std::uint16_t kMessageIntegritySha256 = 0x001C;  // RFC 8489 §14.6
inline constexpr std::uint16_t kPasswordAlgorithm = 0x001D;       // RFC 8489 §14.12
inline constexpr std::uint16_t kUserhash = 0x001E;                // RFC 8489 §14.4
inline constexpr std::uint16_t kXorMappedAddress = 0x0020;        // RFC 8489 §14.2
inline constexpr std::uint16_t kReservationToken = 0x0022;        // RFC 5766 §14.9
inline constexpr std::uint16_t kPriority = 0x0024;                // RFC 8445 §7.1.1
inline constexpr std::uint16_t kUseCandidate = 0x0025;            // RFC 8445 §7.1.2
// Comprehension-optional (0x8000–0xFFFF).
inline constexpr std::uint16_t kAdditionalAddressFamily = 0x8000;  // RFC 8656 §18.11
inline constexpr std::uint16_t kAddressErrorCode = 0x8001;         // RFC 8656 §18.12
inline constexpr std::uint16_t kPasswordAlgorithms = 0x8002;       // RFC 8489 §14.11
inline constexpr std::uint16_t kAlternateDomain = 0x8003;          // RFC 8489 §14.16
inline constexpr std::uint16_t kSoftware = 0x8022;                 // RFC 8489 §14.14
inline constexpr std::uint16_t kAlternateServer = 0x8023;          // RFC 8489 §14.15
inline constexpr std::uint16_t kFingerprint = 0x8028;              // RFC 8489 §14.7
inline constexpr std::uint16_t kIceControlled = 0x8029;            // RFC 8445 §7.1.3
inline constexpr std::uint16_t kIceControlling = 0x802A;           // RFC 8445 §7.1.3

constexpr bool is_comprehension_required(std::uint16_t type) {
  return type < 0x8000;
}
}  // namespace attr

// RFC 8489 §14.7: FINGERPRINT is CRC-32 XOR this value.
inline constexpr std::uint32_t kFingerprintXor = 0x5354554E;

// RFC 8656 §18.8: REQUESTED-TRANSPORT protocol number for UDP.
inline constexpr std::uint8_t kTransportUdp = 17;

// Well-known error codes (RFC 8489 §14.8, RFC 8656 §19, RFC 8445 §7.3.1.1).
namespace error {
inline constexpr int kTryAlternate = 300;
inline constexpr int kBadRequest = 400;
inline constexpr int kUnauthorized = 401;
inline constexpr int kForbidden = 403;
inline constexpr int kNotFound = 404;  // coturn: unknown or used reservation token
inline constexpr int kUnknownAttribute = 420;
inline constexpr int kAllocationMismatch = 437;
inline constexpr int kStaleNonce = 438;
inline constexpr int kAddressFamilyNotSupported = 440;
inline constexpr int kWrongCredentials = 441;
inline constexpr int kUnsupportedTransportProtocol = 442;
inline constexpr int kPeerAddressFamilyMismatch = 443;
inline constexpr int kAllocationQuotaReached = 486;
inline constexpr int kRoleConflict = 487;
inline constexpr int kServerError = 500;
inline constexpr int kInsufficientCapacity = 508;
}  // namespace error

enum class ParseError {
  kTooShort,                   // fewer than 20 bytes
  kNotStun,                    // top two bits set or wrong magic cookie
  kBadLength,                  // header length not a multiple of 4 or not matching the datagram
  kAttributeOverflow,          // an attribute's length runs past the end of the message
  kTooManyAttributes,          // more than kMaxAttributes
  kAttributeAfterFingerprint,  // FINGERPRINT must be last (RFC 8489 §14.7)
  kBadFingerprint,             // FINGERPRINT present but wrong
  kTooLarge,                   // more than kMaxMessageSize bytes
};
std::string_view describe(ParseError e);

enum class AttributeError {
  kMissing,    // the attribute is not in the message
  kBadLength,  // its length does not fit its type
  kBadValue,   // unknown address family, reserved bits, out-of-range code, ...
};
std::string_view describe(AttributeError e);

// Outcome of an integrity check (RFC 8489 §9.1.3, §9.2.4).
enum class IntegrityResult { kOk, kMissing, kMismatch };

// One attribute as found in a parsed message: its value is `length` bytes at `offset`.
struct AttributeRef {
  std::uint16_t type;
  std::uint32_t offset;  // of the value, from the start of the message (may exceed 65535)
  std::uint16_t length;  // of the value, without padding
};

struct ErrorCode {
  int code = 0;  // 300..699
  std::string reason;
};

// RFC 8489 §14.11/§14.12.
enum class PasswordAlgorithm : std::uint16_t { kMd5 = 0x0001, kSha256 = 0x0002 };

// A key for MESSAGE-INTEGRITY: short-term = the password itself (RFC 8489 §9.1.1), long-term =
// MD5 or SHA-256 of "username:realm:password" (§9.2.2). Strings are used as given: callers pass
// already-prepared (OpaqueString/SASLprep) text.
struct IntegrityKey {
  Bytes key;
  static IntegrityKey short_term(std::string_view password);
  static IntegrityKey long_term(std::string_view username, std::string_view realm,
                                std::string_view password,
                                PasswordAlgorithm algorithm = PasswordAlgorithm::kMd5);
};

// A parsed STUN message. Owns a copy of its bytes (they are small and must outlive the
// datagram buffer); attribute accessors decode on demand and never read out of bounds.
class Message {
 public:
  // Parses one complete message (one UDP datagram). Verifies FINGERPRINT when present.
  // Unknown comprehension-required attributes do not fail parsing: see unknown_required().
  static expected<Message, ParseError> parse(ByteSpan datagram);

  Method method() const { return static_cast<Method>(method_); }
  std::uint16_t raw_method() const { return method_; }
  Class cls() const { return class_; }
  const TransactionId& transaction_id() const { return transaction_id_; }
  ByteSpan raw() const { return raw_; }

  // Attributes in wire order, up to and including MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT;
  // attributes after MESSAGE-INTEGRITY other than those two are dropped (RFC 8489 §14.5).
  const std::vector<AttributeRef>& attributes() const { return attributes_; }
  bool has(std::uint16_t type) const { return find(type) != nullptr; }
  // The first attribute of that type (RFC 8489 §14: later duplicates are ignored).
  const AttributeRef* find(std::uint16_t type) const;
  ByteSpan value(const AttributeRef& a) const { return ByteSpan(raw_).subspan(a.offset, a.length); }
  // Comprehension-required attribute types this codec does not know (for a 420 answer).
  std::vector<std::uint16_t> unknown_required() const;
  bool has_fingerprint() const { return has(attr::kFingerprint); }

  // Typed accessors; kMissing if absent.
  expected<SocketAddress, AttributeError> address(std::uint16_t type) const;  // MAPPED/ALTERNATE
  expected<SocketAddress, AttributeError> xor_address(std::uint16_t type) const;  // XOR-*
  expected<ErrorCode, AttributeError> error_code() const;
  expected<std::vector<std::uint16_t>, AttributeError> unknown_attributes() const;
  expected<std::string, AttributeError> string(std::uint16_t type) const;  // bounded per type
  expected<std::uint32_t, AttributeError> u32(std::uint16_t type) const;
  expected<std::uint64_t, AttributeError> u64(std::uint16_t type) const;
  expected<Bytes, AttributeError> bytes(std::uint16_t type) const;
  expected<std::uint16_t, AttributeError> channel_number() const;
  expected<std::uint8_t, AttributeError> requested_transport() const;
  expected<bool, AttributeError> even_port_reserve() const;  // the R bit
  expected<AddressFamily, AttributeError> requested_address_family() const;
  expected<std::vector<PasswordAlgorithm>, AttributeError> password_algorithms() const;

  // Checks MESSAGE-INTEGRITY-SHA256 when present (preferred, RFC 8489 §14.6), else
  // MESSAGE-INTEGRITY. Constant-time comparison.
  IntegrityResult check_integrity(const IntegrityKey& key) const;

 private:
  Bytes raw_;
  std::vector<AttributeRef> attributes_;
  TransactionId transaction_id_{};
  std::uint16_t method_ = 0;
  Class class_ = Class::kRequest;
};

// Which integrity attributes finish() appends.
enum class Integrity { kNone, kSha1, kSha256, kBoth };

// Builds one message. Attributes are written in call order and zero-padded to 4 bytes.
class MessageBuilder {
 public:
  MessageBuilder(Method method, Class cls, const TransactionId& id);

  MessageBuilder& add_bytes(std::uint16_t type, ByteSpan value);
  MessageBuilder& add_string(std::uint16_t type, std::string_view value);
  MessageBuilder& add_u32(std::uint16_t type, std::uint32_t value);
  MessageBuilder& add_u64(std::uint16_t type, std::uint64_t value);
  MessageBuilder& add_flag(std::uint16_t type);  // zero-length (USE-CANDIDATE, DONT-FRAGMENT)
  MessageBuilder& add_address(std::uint16_t type, const SocketAddress& address);
  MessageBuilder& add_xor_address(std::uint16_t type, const SocketAddress& address);
  MessageBuilder& add_error_code(int code, std::string_view reason);
  MessageBuilder& add_unknown_attributes(const std::vector<std::uint16_t>& types);
  MessageBuilder& add_channel_number(std::uint16_t channel);
  MessageBuilder& add_requested_transport(std::uint8_t protocol);
  MessageBuilder& add_even_port(bool reserve_next);
  MessageBuilder& add_requested_address_family(AddressFamily family);

  // Appends the integrity attribute(s) computed with `key` (if any) and FINGERPRINT (if asked),
  // then returns the finished message. The builder is single-use. Returns an empty buffer if an
  // earlier call was invalid (a value over 65535 bytes or one making the message exceed
  // kMaxMessageSize or kMaxAttributes, a string over its kMax*Size, an error code outside
  // 300..699, a channel outside 0x4000..0x4FFF) or if finish() was already called.
  Bytes finish(const IntegrityKey* key = nullptr, Integrity integrity = Integrity::kSha1,
               bool fingerprint = false);

 private:
  void begin_attribute(std::uint16_t type, std::size_t length);
  Bytes out_;
  TransactionId id_;
  std::size_t attribute_count_ = 0;  // never more than kMaxAttributes, so parse() accepts it
};

// The message type field for (method, class): RFC 8489 §5, figure 3.
std::uint16_t message_type(std::uint16_t method, Class cls);

}  // namespace roam::stun
