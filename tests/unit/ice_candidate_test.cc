#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/ice/candidate.h"
#include "common/ice/candidate_text.h"

namespace roam::ice {
namespace {

IpAddress ip(std::string_view text) {
  return IpAddress::parse(text).value();
}

// --- Priorities (RFC 8445 §5.1.2) ---------------------------------------------------------

TEST(IceCandidatePriority, RecommendedTypePreferencesGiveExactValues) {
  EXPECT_EQ(recommended_type_preference(CandidateType::kHost), 126);
  EXPECT_EQ(recommended_type_preference(CandidateType::kPeerReflexive), 110);
  EXPECT_EQ(recommended_type_preference(CandidateType::kServerReflexive), 100);
  EXPECT_EQ(recommended_type_preference(CandidateType::kRelayed), 0);
  // Local preference 65535 (single-homed), component 1: the values of RFC 8839's examples.
  EXPECT_EQ(compute_priority(CandidateType::kHost, 65535), 2130706431u);
  EXPECT_EQ(compute_priority(CandidateType::kPeerReflexive, 65535), 1862270975u);
  EXPECT_EQ(compute_priority(CandidateType::kServerReflexive, 65535), 1694498815u);
  EXPECT_EQ(compute_priority(CandidateType::kRelayed, 65535), 16777215u);
  // Component 2 (RTCP in RFC 8445) is one lower.
  EXPECT_EQ(compute_priority(CandidateType::kHost, 65535, 2), 2130706430u);
}

TEST(IceCandidatePriority, FormulaAndClamping) {
  EXPECT_EQ(compute_priority(std::uint8_t{110}, 0x1234, 1), (110u << 24) + (0x1234u << 8) + 255u);
  EXPECT_EQ(compute_priority(std::uint8_t{0}, 1, 256), 256u);
  // Out-of-range inputs are clamped: type preference to 126, component into 1..256.
  EXPECT_EQ(compute_priority(std::uint8_t{200}, 7, 1), compute_priority(std::uint8_t{126}, 7, 1));
  EXPECT_EQ(compute_priority(std::uint8_t{5}, 7, 0), compute_priority(std::uint8_t{5}, 7, 1));
  EXPECT_EQ(compute_priority(std::uint8_t{5}, 7, 999), compute_priority(std::uint8_t{5}, 7, 256));
  // The all-zero corner would be 0, which is not a valid priority.
  EXPECT_EQ(compute_priority(std::uint8_t{0}, 0, 256), kMinPriority);
  EXPECT_LE(compute_priority(std::uint8_t{255}, 65535, 1), kMaxPriority);
  // Type dominates local preference, which dominates component.
  EXPECT_GT(compute_priority(CandidateType::kServerReflexive, 0, 256),
            compute_priority(CandidateType::kRelayed, 65535, 1));
}

TEST(IceCandidatePriority, LocalPreferenceInterleavesFamiliesPerInterface) {
  EXPECT_EQ(local_preference(0, AddressFamily::kIPv6), 65535);
  EXPECT_EQ(local_preference(0, AddressFamily::kIPv6, 1), 65534);
  EXPECT_EQ(local_preference(0, AddressFamily::kIPv4), 65535 - 16);
  EXPECT_EQ(local_preference(1, AddressFamily::kIPv6), 65535 - 32);
  EXPECT_EQ(local_preference(1, AddressFamily::kIPv4), 65535 - 48);
  // IPv6 is never below IPv4 of the same interface; a better interface beats both families
  // of a worse one.
  for (std::uint16_t rank = 0; rank + 1 < kMaxInterfaces; ++rank) {
    auto v6 = local_preference(rank, AddressFamily::kIPv6, kMaxAddressesPerFamily - 1).value();
    auto v4 = local_preference(rank, AddressFamily::kIPv4).value();
    auto next_v6 = local_preference(rank + 1, AddressFamily::kIPv6).value();
    EXPECT_GT(v6, v4);
    EXPECT_GT(local_preference(rank, AddressFamily::kIPv4, kMaxAddressesPerFamily - 1).value(),
              next_v6);
  }
  EXPECT_FALSE(local_preference(kMaxInterfaces, AddressFamily::kIPv4));
  EXPECT_FALSE(local_preference(0, AddressFamily::kIPv4, kMaxAddressesPerFamily));
}

TEST(IceCandidatePriority, LocalPreferencesAreDistinct) {
  std::set<std::uint16_t> seen;
  for (std::uint16_t rank = 0; rank < kMaxInterfaces; ++rank) {
    for (auto family : {AddressFamily::kIPv4, AddressFamily::kIPv6}) {
      for (std::uint16_t index = 0; index < kMaxAddressesPerFamily; ++index) {
        auto pref = local_preference(rank, family, index);
        ASSERT_TRUE(pref);
        EXPECT_TRUE(seen.insert(*pref).second) << rank << " " << index;
      }
    }
  }
  EXPECT_EQ(seen.size(), std::size_t{kMaxInterfaces} * 2 * kMaxAddressesPerFamily);
}

// --- Foundations (RFC 8445 §5.1.1.3) ------------------------------------------------------

TEST(IceCandidateFoundation, KnownAnswers) {
  // Computed independently (Python hashlib/base64) from the encoding documented in candidate.cc.
  EXPECT_EQ(compute_foundation(CandidateType::kHost, ip("192.0.2.1"), std::nullopt), "j4SonZAj");
  EXPECT_EQ(compute_foundation(CandidateType::kServerReflexive, ip("10.0.0.2"), ip("198.51.100.7")),
            "qLMjcmGP");
  EXPECT_EQ(compute_foundation(CandidateType::kRelayed, ip("2001:db8::5"), ip("2001:db8::3478")),
            "zlg5NoSA");
}

TEST(IceCandidateFoundation, EqualExactlyWhenTypeBaseServerAndTransportMatch) {
  const auto base = ip("10.0.0.2");
  const auto stun = ip("198.51.100.7");
  const auto f = compute_foundation(CandidateType::kServerReflexive, base, stun);
  EXPECT_EQ(f, compute_foundation(CandidateType::kServerReflexive, base, stun, Transport::kUdp));
  EXPECT_NE(f, compute_foundation(CandidateType::kRelayed, base, stun));
  EXPECT_NE(f, compute_foundation(CandidateType::kServerReflexive, ip("10.0.0.3"), stun));
  EXPECT_NE(f, compute_foundation(CandidateType::kServerReflexive, base, ip("198.51.100.8")));
  EXPECT_NE(f, compute_foundation(CandidateType::kServerReflexive, base, std::nullopt));
  // The same bytes in another family are another base.
  EXPECT_NE(compute_foundation(CandidateType::kHost, ip("::ffff:10.0.0.2"), std::nullopt),
            compute_foundation(CandidateType::kHost, base, std::nullopt));
  EXPECT_NE(compute_foundation(CandidateType::kHost, base, std::nullopt),
            compute_foundation(CandidateType::kPeerReflexive, base, std::nullopt));
}

TEST(IceCandidateFoundation, IsShortAndMadeOfIceChars) {
  for (auto type : {CandidateType::kHost, CandidateType::kServerReflexive,
                    CandidateType::kPeerReflexive, CandidateType::kRelayed}) {
    auto f = compute_foundation(type, ip("2001:db8::1"), ip("192.0.2.9"));
    ASSERT_EQ(f.size(), 8u);
    Candidate c{.foundation = f, .address = {ip("192.0.2.1"), 1}};
    EXPECT_TRUE(validate(c)) << f;
  }
}

// --- Pairs (RFC 8445 §6.1.2) --------------------------------------------------------------

TEST(IceCandidatePair, PriorityFormula) {
  constexpr std::uint64_t g = 2130706431;  // host
  constexpr std::uint64_t d = 1694498815;  // srflx
  EXPECT_EQ(pair_priority(g, d), (d << 32) + 2 * g + 1);
  EXPECT_EQ(pair_priority(d, g), (d << 32) + 2 * g);
  EXPECT_EQ(pair_priority(g, g), (g << 32) + 2 * g);
  // The tie-break bit makes the two agents' views of one pair differ by exactly one.
  EXPECT_EQ(pair_priority(g, d) - pair_priority(d, g), 1u);
  EXPECT_EQ(pair_priority(1, 1), (1ull << 32) + 2);
}

TEST(IceCandidatePair, PriorityAtTheTopOfTheRangeDoesNotOverflow) {
  constexpr std::uint64_t m = kMaxPriority;
  EXPECT_EQ(pair_priority(kMaxPriority, kMaxPriority), 0x7FFF'FFFF'FFFF'FFFEull);
  EXPECT_EQ(pair_priority(kMaxPriority, kMaxPriority), (m << 32) + 2 * m);
  EXPECT_EQ(pair_priority(kMaxPriority, kMaxPriority - 1), ((m - 1) << 32) + 2 * m + 1);
  // Invalid 32-bit inputs are clamped rather than wrapping past 2^64 (unclamped, 2^32 *
  // (2^32-1) + 2 * (2^32-1) + ... exceeds 64 bits).
  EXPECT_EQ(pair_priority(UINT32_MAX, UINT32_MAX), pair_priority(kMaxPriority, kMaxPriority));
  EXPECT_EQ(pair_priority(UINT32_MAX, 5), pair_priority(kMaxPriority, 5));
  EXPECT_GT(pair_priority(UINT32_MAX, UINT32_MAX), pair_priority(kMaxPriority - 1, kMaxPriority));
}

TEST(IceCandidatePair, PriorityOrdersByWorseCandidateFirst) {
  // MIN dominates: a pair whose weaker side is better always ranks higher.
  EXPECT_GT(pair_priority(1000, 1000), pair_priority(kMaxPriority, 999));
  EXPECT_GT(pair_priority(1000, 1001), pair_priority(1000, 1000));
}

TEST(IceCandidatePair, Foundation) {
  Candidate local{.foundation = "abc"};
  Candidate remote{.foundation = "x+/1"};
  auto pf = pair_foundation(local, remote);
  EXPECT_EQ(pf.local, "abc");
  EXPECT_EQ(pf.remote, "x+/1");
  EXPECT_EQ(pf.to_string(), "abc:x+/1");
  EXPECT_EQ(pf, pair_foundation(local, remote));
  EXPECT_NE(pf, pair_foundation(remote, local));
  // "ab"+"c" vs "a"+"bc" must not collide.
  EXPECT_NE(pair_foundation(Candidate{.foundation = "ab"}, Candidate{.foundation = "c"}),
            pair_foundation(Candidate{.foundation = "a"}, Candidate{.foundation = "bc"}));
}

// --- Text form (RFC 8839 §5.1) ------------------------------------------------------------

TEST(IceCandidateText, Rfc8839ServerReflexiveExample) {
  auto c = parse_candidate(
      "a=candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 203.0.113.141 rport 8998");
  ASSERT_TRUE(c) << describe(c.error());
  EXPECT_EQ(c->foundation, "2");
  EXPECT_EQ(c->component, 1);
  EXPECT_EQ(c->transport, Transport::kUdp);
  EXPECT_EQ(c->priority, 1694498815u);
  EXPECT_EQ(c->address, SocketAddress::parse("192.0.2.3:45664"));
  EXPECT_EQ(c->type, CandidateType::kServerReflexive);
  EXPECT_EQ(c->related, SocketAddress::parse("203.0.113.141:8998"));
  EXPECT_TRUE(c->extensions.empty());
  EXPECT_EQ(to_string(*c),
            "candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 203.0.113.141 rport "
            "8998");
}

TEST(IceCandidateText, Rfc8839HostExampleAndPrefixes) {
  const std::string canonical = "candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ host";
  auto a = parse_candidate("a=" + canonical + "\r\n");
  auto b = parse_candidate(canonical);
  auto c = parse_candidate("1 1 UDP 2130706431 203.0.113.141 8998 typ host\n");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  ASSERT_TRUE(c);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(*a, *c);
  EXPECT_EQ(a->type, CandidateType::kHost);
  EXPECT_FALSE(a->related);
  EXPECT_EQ(to_string(*a), canonical);
}

TEST(IceCandidateText, Ipv6RoundTrip) {
  auto c = parse_candidate(
      "candidate:3 1 udp 2130706175 2001:DB8:0:0:0:0:0:1 5000 typ relay raddr 2001:db8::ff rport "
      "0");
  ASSERT_TRUE(c) << describe(c.error());
  EXPECT_TRUE(c->address.ip.is_v6());
  EXPECT_EQ(c->type, CandidateType::kRelayed);
  const std::string canonical =
      "candidate:3 1 UDP 2130706175 2001:db8::1 5000 typ relay raddr 2001:db8::ff rport 0";
  EXPECT_EQ(to_string(*c), canonical);
  EXPECT_EQ(parse_candidate(canonical), c);
}

TEST(IceCandidateText, ExtensionsArePreservedInOrder) {
  const std::string line =
      "candidate:842163049 1 udp 1677729535 198.51.100.20 56143 typ srflx raddr 10.0.0.5 rport "
      "56143 generation 0 ufrag abc network-id 1 network-cost 10";
  auto c = parse_candidate(line);
  ASSERT_TRUE(c) << describe(c.error());
  const std::vector<ExtensionAttribute> expected_ext = {
      {"generation", "0"}, {"ufrag", "abc"}, {"network-id", "1"}, {"network-cost", "10"}};
  EXPECT_EQ(c->extensions, expected_ext);
  auto text = to_string(*c);
  EXPECT_EQ(text,
            "candidate:842163049 1 UDP 1677729535 198.51.100.20 56143 typ srflx raddr 10.0.0.5 "
            "rport 56143 generation 0 ufrag abc network-id 1 network-cost 10");
  EXPECT_EQ(parse_candidate(text), c);
  // Extensions right after the type, without raddr/rport.
  auto host = parse_candidate("candidate:1 1 UDP 2130706431 192.0.2.1 9 typ host generation 0");
  ASSERT_TRUE(host);
  ASSERT_EQ(host->extensions.size(), 1u);
  EXPECT_EQ(host->extensions[0], (ExtensionAttribute{"generation", "0"}));
}

TEST(IceCandidateText, KeywordsAreCaseInsensitiveAndNumbersMayHaveLeadingZeros) {
  auto c = parse_candidate(
      "a=CANDIDATE:f 001 Udp 0000000042 192.0.2.1 00080 TYP PRFLX "
      "RADDR 0.0.0.0 RPORT 0");
  ASSERT_TRUE(c) << describe(c.error());
  EXPECT_EQ(c->component, 1);
  EXPECT_EQ(c->priority, 42u);
  EXPECT_EQ(c->address.port, 80);
  EXPECT_EQ(c->type, CandidateType::kPeerReflexive);
  // RFC 8839 §5.1: a hidden related address is 0.0.0.0 port 0.
  EXPECT_EQ(c->related, SocketAddress::parse("0.0.0.0:0"));
  EXPECT_EQ(to_string(*c), "candidate:f 1 UDP 42 192.0.2.1 80 typ prflx raddr 0.0.0.0 rport 0");
}

TEST(IceCandidateText, ReflexiveWithoutRelatedAddressIsAccepted) {
  auto c = parse_candidate("candidate:1 1 UDP 1694498815 192.0.2.3 45664 typ srflx");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->related);
}

TEST(IceCandidateText, EndOfCandidates) {
  EXPECT_TRUE(is_end_of_candidates("a=end-of-candidates"));
  EXPECT_TRUE(is_end_of_candidates("a=end-of-candidates\r\n"));
  EXPECT_TRUE(is_end_of_candidates("end-of-candidates"));
  EXPECT_FALSE(is_end_of_candidates("a=end-of-candidates extra"));
  EXPECT_FALSE(is_end_of_candidates("candidate:1 1 UDP 1 192.0.2.1 1 typ host"));
  auto r = parse_candidate("a=end-of-candidates\r\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), CandidateError::kEndOfCandidates);
}

TEST(IceCandidateText, ValidatedCandidatesRoundTrip) {
  Candidate c;
  c.type = CandidateType::kServerReflexive;
  c.foundation = compute_foundation(c.type, ip("10.1.2.3"), ip("198.51.100.1"));
  c.priority = compute_priority(c.type, local_preference(2, AddressFamily::kIPv4).value());
  c.address = SocketAddress::parse("203.0.113.9:40000").value();
  c.related = SocketAddress::parse("10.1.2.3:5000").value();
  c.extensions = {{"network-id", "3"}};
  ASSERT_TRUE(validate(c));
  EXPECT_EQ(parse_candidate(to_string(c)), c);
}

TEST(IceCandidateText, LargestCanonicalCandidateStillParses) {
  Candidate c;
  c.foundation = std::string(kMaxFoundationSize, 'F');
  c.component = 256;
  c.priority = kMaxPriority;
  c.address = {ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 65535};
  c.type = CandidateType::kServerReflexive;
  c.related = SocketAddress{ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 65535};
  // Fill the extension budget exactly: 2 x (1 + 256 + 2) + 1 x (32 + 216 + 2) = 768.
  c.extensions = {{"a", std::string(256, 'v')},
                  {"b", std::string(256, 'w')},
                  {std::string(32, 'n'), std::string(216, 'x')}};
  ASSERT_TRUE(validate(c)) << describe(validate(c).error());
  auto text = to_string(c);
  EXPECT_LE(text.size(), kMaxCanonicalCandidateSize);
  EXPECT_EQ(parse_candidate(text), c);
  c.extensions.back().value.push_back('x');  // one byte over the budget
  EXPECT_EQ(validate(c).error(), CandidateError::kTooManyExtensions);
}

TEST(IceCandidateText, ExtensionBounds) {
  const std::string base = "candidate:1 1 UDP 2130706431 192.0.2.1 9 typ host";
  std::string sixteen = base;
  for (int i = 0; i < 16; ++i)
    sixteen += " e" + std::to_string(i) + " v";
  auto ok = parse_candidate(sixteen);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->extensions.size(), 16u);
  EXPECT_EQ(parse_candidate(sixteen + " e16 v").error(), CandidateError::kTooManyExtensions);
  // Value length: 256 is fine, 257 is not.
  EXPECT_TRUE(parse_candidate(base + " ufrag " + std::string(256, 'u')));
  EXPECT_EQ(parse_candidate(base + " ufrag " + std::string(257, 'u')).error(),
            CandidateError::kBadExtension);
  // Name length: 32 is fine, 33 is not.
  EXPECT_TRUE(parse_candidate(base + " " + std::string(32, 'n') + " 1"));
  EXPECT_EQ(parse_candidate(base + " " + std::string(33, 'n') + " 1").error(),
            CandidateError::kBadExtension);
  // Total: three 255-byte values need 774 bytes > 768.
  const std::string v(255, 'v');
  EXPECT_TRUE(parse_candidate(base + " a " + v + " b " + v));
  EXPECT_EQ(parse_candidate(base + " a " + v + " b " + v + " c " + v).error(),
            CandidateError::kTooManyExtensions);
}

struct Rejection {
  const char* line;
  CandidateError error;
};

class IceCandidateRejection : public ::testing::TestWithParam<Rejection> {};

TEST_P(IceCandidateRejection, IsRejectedWithTheRightError) {
  auto r = parse_candidate(GetParam().line);
  ASSERT_FALSE(r) << GetParam().line;
  EXPECT_EQ(r.error(), GetParam().error) << GetParam().line << ": " << describe(r.error());
}

// Each line differs from "candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ host" in one spot.
INSTANTIATE_TEST_SUITE_P(
    Malformed, IceCandidateRejection,
    ::testing::Values(
        // Missing fields and framing.
        Rejection{"", CandidateError::kMissingField},
        Rejection{"candidate:", CandidateError::kMissingField},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ", CandidateError::kMissingField},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998", CandidateError::kMissingField},
        Rejection{"a=ice-ufrag:abcd", CandidateError::kNotCandidate},
        Rejection{"a=1 1 UDP 2130706431 192.0.2.1 8998 typ host", CandidateError::kNotCandidate},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ host ",
                  CandidateError::kBadSyntax},
        Rejection{"candidate: 1 1 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadSyntax},
        Rejection{"candidate:1 1  UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadSyntax},
        Rejection{"candidate:1\t1 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadSyntax},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ host\r\n\r\n",
                  CandidateError::kBadSyntax},
        Rejection{"candidate:\xc3\xa9 1 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadSyntax},
        // Foundation.
        Rejection{"candidate:123456789012345678901234567890123 1 UDP 2130706431 192.0.2.1 8998 "
                  "typ host",
                  CandidateError::kBadFoundation},
        Rejection{"candidate:a-b 1 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadFoundation},
        // Component.
        Rejection{"candidate:1 0 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadComponent},
        Rejection{"candidate:1 257 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadComponent},
        Rejection{"candidate:1 0001 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadComponent},
        Rejection{"candidate:1 -1 UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadComponent},
        Rejection{"candidate:1 1a UDP 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kBadComponent},
        // Transport.
        Rejection{"candidate:1 1 TCP 2130706431 192.0.2.1 9 typ host tcptype active",
                  CandidateError::kUnsupportedTransport},
        Rejection{"candidate:1 1 UDP/DTLS 2130706431 192.0.2.1 8998 typ host",
                  CandidateError::kUnsupportedTransport},
        // Priority.
        Rejection{"candidate:1 1 UDP 0 192.0.2.1 8998 typ host", CandidateError::kBadPriority},
        Rejection{"candidate:1 1 UDP 2147483648 192.0.2.1 8998 typ host",
                  CandidateError::kBadPriority},
        Rejection{"candidate:1 1 UDP 4294967296 192.0.2.1 8998 typ host",
                  CandidateError::kBadPriority},
        Rejection{"candidate:1 1 UDP 21307064310 192.0.2.1 8998 typ host",
                  CandidateError::kBadPriority},
        Rejection{"candidate:1 1 UDP 99999999999 192.0.2.1 8998 typ host",
                  CandidateError::kBadPriority},
        Rejection{"candidate:1 1 UDP +5 192.0.2.1 8998 typ host", CandidateError::kBadPriority},
        Rejection{"candidate:1 1 UDP 1e9 192.0.2.1 8998 typ host", CandidateError::kBadPriority},
        // Address.
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2 8998 typ host",
                  CandidateError::kBadAddress},
        Rejection{"candidate:1 1 UDP 2130706431 256.0.2.1 8998 typ host",
                  CandidateError::kBadAddress},
        Rejection{"candidate:1 1 UDP 2130706431 [2001:db8::1] 8998 typ host",
                  CandidateError::kBadAddress},
        Rejection{"candidate:1 1 UDP 2130706431 fe80::1%eth0 8998 typ host",
                  CandidateError::kBadAddress},
        Rejection{"candidate:1 1 UDP 2130706431 turn.example.com 8998 typ host",
                  CandidateError::kHostnameAddress},
        Rejection{"candidate:1 1 UDP 2130706431 3c1f2a7e-0d4b-4c1e-9f27-1b2c3d4e5f60.local 8998 "
                  "typ host",
                  CandidateError::kMdnsAddress},
        Rejection{"candidate:1 1 UDP 2130706431 printer.LOCAL. 8998 typ host",
                  CandidateError::kMdnsAddress},
        // Port.
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 0 typ host", CandidateError::kBadPort},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 65536 typ host",
                  CandidateError::kBadPort},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 80a typ host", CandidateError::kBadPort},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 123456 typ host",
                  CandidateError::kBadPort},
        // Type.
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 type host",
                  CandidateError::kBadType},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ hosts",
                  CandidateError::kBadType},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ stun", CandidateError::kBadType},
        // Related address.
        Rejection{"candidate:1 1 UDP 1694498815 192.0.2.1 8998 typ srflx raddr 10.0.0.1",
                  CandidateError::kBadRelatedAddress},
        Rejection{"candidate:1 1 UDP 1694498815 192.0.2.1 8998 typ srflx rport 5",
                  CandidateError::kBadRelatedAddress},
        Rejection{"candidate:1 1 UDP 1694498815 192.0.2.1 8998 typ srflx raddr 10.0.0.1 port 5",
                  CandidateError::kBadRelatedAddress},
        Rejection{"candidate:1 1 UDP 1694498815 192.0.2.1 8998 typ srflx raddr host.local rport 5",
                  CandidateError::kBadRelatedAddress},
        Rejection{"candidate:1 1 UDP 1694498815 192.0.2.1 8998 typ srflx raddr 10.0.0.1 rport "
                  "65536",
                  CandidateError::kBadRelatedAddress},
        Rejection{"candidate:1 1 UDP 1694498815 192.0.2.1 8998 typ srflx generation 0 raddr "
                  "10.0.0.1 rport 5",
                  CandidateError::kBadRelatedAddress},
        Rejection{"candidate:1 1 UDP 1694498815 192.0.2.1 8998 typ srflx raddr 10.0.0.1 rport 5 "
                  "raddr 10.0.0.1 rport 5",
                  CandidateError::kBadRelatedAddress},
        // Extensions.
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ host generation",
                  CandidateError::kBadExtension},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ host typ host",
                  CandidateError::kBadExtension},
        Rejection{"candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ host na@me 1",
                  CandidateError::kBadExtension}));

TEST(IceCandidateText, TooLong) {
  std::string line = "candidate:1 1 UDP 2130706431 192.0.2.1 8998 typ host x ";
  line += std::string(kMaxCandidateLineSize + 1 - line.size(), 'v');
  ASSERT_EQ(line.size(), kMaxCandidateLineSize + 1);
  EXPECT_EQ(parse_candidate(line).error(), CandidateError::kTooLong);
}

TEST(IceCandidateText, ValidateRejectsWhatTheParserRejects) {
  Candidate good{.foundation = "1", .address = {ip("192.0.2.1"), 1}};
  ASSERT_TRUE(validate(good));
  auto bad = good;
  bad.foundation = "";
  EXPECT_EQ(validate(bad).error(), CandidateError::kBadFoundation);
  bad = good;
  bad.component = 0;
  EXPECT_EQ(validate(bad).error(), CandidateError::kBadComponent);
  bad = good;
  bad.priority = kMaxPriority + 1;
  EXPECT_EQ(validate(bad).error(), CandidateError::kBadPriority);
  bad = good;
  bad.address.port = 0;
  EXPECT_EQ(validate(bad).error(), CandidateError::kBadPort);
  bad = good;
  bad.extensions = {{"raddr", "1.2.3.4"}};
  EXPECT_EQ(validate(bad).error(), CandidateError::kBadExtension);
  bad.extensions = {{"ok", "has space"}};
  EXPECT_EQ(validate(bad).error(), CandidateError::kBadExtension);
}

TEST(IceCandidateText, DescriptionsNameCauseAndAreDistinct) {
  std::set<std::string_view> texts;
  for (int e = 0; e <= static_cast<int>(CandidateError::kTooManyExtensions); ++e) {
    auto text = describe(static_cast<CandidateError>(e));
    EXPECT_GT(text.size(), 20u);
    EXPECT_TRUE(texts.insert(text).second) << text;
  }
}

}  // namespace
}  // namespace roam::ice
