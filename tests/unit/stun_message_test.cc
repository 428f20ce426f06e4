#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/crypto/digest.h"
#include "common/stun/message.h"

namespace roam::stun {
namespace {

Bytes hex(std::string_view text) {
  auto b = from_hex(text);
  EXPECT_TRUE(b) << text;
  return b.value_or(Bytes{});
}

// RFC 5769 §2.1: sample request (short-term credential). Padding bytes are 0x20 as published.
const Bytes kRequest =
    hex("00 01 00 58"
        "21 12 a4 42"
        "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
        "80 22 00 10"
        "53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
        "00 24 00 04"
        "6e 00 01 ff"
        "80 29 00 08"
        "93 2f f9 b1 51 26 3b 36"
        "00 06 00 09"
        "65 76 74 6a 3a 68 36 76 59 20 20 20"
        "00 08 00 14"
        "9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
        "80 28 00 04"
        "e5 7a 3b cf");

// RFC 5769 §2.2: sample IPv4 response.
const Bytes kResponseV4 =
    hex("01 01 00 3c"
        "21 12 a4 42"
        "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
        "80 22 00 0b"
        "74 65 73 74 20 76 65 63 74 6f 72 20"
        "00 20 00 08"
        "00 01 a1 47 e1 12 a6 43"
        "00 08 00 14"
        "2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
        "80 28 00 04"
        "c0 7d 4c 96");

// RFC 5769 §2.3: sample IPv6 response.
const Bytes kResponseV6 =
    hex("01 01 00 48"
        "21 12 a4 42"
        "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
        "80 22 00 0b"
        "74 65 73 74 20 76 65 63 74 6f 72 20"
        "00 20 00 14"
        "00 02 a1 47"
        "01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
        "00 08 00 14"
        "a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41"
        "80 28 00 04"
        "c8 fb 0b 4c");

// RFC 5769 §2.4: sample request with long-term authentication (no FINGERPRINT).
const Bytes kLongTermRequest =
    hex("00 01 00 60"
        "21 12 a4 42"
        "78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
        "00 06 00 12"
        "e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00"
        "00 15 00 1c"
        "66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41"
        "00 14 00 0b"
        "65 78 61 6d 70 6c 65 2e 6f 72 67 00"
        "00 08 00 14"
        "f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66");

constexpr std::string_view kShortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt";
// "マトリックス" in UTF-8 (RFC 5769 §2.4: unaffected by SASLprep).
const std::string kLongTermUser =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
constexpr std::string_view kLongTermPassword = "TheMatrIX";  // after SASLprep
constexpr std::string_view kRealm = "example.org";
constexpr std::string_view kNonce = "f//499k954d6OL34oL9FSTvy64sA";

TransactionId tid(std::string_view text) {
  TransactionId id{};
  Bytes b = hex(text);
  EXPECT_EQ(b.size(), id.size());
  std::copy_n(b.begin(), std::min(b.size(), id.size()), id.begin());
  return id;
}
const TransactionId kVectorTid = tid("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae");
const TransactionId kLongTermTid = tid("78 ad 34 33 c6 ad 72 c0 29 da 41 2e");

std::vector<std::uint16_t> types_of(const Message& m) {
  std::vector<std::uint16_t> out;
  for (const auto& a : m.attributes())
    out.push_back(a.type);
  return out;
}

// Fixes the header length after a test edits the body by hand.
void fix_length(Bytes& msg) {
  store_be16(msg.data() + 2, static_cast<std::uint16_t>(msg.size() - kHeaderSize));
}

// Appends a raw TLV (zero padded) and fixes the header length.
void append_raw(Bytes& msg, std::uint16_t type, ByteSpan value, std::size_t length_field) {
  ByteWriter w(msg);
  w.u16(type);
  w.u16(static_cast<std::uint16_t>(length_field));
  w.bytes(value);
  w.zeros((4 - value.size() % 4) % 4);
  fix_length(msg);
}
void append_raw(Bytes& msg, std::uint16_t type, ByteSpan value) {
  append_raw(msg, type, value, value.size());
}

// Appends a correct FINGERPRINT: the CRC covers the message before the attribute, with the
// header length already counting it (RFC 8489 §14.7).
void append_fingerprint(Bytes& msg) {
  store_be16(msg.data() + 2, static_cast<std::uint16_t>(msg.size() + 8 - kHeaderSize));
  const std::uint32_t crc = crypto::crc32(msg) ^ kFingerprintXor;
  ByteWriter w(msg);
  w.u16(attr::kFingerprint);
  w.u16(4);
  w.u32(crc);
}

// Calls every accessor; used on every message a malformed-input test manages to parse.
void touch_everything(const Message& m) {
  for (const auto& a : m.attributes()) {
    ASSERT_LE(std::size_t{a.offset} + a.length, m.raw().size());
    (void)m.address(a.type);
    (void)m.xor_address(a.type);
    (void)m.string(a.type);
    (void)m.u32(a.type);
    (void)m.u64(a.type);
    (void)m.bytes(a.type);
  }
  (void)m.error_code();
  (void)m.unknown_attributes();
  (void)m.channel_number();
  (void)m.requested_transport();
  (void)m.even_port_reserve();
  (void)m.requested_address_family();
  (void)m.password_algorithms();
  (void)m.unknown_required();
  (void)m.check_integrity(IntegrityKey::short_term(kShortTermPassword));
}

// --- RFC 5769 vectors: decoding --------------------------------------------------------------

TEST(StunRfc5769, SampleRequestDecodes) {
  auto m = Message::parse(kRequest);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->method(), Method::kBinding);
  EXPECT_EQ(m->raw_method(), 0x001);
  EXPECT_EQ(m->cls(), Class::kRequest);
  EXPECT_EQ(m->transaction_id(), kVectorTid);
  EXPECT_EQ(m->raw().size(), kRequest.size());
  EXPECT_TRUE(std::equal(m->raw().begin(), m->raw().end(), kRequest.begin()));
  EXPECT_EQ(types_of(*m), (std::vector<std::uint16_t>{
                              attr::kSoftware, attr::kPriority, attr::kIceControlled,
                              attr::kUsername, attr::kMessageIntegrity, attr::kFingerprint}));
  EXPECT_EQ(m->string(attr::kSoftware).value(), "STUN test client");
  EXPECT_EQ(m->u32(attr::kPriority).value(), 0x6e0001ffu);
  EXPECT_EQ(m->u64(attr::kIceControlled).value(), 0x932ff9b151263b36u);
  EXPECT_FALSE(m->has(attr::kIceControlling));
  EXPECT_EQ(m->string(attr::kUsername).value(), "evtj:h6vY");  // 0x20 padding ignored
  const AttributeRef* user = m->find(attr::kUsername);
  ASSERT_NE(user, nullptr);
  EXPECT_EQ(user->length, 9);
  EXPECT_EQ(user->offset, 64u);
  EXPECT_TRUE(m->has_fingerprint());
  EXPECT_EQ(m->u32(attr::kFingerprint).value(), 0xe57a3bcfu);
  EXPECT_TRUE(m->unknown_required().empty());
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term(kShortTermPassword)), IntegrityResult::kOk);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("VOkJxbRl1RmTxUk/WvJxBT")),
            IntegrityResult::kMismatch);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("")), IntegrityResult::kMismatch);
  EXPECT_EQ(m->check_integrity(IntegrityKey::long_term("evtj:h6vY", "", kShortTermPassword)),
            IntegrityResult::kMismatch);
}

