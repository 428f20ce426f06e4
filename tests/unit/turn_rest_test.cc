#include "common/auth/turn_rest.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace roam::auth::turn_rest {
namespace {

using std::chrono::seconds;

constexpr std::string_view kSecret = "roam-test-shared-secret-0123456789";
constexpr std::int64_t kNow = 1700000000;

// Expected passwords computed independently with Python's hmac/hashlib/base64:
//   base64.b64encode(hmac.new(secret, username.encode(), hashlib.sha1).digest())
TEST(TurnRest, KnownAnswer) {
  auto c = mint(kSecret, "peer-alice", kNow, seconds{600});
  ASSERT_TRUE(c) << describe(c.error());
  EXPECT_EQ(c->username, "1700000600:peer-alice");
  EXPECT_EQ(c->password, "IJ6gNyjEfrOeijNiqU/Q4ZcohhE=");
  EXPECT_EQ(c->expires_at_unix, 1700000600);

  auto day = mint(kSecret, "bob@example", kNow, kMaxTtl);
  ASSERT_TRUE(day);
  EXPECT_EQ(day->username, "1700086400:bob@example");
  EXPECT_EQ(day->password, "qXnx5A5QEVd40jdlfHVNEmukc7U=");
}

TEST(TurnRest, VerifyRoundTripAndExpiry) {
  auto c = mint(kSecret, "peer-alice", kNow, seconds{600}).value();
  auto v = verify(kSecret, c.username, c.password, kNow);
  ASSERT_TRUE(v) << describe(v.error());
  EXPECT_EQ(v->peer_id, "peer-alice");
  EXPECT_EQ(v->expires_at_unix, kNow + 600);
  // Valid up to and including the expiry second (coturn's rule), expired one second later.
  EXPECT_TRUE(verify(kSecret, c.username, c.password, kNow + 600));
  EXPECT_EQ(verify(kSecret, c.username, c.password, kNow + 601).error(), TurnRestError::kExpired);
}

TEST(TurnRest, VerifyRejectsAlteredCredentials) {
  auto c = mint(kSecret, "peer-alice", kNow).value();
  // Another secret, a changed password, a changed peer, an extended expiry.
  EXPECT_EQ(verify("another-shared-secret-of-length", c.username, c.password, kNow).error(),
            TurnRestError::kWrongPassword);
  auto tampered = c.password;
  tampered[3] = tampered[3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify(kSecret, c.username, tampered, kNow).error(), TurnRestError::kWrongPassword);
  EXPECT_EQ(verify(kSecret, c.username, "", kNow).error(), TurnRestError::kWrongPassword);
  EXPECT_EQ(verify(kSecret, "1700000600:peer-mallory", c.password, kNow).error(),
            TurnRestError::kWrongPassword);
  EXPECT_EQ(verify(kSecret, "1900000000:peer-alice", c.password, kNow).error(),
            TurnRestError::kWrongPassword);
  // An expired and altered credential reports the alteration, not the expiry.
  EXPECT_EQ(verify(kSecret, c.username, tampered, kNow + 100000).error(),
            TurnRestError::kWrongPassword);
}

TEST(TurnRest, VerifyRejectsMalformedUsernames) {
  for (std::string_view username :
       {"", "peer-alice", ":peer-alice", "1700000600:", "1700000600:a:b", "-1:peer", "+5:peer",
        "17x0:peer", "9999999999999:peer", "1700000600:peer alice", "0x10:peer"}) {
    auto password = mint(kSecret, "p", kNow).value().password;  // any well-formed password
    auto r = verify(kSecret, username, password, kNow);
    ASSERT_FALSE(r) << username;
    EXPECT_EQ(r.error(), TurnRestError::kMalformedUsername) << username;
  }
}

TEST(TurnRest, PeerIdValidation) {
  EXPECT_TRUE(mint(kSecret, "a", kNow));
  EXPECT_TRUE(mint(kSecret, std::string(kMaxPeerIdSize, 'p'), kNow));
  for (std::string_view bad : {std::string_view{}, std::string_view{"a:b"}, std::string_view{":"},
                               std::string_view{"peer alice"}, std::string_view{"peer\n"},
                               std::string_view{"p\0q", 3}, std::string_view{"caf\xc3\xa9"}}) {
    auto r = mint(kSecret, bad, kNow);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), TurnRestError::kBadPeerId);
  }
  EXPECT_EQ(mint(kSecret, std::string(kMaxPeerIdSize + 1, 'p'), kNow).error(),
            TurnRestError::kBadPeerId);
}

TEST(TurnRest, SecretTtlAndTimeBounds) {
  EXPECT_EQ(mint("", "peer", kNow).error(), TurnRestError::kBadSecret);
  EXPECT_EQ(mint(std::string(kMinSecretSize - 1, 's'), "peer", kNow).error(),
            TurnRestError::kBadSecret);
  EXPECT_TRUE(mint(std::string(kMinSecretSize, 's'), "peer", kNow));
  EXPECT_EQ(mint(std::string(kMaxSecretSize + 1, 's'), "peer", kNow).error(),
            TurnRestError::kBadSecret);
  EXPECT_EQ(verify("short", "1:peer", "x", kNow).error(), TurnRestError::kBadSecret);
  EXPECT_EQ(mint(kSecret, "peer", kNow, seconds{0}).error(), TurnRestError::kBadTtl);
  EXPECT_EQ(mint(kSecret, "peer", kNow, seconds{-5}).error(), TurnRestError::kBadTtl);
  EXPECT_EQ(mint(kSecret, "peer", kNow, kMaxTtl + seconds{1}).error(), TurnRestError::kBadTtl);
  EXPECT_EQ(mint(kSecret, "peer", -1).error(), TurnRestError::kBadTime);
  EXPECT_EQ(mint(kSecret, "peer", kMaxUnixTime + 1).error(), TurnRestError::kBadTime);
  // Nothing is minted that verify() could not parse: the expiry stays within kMaxUnixTime.
  EXPECT_EQ(mint(kSecret, "peer", kMaxUnixTime, seconds{1}).error(), TurnRestError::kBadTime);
  auto ok = mint(kSecret, "peer", kMaxUnixTime - kMaxTtl.count(), kMaxTtl).value();
  EXPECT_TRUE(verify(kSecret, ok.username, ok.password, kMaxUnixTime));
}

TEST(TurnRest, DescriptionsAreDistinctAndNeverEmpty) {
  std::set<std::string_view> texts;
  for (int e = 0; e <= static_cast<int>(TurnRestError::kExpired); ++e) {
    auto text = describe(static_cast<TurnRestError>(e));
    EXPECT_GT(text.size(), 20u);
    EXPECT_TRUE(texts.insert(text).second);
  }
}

}  // namespace
}  // namespace roam::auth::turn_rest
