#include <gtest/gtest.h>

#include "common/crypto/digest.h"

namespace roam::crypto {
namespace {

std::string hex(ByteSpan b) {
  return to_hex(b);
}

// FIPS 180 / RFC 1321 / RFC 2202 / RFC 4231 known answers.
TEST(Digest, KnownAnswers) {
  EXPECT_EQ(hex(md5(as_bytes("abc"))), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(hex(sha1(as_bytes("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(hmac_sha1(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(hex(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Digest, IncrementalSha256MatchesOneShot) {
  Sha256 h;
  h.update(as_bytes("a"));
  h.update(as_bytes("bc"));
  EXPECT_EQ(h.finish(), sha256(as_bytes("abc")));
}

TEST(Crc32, CheckValue) {
  // The CRC-32/ISO-HDLC check value.
  EXPECT_EQ(crc32(as_bytes("123456789")), 0xCBF43926u);
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equal(as_bytes("abc"), as_bytes("abc")));
  EXPECT_FALSE(constant_time_equal(as_bytes("abc"), as_bytes("abd")));
  EXPECT_FALSE(constant_time_equal(as_bytes("abc"), as_bytes("ab")));
}

TEST(Base64, Rfc4648Vectors) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* padded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  const char* url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(base64_encode(as_bytes(plain[i])), padded[i]);
    EXPECT_EQ(base64url_encode(as_bytes(plain[i])), url[i]);
    EXPECT_EQ(base64_decode(padded[i]), to_bytes(plain[i]));
    EXPECT_EQ(base64url_decode(url[i]), to_bytes(plain[i]));
  }
  EXPECT_EQ(base64url_encode(from_hex("fbff").value()), "-_8");
  EXPECT_FALSE(base64_decode("Zg="));       // bad padding length
  EXPECT_FALSE(base64_decode("Z===="));     // too much padding
  EXPECT_FALSE(base64url_decode("Zh"));     // non-canonical trailing bits
  EXPECT_FALSE(base64url_decode("Zm9v!"));  // outside the alphabet
  EXPECT_FALSE(base64url_decode("Z"));
}

}  // namespace
}  // namespace roam::crypto