TEST(StunRfc5769, SampleIPv4ResponseDecodes) {
  auto m = Message::parse(kResponseV4);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->method(), Method::kBinding);
  EXPECT_EQ(m->cls(), Class::kSuccess);
  EXPECT_EQ(m->transaction_id(), kVectorTid);
  EXPECT_EQ(types_of(*m),
            (std::vector<std::uint16_t>{attr::kSoftware, attr::kXorMappedAddress,
                                        attr::kMessageIntegrity, attr::kFingerprint}));
  EXPECT_EQ(m->string(attr::kSoftware).value(), "test vector");
  auto mapped = m->xor_address(attr::kXorMappedAddress);
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(mapped->ip.is_v4());
  EXPECT_EQ(mapped->ip, IpAddress::v4({192, 0, 2, 1}));
  EXPECT_EQ(mapped->port, 32853);
  EXPECT_EQ(mapped->to_string(), "192.0.2.1:32853");
  // Read without the XOR it is a different (wrong) address: the XOR is really applied.
  EXPECT_NE(m->address(attr::kXorMappedAddress).value(), *mapped);
  EXPECT_EQ(m->address(attr::kMappedAddress).error(), AttributeError::kMissing);
  EXPECT_TRUE(m->has_fingerprint());
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term(kShortTermPassword)), IntegrityResult::kOk);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("wrong")), IntegrityResult::kMismatch);
}

TEST(StunRfc5769, SampleIPv6ResponseDecodes) {
  auto m = Message::parse(kResponseV6);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->method(), Method::kBinding);
  EXPECT_EQ(m->cls(), Class::kSuccess);
  EXPECT_EQ(m->transaction_id(), kVectorTid);
  EXPECT_EQ(m->string(attr::kSoftware).value(), "test vector");
  auto mapped = m->xor_address(attr::kXorMappedAddress);
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(mapped->ip.is_v6());
  EXPECT_EQ(mapped->ip, IpAddress::parse("2001:db8:1234:5678:11:2233:4455:6677").value());
  EXPECT_EQ(mapped->port, 32853);
  EXPECT_TRUE(m->has_fingerprint());
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term(kShortTermPassword)), IntegrityResult::kOk);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("wrong")), IntegrityResult::kMismatch);
}

TEST(StunRfc5769, LongTermRequestDecodes) {
  auto m = Message::parse(kLongTermRequest);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->method(), Method::kBinding);
  EXPECT_EQ(m->cls(), Class::kRequest);
  EXPECT_EQ(m->transaction_id(), kLongTermTid);
  EXPECT_EQ(types_of(*m), (std::vector<std::uint16_t>{attr::kUsername, attr::kNonce, attr::kRealm,
                                                      attr::kMessageIntegrity}));
  EXPECT_EQ(m->string(attr::kUsername).value(), kLongTermUser);
  EXPECT_EQ(m->string(attr::kNonce).value(), kNonce);
  EXPECT_EQ(m->string(attr::kRealm).value(), kRealm);
  EXPECT_FALSE(m->has_fingerprint());
  EXPECT_EQ(m->check_integrity(IntegrityKey::long_term(kLongTermUser, kRealm, kLongTermPassword)),
            IntegrityResult::kOk);
  EXPECT_EQ(m->check_integrity(IntegrityKey::long_term(kLongTermUser, kRealm, "thematrix")),
            IntegrityResult::kMismatch);
  EXPECT_EQ(
      m->check_integrity(IntegrityKey::long_term(kLongTermUser, "example.com", kLongTermPassword)),
      IntegrityResult::kMismatch);
  EXPECT_EQ(m->check_integrity(IntegrityKey::long_term(kLongTermUser, kRealm, kLongTermPassword,
                                                       PasswordAlgorithm::kSha256)),
            IntegrityResult::kMismatch);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term(kLongTermPassword)),
            IntegrityResult::kMismatch);
}

TEST(StunRfc5769, NoIntegrityIsReportedMissing) {
  Bytes msg = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid).finish();
  auto m = Message::parse(msg);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("x")), IntegrityResult::kMissing);
}

// --- RFC 5769 vectors: encoding --------------------------------------------------------------

// Our builder pads with zeros where the vectors pad with 0x20; everything else must match.
void expect_equal_but_padding(const Bytes& ours, const Bytes& vector,
                              const std::vector<std::size_t>& padding_at,
                              std::size_t compare_up_to) {
  ASSERT_EQ(ours.size(), vector.size());
  Bytes expected = vector;
  for (auto i : padding_at)
    expected[i] = std::byte{0};
  EXPECT_EQ(to_hex(ByteSpan(ours).first(compare_up_to)),
            to_hex(ByteSpan(expected).first(compare_up_to)));
}

TEST(StunRfc5769, SampleRequestEncodes) {
  const auto key = IntegrityKey::short_term(kShortTermPassword);
  Bytes out = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                  .add_string(attr::kSoftware, "STUN test client")
                  .add_u32(attr::kPriority, 0x6e0001ff)
                  .add_u64(attr::kIceControlled, 0x932ff9b151263b36)
                  .add_string(attr::kUsername, "evtj:h6vY")
                  .finish(&key, Integrity::kSha1, true);
  // Bytes 73..75 are USERNAME padding; MESSAGE-INTEGRITY starts at 76.
  expect_equal_but_padding(out, kRequest, {73, 74, 75}, 76);
  auto m = Message::parse(out);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(types_of(*m), types_of(Message::parse(kRequest).value()));
  EXPECT_EQ(m->string(attr::kSoftware).value(), "STUN test client");
  EXPECT_EQ(m->u32(attr::kPriority).value(), 0x6e0001ffu);
  EXPECT_EQ(m->u64(attr::kIceControlled).value(), 0x932ff9b151263b36u);
  EXPECT_EQ(m->string(attr::kUsername).value(), "evtj:h6vY");
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("wrong")), IntegrityResult::kMismatch);

  // With the vector's 0x20 padding put back, our MESSAGE-INTEGRITY and FINGERPRINT computation
  // reproduces the published bytes exactly.
  Bytes prefix(kRequest.begin(), kRequest.begin() + 76);
  store_be16(prefix.data() + 2, static_cast<std::uint16_t>(76 - 20 + 24));
  auto mac = crypto::hmac_sha1(key.key, prefix);
  EXPECT_EQ(to_hex(mac), to_hex(ByteSpan(kRequest).subspan(80, 20)));
  Bytes fp_input(kRequest.begin(), kRequest.begin() + 100);
  EXPECT_EQ(crypto::crc32(fp_input) ^ kFingerprintXor, 0xe57a3bcfu);
}

TEST(StunRfc5769, SampleIPv4ResponseEncodes) {
  const auto key = IntegrityKey::short_term(kShortTermPassword);
  const SocketAddress mapped{IpAddress::v4({192, 0, 2, 1}), 32853};
  Bytes out = MessageBuilder(Method::kBinding, Class::kSuccess, kVectorTid)
                  .add_string(attr::kSoftware, "test vector")
                  .add_xor_address(attr::kXorMappedAddress, mapped)
                  .finish(&key, Integrity::kSha1, true);
  expect_equal_but_padding(out, kResponseV4, {35}, 48);
  auto m = Message::parse(out);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->cls(), Class::kSuccess);
  EXPECT_EQ(m->string(attr::kSoftware).value(), "test vector");
  EXPECT_EQ(m->xor_address(attr::kXorMappedAddress).value(), mapped);
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk);
}

TEST(StunRfc5769, SampleIPv6ResponseEncodes) {
  const auto key = IntegrityKey::short_term(kShortTermPassword);
  const SocketAddress mapped{IpAddress::parse("2001:db8:1234:5678:11:2233:4455:6677").value(),
                             32853};
  Bytes out = MessageBuilder(Method::kBinding, Class::kSuccess, kVectorTid)
                  .add_string(attr::kSoftware, "test vector")
                  .add_xor_address(attr::kXorMappedAddress, mapped)
                  .finish(&key, Integrity::kSha1, true);
  expect_equal_but_padding(out, kResponseV6, {35}, 60);
  auto m = Message::parse(out);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->xor_address(attr::kXorMappedAddress).value(), mapped);
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk);
}

TEST(StunRfc5769, LongTermRequestEncodesByteExact) {
  // §2.4 pads with zeros, so the builder reproduces it byte for byte, MAC included.
  const auto key = IntegrityKey::long_term(kLongTermUser, kRealm, kLongTermPassword);
  Bytes out = MessageBuilder(Method::kBinding, Class::kRequest, kLongTermTid)
                  .add_string(attr::kUsername, kLongTermUser)
                  .add_string(attr::kNonce, kNonce)
                  .add_string(attr::kRealm, kRealm)
                  .finish(&key, Integrity::kSha1, false);
  EXPECT_EQ(to_hex(out), to_hex(kLongTermRequest));
  auto m = Message::parse(out);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk);
}

// --- Malformed input -------------------------------------------------------------------------

const std::vector<const Bytes*> kVectors = {&kRequest, &kResponseV4, &kResponseV6,
                                            &kLongTermRequest};

TEST(StunMalformed, EveryTruncationOfEveryVectorFails) {
  for (const Bytes* v : kVectors) {
    for (std::size_t n = 0; n < v->size(); ++n) {
      auto m = Message::parse(ByteSpan(*v).first(n));
      ASSERT_FALSE(m) << "length " << n;
      EXPECT_EQ(m.error(), n < kHeaderSize ? ParseError::kTooShort : ParseError::kBadLength);
    }
  }
}

TEST(StunMalformed, TruncationsWithFixedUpLengthNeverCrash) {
  // A truncation that keeps the header consistent either fails cleanly or (when cut exactly at
  // an attribute boundary) yields a message whose accessors stay in bounds.
  for (const Bytes* v : kVectors) {
    for (std::size_t n = kHeaderSize; n < v->size(); n += 4) {
      Bytes cut(v->begin(), v->begin() + static_cast<std::ptrdiff_t>(n));
      fix_length(cut);
      auto m = Message::parse(cut);
      if (m)
        touch_everything(*m);
      else
        EXPECT_EQ(m.error(), ParseError::kAttributeOverflow) << n;
    }
  }
}

TEST(StunMalformed, HeaderChecks) {
  Bytes msg = kRequest;
  msg[0] |= std::byte{0x80};
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kNotStun);
  msg = kRequest;
  msg[0] |= std::byte{0x40};
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kNotStun);
  msg = kRequest;
  msg[7] ^= std::byte{0x01};  // magic cookie
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kNotStun);
  msg = kRequest;
  store_be16(msg.data() + 2, 0x57);  // not a multiple of 4
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadLength);
  store_be16(msg.data() + 2, 0x5c);  // longer than the datagram
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadLength);
  store_be16(msg.data() + 2, 0x54);  // shorter than the datagram (trailing bytes)
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadLength);
  store_be16(msg.data() + 2, 0xFFFC);
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadLength);
  Bytes padded = kRequest;
  padded.push_back(std::byte{0});  // one datagram is one message: no trailing byte allowed
  EXPECT_EQ(Message::parse(padded).error(), ParseError::kBadLength);
  EXPECT_EQ(Message::parse({}).error(), ParseError::kTooShort);
  Bytes huge(kMaxMessageSize + 1, std::byte{0});
  EXPECT_EQ(Message::parse(huge).error(), ParseError::kTooLarge);
}

TEST(StunMalformed, AttributeLengthOverflow) {
  Bytes msg = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                  .add_string(attr::kSoftware, "abcd")
                  .finish();
  ASSERT_TRUE(Message::parse(msg));
  for (std::uint16_t len : {std::uint16_t{5}, std::uint16_t{8}, std::uint16_t{0xFFFF}}) {
    Bytes bad = msg;
    store_be16(bad.data() + 22, len);
    EXPECT_EQ(Message::parse(bad).error(), ParseError::kAttributeOverflow) << len;
  }
  // A length that fits but whose padding would not is impossible (lengths are multiples of 4);
  // a second attribute whose length runs one byte past the end is caught too.
  Bytes two = msg;
  append_raw(two, attr::kNonce, to_bytes("abc"));
  store_be16(two.data() + 30, 5);
  EXPECT_EQ(Message::parse(two).error(), ParseError::kAttributeOverflow);
}

TEST(StunMalformed, AttributeCountIsBounded) {
  MessageBuilder at_limit(Method::kBinding, Class::kIndication, kVectorTid);
  for (std::size_t i = 0; i < kMaxAttributes; ++i)
    at_limit.add_flag(attr::kUseCandidate);
  Bytes ok = at_limit.finish();
  auto m = Message::parse(ok);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->attributes().size(), kMaxAttributes);

  Bytes over = ok;
  append_raw(over, attr::kUseCandidate, {});
  EXPECT_EQ(Message::parse(over).error(), ParseError::kTooManyAttributes);

  // Attributes after MESSAGE-INTEGRITY are dropped but still count towards the work bound.
  MessageBuilder b(Method::kBinding, Class::kIndication, kVectorTid);
  const auto key = IntegrityKey::short_term("k");
  Bytes with_mi = b.finish(&key);
  for (std::size_t i = 0; i < kMaxAttributes; ++i)
    append_raw(with_mi, 0x7777, {});
  EXPECT_EQ(Message::parse(with_mi).error(), ParseError::kTooManyAttributes);
}

TEST(StunMalformed, AttributeAfterFingerprint) {
  Bytes msg = kRequest;
  append_raw(msg, attr::kSoftware, to_bytes("x"));
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kAttributeAfterFingerprint);
  // Even another FINGERPRINT, correct for its position.
  Bytes twice = kRequest;
  append_fingerprint(twice);
  EXPECT_EQ(Message::parse(twice).error(), ParseError::kAttributeAfterFingerprint);
}

TEST(StunMalformed, CorruptedFingerprint) {
  for (const Bytes* v : {&kRequest, &kResponseV4, &kResponseV6}) {
    Bytes msg = *v;
    msg.back() ^= std::byte{0x01};
    EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadFingerprint);
    msg = *v;
    msg[30] ^= std::byte{0x01};  // inside SOFTWARE: covered by the CRC
    EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadFingerprint);
    msg = *v;
    msg[9] ^= std::byte{0x01};  // transaction ID
    EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadFingerprint);
  }
  // Padding content is not ignored by the CRC (it covers bytes, not values).
  Bytes pad = kRequest;
  pad[75] = std::byte{0};
  EXPECT_EQ(Message::parse(pad).error(), ParseError::kBadFingerprint);
  // FINGERPRINT must be exactly 4 bytes.
  Bytes msg = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid).finish();
  append_raw(msg, attr::kFingerprint, hex("00 00 00 00 00 00 00 00"));
  EXPECT_EQ(Message::parse(msg).error(), ParseError::kBadFingerprint);
}

TEST(StunMalformed, CorruptedIntegrity) {
  Bytes msg = kLongTermRequest;  // no FINGERPRINT, so the MAC check is reached
  const auto key = IntegrityKey::long_term(kLongTermUser, kRealm, kLongTermPassword);
  for (std::size_t i : {std::size_t{0}, std::size_t{2}, std::size_t{9}, std::size_t{30},
                        std::size_t{100}, msg.size() - 1}) {
    Bytes bad = msg;
    bad[i] ^= std::byte{0x01};
    auto m = Message::parse(bad);
    if (!m) continue;  // e.g. the length byte: rejected earlier
    EXPECT_EQ(m->check_integrity(key), IntegrityResult::kMismatch) << i;
  }
  // Padding content has no meaning but is covered by the MAC (RFC 8489 §14.5 hashes bytes).
  Bytes pad = msg;
  pad[43] = std::byte{0x20};
  EXPECT_EQ(Message::parse(pad)->check_integrity(key), IntegrityResult::kMismatch);
  // A MESSAGE-INTEGRITY of the wrong size never matches.
  Bytes small = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid).finish();
  append_raw(small, attr::kMessageIntegrity, Bytes(16, std::byte{0}));
  EXPECT_EQ(Message::parse(small)->check_integrity(key), IntegrityResult::kMismatch);
}

TEST(StunMalformed, UnknownComprehensionRequiredAttributesAreReported) {
  Bytes msg = MessageBuilder(Method::kAllocate, Class::kRequest, kVectorTid)
                  .add_requested_transport(kTransportUdp)
                  .add_bytes(0x0002, to_bytes("resp"))  // RFC 3489 RESPONSE-ADDRESS
                  .add_bytes(0x7FFF, {})
                  .add_bytes(0x8FFF, to_bytes("optional"))  // comprehension-optional
                  .add_bytes(0x0002, to_bytes("again"))
                  .finish(nullptr, Integrity::kNone, true);
  auto m = Message::parse(msg);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->unknown_required(), (std::vector<std::uint16_t>{0x0002, 0x7FFF}));
  // Attributes this codec knows are not reported.
  auto v = Message::parse(kRequest);
  EXPECT_TRUE(v->unknown_required().empty());
}

// --- Integrity details -----------------------------------------------------------------------

TEST(StunIntegrity, AttributesAfterMessageIntegrityAreIgnored) {
  const auto key = IntegrityKey::short_term("pass");
  Bytes msg = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                  .add_string(attr::kUsername, "u")
                  .finish(&key, Integrity::kSha1);
  append_raw(msg, attr::kSoftware, to_bytes("injected"));
  append_raw(msg, attr::kUsername, to_bytes("other"));
  append_raw(msg, attr::kMessageIntegrity, Bytes(20, std::byte{0}));
  append_fingerprint(msg);
  auto m = Message::parse(msg);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(types_of(*m), (std::vector<std::uint16_t>{attr::kUsername, attr::kMessageIntegrity,
                                                      attr::kFingerprint}));
  EXPECT_FALSE(m->has(attr::kSoftware));
  EXPECT_EQ(m->string(attr::kUsername).value(), "u");
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk);
}

TEST(StunIntegrity, Sha256AndBoth) {
  const auto key = IntegrityKey::long_term("user", "realm", "pass", PasswordAlgorithm::kSha256);
  EXPECT_EQ(key.key.size(), 32u);
  Bytes sha256 = MessageBuilder(Method::kAllocate, Class::kRequest, kVectorTid)
                     .add_string(attr::kUsername, "user")
                     .finish(&key, Integrity::kSha256, true);
  auto m = Message::parse(sha256);
  ASSERT_TRUE(m);
  EXPECT_EQ(types_of(*m), (std::vector<std::uint16_t>{
                              attr::kUsername, attr::kMessageIntegritySha256, attr::kFingerprint}));
  EXPECT_EQ(m->find(attr::kMessageIntegritySha256)->length, 32);
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk);
  EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("pass")), IntegrityResult::kMismatch);

  Bytes both = MessageBuilder(Method::kAllocate, Class::kRequest, kVectorTid)
                   .add_string(attr::kUsername, "user")
                   .finish(&key, Integrity::kBoth, true);
  m = Message::parse(both);
  ASSERT_TRUE(m);
  EXPECT_EQ(types_of(*m),
            (std::vector<std::uint16_t>{attr::kUsername, attr::kMessageIntegrity,
                                        attr::kMessageIntegritySha256, attr::kFingerprint}));
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk);
  // Both MACs are right: the SHA-1 one covers the message up to itself.
  Bytes prefix(both.begin(), both.begin() + 28);
  store_be16(prefix.data() + 2, 8 + 24);
  auto mac1 = crypto::hmac_sha1(key.key, prefix);
  EXPECT_TRUE(std::equal(mac1.begin(), mac1.end(), both.begin() + 32));
  // SHA-256 is preferred: corrupting it fails even though MESSAGE-INTEGRITY is intact. The
  // FINGERPRINT is recomputed so the message still parses.
  Bytes bad = both;
  bad.resize(bad.size() - 8);
  bad[bad.size() - 1] ^= std::byte{0x01};
  fix_length(bad);
  append_fingerprint(bad);
  m = Message::parse(bad);
  ASSERT_TRUE(m) << describe(m.error());
  EXPECT_EQ(m->check_integrity(key), IntegrityResult::kMismatch);
}

// Builds a message ending in a MESSAGE-INTEGRITY-SHA256 truncated to `n` bytes.
Bytes with_truncated_sha256(const IntegrityKey& key, std::size_t n) {
  Bytes msg = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                  .add_string(attr::kUsername, "user")
                  .finish();
  store_be16(msg.data() + 2, static_cast<std::uint16_t>(msg.size() - kHeaderSize + 4 + n));
  auto mac = crypto::hmac_sha256(key.key, msg);
  ByteWriter w(msg);
  w.u16(attr::kMessageIntegritySha256);
  w.u16(static_cast<std::uint16_t>(n));
  w.bytes(ByteSpan(mac).first(std::min<std::size_t>(n, mac.size())));
  w.zeros(n > mac.size() ? n - mac.size() : 0);
  return msg;
}

TEST(StunIntegrity, TruncatedSha256) {
  const auto key = IntegrityKey::short_term("pass");
  for (std::size_t n : {16, 20, 24, 28, 32}) {
    auto m = Message::parse(with_truncated_sha256(key, n));
    ASSERT_TRUE(m) << n;
    EXPECT_EQ(m->check_integrity(key), IntegrityResult::kOk) << n;
    EXPECT_EQ(m->check_integrity(IntegrityKey::short_term("Pass")), IntegrityResult::kMismatch);
  }
  for (std::size_t n : {0, 4, 12, 36, 40}) {
    auto m = Message::parse(with_truncated_sha256(key, n));
    ASSERT_TRUE(m) << n;
    EXPECT_EQ(m->check_integrity(key), IntegrityResult::kMismatch) << n;
  }
}

TEST(StunIntegrity, LongTermKeys) {
  // RFC 8489 §9.2.2: MD5 / SHA-256 of "username:realm:password".
  auto md5 = crypto::md5(as_bytes("user:realm:pass"));
  EXPECT_EQ(IntegrityKey::long_term("user", "realm", "pass").key, Bytes(md5.begin(), md5.end()));
  auto sha = crypto::sha256(as_bytes("user:realm:pass"));
  EXPECT_EQ(IntegrityKey::long_term("user", "realm", "pass", PasswordAlgorithm::kSha256).key,
            Bytes(sha.begin(), sha.end()));
  EXPECT_EQ(to_hex(IntegrityKey::short_term("VOkJ").key), "564f6b4a");
  // RFC 5769 §2.4's key, MD5("<user>:example.org:TheMatrIX").
  EXPECT_EQ(IntegrityKey::long_term(kLongTermUser, kRealm, kLongTermPassword).key.size(), 16u);
}

// --- Typed accessors -------------------------------------------------------------------------

Message parse_ok(const Bytes& b) {
  auto m = Message::parse(b);
  EXPECT_TRUE(m) << (m ? "" : describe(m.error()));
  return m ? *m : Message{};
}

TEST(StunAttributes, TurnAttributesRoundTrip) {
  const SocketAddress peer6{IpAddress::parse("2001:db8::7").value(), 4000};
  const SocketAddress relay4{IpAddress::v4({203, 0, 113, 5}), 50000};
  const SocketAddress alt{IpAddress::v4({198, 51, 100, 1}), 3478};
  const Bytes data = to_bytes("hello, peer");
  Bytes msg = MessageBuilder(Method::kAllocate, Class::kSuccess, kVectorTid)
                  .add_xor_address(attr::kXorPeerAddress, peer6)
                  .add_xor_address(attr::kXorRelayedAddress, relay4)
                  .add_address(attr::kAlternateServer, alt)
                  .add_address(attr::kMappedAddress, peer6)
                  .add_u32(attr::kLifetime, 600)
                  .add_u64(attr::kReservationToken, 0x0102030405060708)
                  .add_bytes(attr::kData, data)
                  .add_channel_number(0x4001)
                  .add_requested_transport(kTransportUdp)
                  .add_even_port(true)
                  .add_requested_address_family(AddressFamily::kIPv6)
                  .add_flag(attr::kDontFragment)
                  .add_string(attr::kRealm, "example.org")
                  .finish(nullptr, Integrity::kNone, true);
  Message m = parse_ok(msg);
  EXPECT_EQ(m.method(), Method::kAllocate);
  EXPECT_EQ(m.cls(), Class::kSuccess);
  EXPECT_EQ(m.xor_address(attr::kXorPeerAddress).value(), peer6);
  EXPECT_EQ(m.xor_address(attr::kXorRelayedAddress).value(), relay4);
  EXPECT_EQ(m.address(attr::kAlternateServer).value(), alt);
  EXPECT_EQ(m.address(attr::kMappedAddress).value(), peer6);
  EXPECT_EQ(m.u32(attr::kLifetime).value(), 600u);
  EXPECT_EQ(m.u64(attr::kReservationToken).value(), 0x0102030405060708u);
  EXPECT_EQ(m.bytes(attr::kData).value(), data);
  EXPECT_EQ(m.channel_number().value(), 0x4001);
  EXPECT_EQ(m.requested_transport().value(), kTransportUdp);
  EXPECT_TRUE(m.even_port_reserve().value());
  EXPECT_EQ(m.find(attr::kEvenPort)->length, 1);
  EXPECT_EQ(m.requested_address_family().value(), AddressFamily::kIPv6);
  EXPECT_TRUE(m.has(attr::kDontFragment));
  EXPECT_EQ(m.find(attr::kDontFragment)->length, 0);
  EXPECT_EQ(m.string(attr::kRealm).value(), "example.org");
  EXPECT_TRUE(m.unknown_required().empty());

  Message no = parse_ok(MessageBuilder(Method::kAllocate, Class::kRequest, kVectorTid)
                            .add_even_port(false)
                            .add_requested_address_family(AddressFamily::kIPv4)
                            .finish());
  EXPECT_FALSE(no.even_port_reserve().value());
  EXPECT_EQ(no.requested_address_family().value(), AddressFamily::kIPv4);
}

TEST(StunAttributes, MissingAttributes) {
  Message m = parse_ok(MessageBuilder(Method::kRefresh, Class::kRequest, kVectorTid).finish());
  EXPECT_EQ(m.address(attr::kMappedAddress).error(), AttributeError::kMissing);
  EXPECT_EQ(m.xor_address(attr::kXorPeerAddress).error(), AttributeError::kMissing);
  EXPECT_EQ(m.error_code().error(), AttributeError::kMissing);
  EXPECT_EQ(m.unknown_attributes().error(), AttributeError::kMissing);
  EXPECT_EQ(m.string(attr::kUsername).error(), AttributeError::kMissing);
  EXPECT_EQ(m.u32(attr::kLifetime).error(), AttributeError::kMissing);
  EXPECT_EQ(m.u64(attr::kIceControlling).error(), AttributeError::kMissing);
  EXPECT_EQ(m.bytes(attr::kData).error(), AttributeError::kMissing);
  EXPECT_EQ(m.channel_number().error(), AttributeError::kMissing);
  EXPECT_EQ(m.requested_transport().error(), AttributeError::kMissing);
  EXPECT_EQ(m.even_port_reserve().error(), AttributeError::kMissing);
  EXPECT_EQ(m.requested_address_family().error(), AttributeError::kMissing);
  EXPECT_EQ(m.password_algorithms().error(), AttributeError::kMissing);
  EXPECT_EQ(m.find(attr::kData), nullptr);
  EXPECT_FALSE(m.has_fingerprint());
}

TEST(StunAttributes, BadLengthsAndValues) {
  auto one = [](std::uint16_t type, std::string_view value_hex) {
    Bytes msg = MessageBuilder(Method::kBinding, Class::kSuccess, kVectorTid)
                    .add_bytes(type, hex(value_hex))
                    .finish();
    return parse_ok(msg);
  };
  // Addresses: family byte, lengths.
  EXPECT_EQ(one(attr::kXorMappedAddress, "00 01 a1 47 e1 12 a6")
                .xor_address(attr::kXorMappedAddress)
                .error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kXorMappedAddress, "00 02 a1 47 e1 12 a6 43")
                .xor_address(attr::kXorMappedAddress)
                .error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kXorMappedAddress, "00 03 a1 47 e1 12 a6 43")
                .xor_address(attr::kXorMappedAddress)
                .error(),
            AttributeError::kBadValue);
  EXPECT_EQ(one(attr::kMappedAddress, "00 01").address(attr::kMappedAddress).error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kMappedAddress, "ff 01 12 34 0a 00 00 01")
                .address(attr::kMappedAddress)
                .value()
                .to_string(),
            "10.0.0.1:4660");  // the reserved byte is ignored
  // Integers.
  EXPECT_EQ(one(attr::kPriority, "00 00 01").u32(attr::kPriority).error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kPriority, "00 00 00 01 00").u32(attr::kPriority).error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kIceControlling, "00 00 00 01").u64(attr::kIceControlling).error(),
            AttributeError::kBadLength);
  // TURN attributes.
  EXPECT_EQ(one(attr::kChannelNumber, "40 00").channel_number().error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kChannelNumber, "3f ff 00 00").channel_number().error(),
            AttributeError::kBadValue);
  EXPECT_EQ(one(attr::kChannelNumber, "50 00 00 00").channel_number().error(),
            AttributeError::kBadValue);
  EXPECT_EQ(one(attr::kChannelNumber, "4f ff ff ff").channel_number().value(), 0x4fff);
  EXPECT_EQ(one(attr::kRequestedTransport, "11").requested_transport().error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kRequestedTransport, "06 00 00 00").requested_transport().value(), 6);
  EXPECT_EQ(one(attr::kEvenPort, "80 00 00 00").even_port_reserve().error(),
            AttributeError::kBadLength);
  EXPECT_TRUE(one(attr::kEvenPort, "ff").even_port_reserve().value());
  EXPECT_EQ(one(attr::kRequestedAddressFamily, "03 00 00 00").requested_address_family().error(),
            AttributeError::kBadValue);
  EXPECT_EQ(one(attr::kRequestedAddressFamily, "01").requested_address_family().error(),
            AttributeError::kBadLength);
  // UNKNOWN-ATTRIBUTES.
  EXPECT_EQ(one(attr::kUnknownAttributes, "00 02 7f ff").unknown_attributes().value(),
            (std::vector<std::uint16_t>{0x0002, 0x7fff}));
  EXPECT_EQ(one(attr::kUnknownAttributes, "00 02 7f").unknown_attributes().error(),
            AttributeError::kBadLength);
  EXPECT_TRUE(one(attr::kUnknownAttributes, "").unknown_attributes().value().empty());
  // PASSWORD-ALGORITHMS.
  EXPECT_EQ(one(attr::kPasswordAlgorithms, "00 02 00 00 00 01 00 00").password_algorithms().value(),
            (std::vector<PasswordAlgorithm>{PasswordAlgorithm::kSha256, PasswordAlgorithm::kMd5}));
  EXPECT_EQ(one(attr::kPasswordAlgorithms, "00 09 00 03 aa bb cc 00 00 01 00 00")
                .password_algorithms()
                .value()
                .size(),
            2u);
  EXPECT_EQ(one(attr::kPasswordAlgorithms, "00 02 00").password_algorithms().error(),
            AttributeError::kBadLength);
  EXPECT_EQ(one(attr::kPasswordAlgorithms, "00 02 00 08 00 00 00 00").password_algorithms().error(),
            AttributeError::kBadLength);
}

TEST(StunAttributes, ErrorCode) {
  for (int code : {300, 400, 401, 420, 437, 438, 441, 442, 486, 487, 508, 699}) {
    Message m = parse_ok(MessageBuilder(Method::kAllocate, Class::kError, kVectorTid)
                             .add_error_code(code, "Reason phrase")
                             .finish());
    auto e = m.error_code();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, code);
    EXPECT_EQ(e->reason, "Reason phrase");
  }
  auto raw = [](std::string_view value_hex) {
    Bytes msg = MessageBuilder(Method::kAllocate, Class::kError, kVectorTid)
                    .add_bytes(attr::kErrorCode, hex(value_hex))
                    .finish();
    return parse_ok(msg).error_code();
  };
  EXPECT_EQ(raw("00 00 04 01").value().code, 401);
  EXPECT_EQ(raw("00 00 04 01").value().reason, "");
  EXPECT_EQ(raw("ff ff fc 01").value().code, 401);  // reserved bits ignored (RFC 8489 §14.8)
  EXPECT_EQ(raw("00 00 02 00").error(), AttributeError::kBadValue);  // class 2
  EXPECT_EQ(raw("00 00 07 00").error(), AttributeError::kBadValue);  // class 7
  EXPECT_EQ(raw("00 00 04 64").error(), AttributeError::kBadValue);  // number 100
  EXPECT_EQ(raw("00 00 04").error(), AttributeError::kBadLength);
  Bytes long_reason(4 + kMaxReasonSize + 1, std::byte{'a'});
  long_reason[2] = std::byte{4};
  long_reason[3] = std::byte{0};
  Message m = parse_ok(MessageBuilder(Method::kAllocate, Class::kError, kVectorTid)
                           .add_bytes(attr::kErrorCode, long_reason)
                           .finish());
  EXPECT_EQ(m.error_code().error(), AttributeError::kBadLength);
}

TEST(StunAttributes, StringSizeCaps) {
  struct Case {
    std::uint16_t type;
    std::size_t cap;
  };
  for (Case c : {Case{attr::kUsername, kMaxUsernameSize}, Case{attr::kRealm, kMaxRealmSize},
                 Case{attr::kNonce, kMaxNonceSize}, Case{attr::kSoftware, kMaxSoftwareSize}}) {
    std::string at_cap(c.cap, 'x');
    Message ok = parse_ok(MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                              .add_string(c.type, at_cap)
                              .finish());
    EXPECT_EQ(ok.string(c.type).value(), at_cap);
    // The parser accepts the oversized value (it is only bytes) but string() refuses it.
    Bytes over(c.cap + 1, std::byte{'x'});
    Message big = parse_ok(MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                               .add_bytes(c.type, over)
                               .finish());
    EXPECT_EQ(big.string(c.type).error(), AttributeError::kBadLength);
    EXPECT_EQ(big.bytes(c.type).value(), over);
    // The builder refuses to produce it.
    EXPECT_TRUE(MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                    .add_string(c.type, std::string(c.cap + 1, 'x'))
                    .finish()
                    .empty());
  }
}

TEST(StunAttributes, DuplicatesReturnTheFirst) {
  Message m = parse_ok(MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                           .add_u32(attr::kPriority, 1)
                           .add_u32(attr::kPriority, 2)
                           .finish());
  EXPECT_EQ(m.u32(attr::kPriority).value(), 1u);
  EXPECT_EQ(m.attributes().size(), 2u);
}

TEST(StunAttributes, XorAddressUsesTheTransactionId) {
  TransactionId id{};
  for (std::size_t i = 0; i < id.size(); ++i)
    id[i] = std::byte(0xA0 + i);
  const SocketAddress a{IpAddress::parse("fe80::1:2:3:4").value(), 65535};
  Bytes msg = MessageBuilder(Method::kBinding, Class::kSuccess, id)
                  .add_xor_address(attr::kXorMappedAddress, a)
                  .finish();
  EXPECT_EQ(parse_ok(msg).xor_address(attr::kXorMappedAddress).value(), a);
  // The same attribute bytes under another transaction ID decode to another IPv6 address
  // (IPv4 only depends on the cookie).
  Bytes other = msg;
  other[8] ^= std::byte{0xFF};
  EXPECT_NE(parse_ok(other).xor_address(attr::kXorMappedAddress).value(), a);
}

// --- Message types and builder ---------------------------------------------------------------

TEST(StunMessageType, Rfc8489Figure3) {
  EXPECT_EQ(message_type(0x001, Class::kRequest), 0x0001);
  EXPECT_EQ(message_type(0x001, Class::kIndication), 0x0011);
  EXPECT_EQ(message_type(0x001, Class::kSuccess), 0x0101);
  EXPECT_EQ(message_type(0x001, Class::kError), 0x0111);
  EXPECT_EQ(message_type(0x003, Class::kRequest), 0x0003);
  EXPECT_EQ(message_type(0x003, Class::kError), 0x0113);
  EXPECT_EQ(message_type(0x004, Class::kSuccess), 0x0104);
  EXPECT_EQ(message_type(0x006, Class::kIndication), 0x0016);
  EXPECT_EQ(message_type(0x007, Class::kIndication), 0x0017);
  EXPECT_EQ(message_type(0x008, Class::kSuccess), 0x0108);
  EXPECT_EQ(message_type(0x009, Class::kError), 0x0119);
  EXPECT_EQ(message_type(0xFFF, Class::kError), 0x3FFF);
  EXPECT_EQ(message_type(0xFFF, Class::kRequest), 0x3EEF);
}

TEST(StunMessageType, EveryMethodAndClassRoundTrips) {
  for (std::uint16_t method = 0; method <= 0xFFF; method += 7) {
    for (Class cls : {Class::kRequest, Class::kIndication, Class::kSuccess, Class::kError}) {
      Bytes msg = MessageBuilder(static_cast<Method>(method), cls, kVectorTid).finish();
      EXPECT_EQ(load_be16(msg.data()), message_type(method, cls));
      auto m = Message::parse(msg);
      ASSERT_TRUE(m);
      EXPECT_EQ(m->raw_method(), method);
      EXPECT_EQ(m->cls(), cls);
    }
  }
}

TEST(StunBuilder, HeaderAndPadding) {
  Bytes msg = MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid)
                  .add_string(attr::kUsername, "abcde")
                  .finish();
  EXPECT_EQ(to_hex(msg),
            "0001000c2112a442b7e7a701bc34d686fa87dfae"
            "000600056162636465000000");
}

TEST(StunBuilder, InvalidCallsYieldEmptyMessage) {
  auto b = [] { return MessageBuilder(Method::kBinding, Class::kRequest, kVectorTid); };
  EXPECT_TRUE(b().add_bytes(attr::kData, Bytes(0x10000, std::byte{1})).finish().empty());
  EXPECT_TRUE(b().add_error_code(299, "x").finish().empty());
  EXPECT_TRUE(b().add_error_code(700, "x").finish().empty());
  EXPECT_TRUE(b().add_error_code(400, std::string(kMaxReasonSize + 1, 'x')).finish().empty());
  EXPECT_TRUE(b().add_channel_number(0x3FFF).finish().empty());
  EXPECT_TRUE(b().add_channel_number(0x5000).finish().empty());
  // The total body is bounded by the 16-bit length field.
  auto big = b();
  big.add_bytes(attr::kData, Bytes(0xFFF0, std::byte{1}));
  EXPECT_FALSE(Bytes(big.finish()).empty());
  auto too_big = b();
  too_big.add_bytes(attr::kData, Bytes(0xFFF0, std::byte{1}));
  too_big.add_u64(attr::kIceControlling, 1);
  EXPECT_TRUE(too_big.finish().empty());
  // Room for the attributes but not for MESSAGE-INTEGRITY + FINGERPRINT.
  const auto key = IntegrityKey::short_term("k");
  auto no_room = b();
  no_room.add_bytes(attr::kData, Bytes(0xFFF0 - 8, std::byte{1}));
  EXPECT_TRUE(no_room.finish(&key, Integrity::kSha1, true).empty());
  // No more attributes than parse() accepts, integrity and FINGERPRINT included.
  auto many = b();
  for (std::size_t i = 0; i < kMaxAttributes; ++i)
    many.add_flag(attr::kUseCandidate);
  EXPECT_FALSE(Bytes(many.finish()).empty());
  auto with_fingerprint = b();
  for (std::size_t i = 0; i < kMaxAttributes - 1; ++i) {
    with_fingerprint.add_flag(attr::kUseCandidate);
  }
  EXPECT_FALSE(with_fingerprint.finish(nullptr, Integrity::kNone, true).empty());
  auto over = b();
  for (std::size_t i = 0; i < kMaxAttributes - 1; ++i)
    over.add_flag(attr::kUseCandidate);
  EXPECT_TRUE(over.finish(&key, Integrity::kSha1, true).empty());
  // Single use.
  auto once = b();
  EXPECT_FALSE(once.finish().empty());
  EXPECT_TRUE(once.add_flag(attr::kUseCandidate).finish().empty());
  // A key with Integrity::kNone or no key at all adds nothing.
  EXPECT_EQ(b().finish(&key, Integrity::kNone).size(), kHeaderSize);
  EXPECT_EQ(b().finish(nullptr, Integrity::kBoth).size(), kHeaderSize);
}

TEST(StunBuilder, LargestMessageParses) {
  Bytes msg = MessageBuilder(Method::kSend, Class::kIndication, kVectorTid)
                  .add_bytes(attr::kData, Bytes(0xFFFC - 4 - 8, std::byte{7}))
                  .finish(nullptr, Integrity::kNone, true);
  ASSERT_EQ(msg.size(), kHeaderSize + 0xFFFC);
  auto m = Message::parse(msg);
  ASSERT_TRUE(m) << describe(m.error());
  // Offsets beyond 65535 are representable.
  EXPECT_GT(m->find(attr::kFingerprint)->offset, 0xFFFFu);
  EXPECT_EQ(m->u32(attr::kFingerprint).value(),
            crypto::crc32(ByteSpan(msg).first(msg.size() - 8)) ^ kFingerprintXor);
}

TEST(StunDescribe, EveryErrorHasText) {
  for (auto e : {ParseError::kTooShort, ParseError::kNotStun, ParseError::kBadLength,
                 ParseError::kAttributeOverflow, ParseError::kTooManyAttributes,
                 ParseError::kAttributeAfterFingerprint, ParseError::kBadFingerprint,
                 ParseError::kTooLarge}) {
    EXPECT_FALSE(describe(e).empty());
  }
  for (auto e : {AttributeError::kMissing, AttributeError::kBadLength, AttributeError::kBadValue}) {
    EXPECT_FALSE(describe(e).empty());
  }
}

}  // namespace
}  // namespace roam::stun
