// Codec throughput, each case repeated and summarised as median, p10 and p90:
// - STUN: decode + integrity check, decode only, and encode (build + HMAC-SHA1 + FINGERPRINT) of
//   an authenticated ICE Binding request. When libnice is available at build time
//   (ROAM_HAVE_LIBNICE), its STUN agent validates the same bytes in the same run as a reference.
// - Signaling: the codec work roam-signaling does per forwarded candidate (parse the client's
//   message, validate its candidate line, encode the message for the other peer), with
//   Boost.JSON's plain parse of the same text as the reference.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "common/ice/candidate_text.h"
#include "common/signaling/message.h"
#include "common/stun/message.h"

#if defined(ROAM_HAVE_LIBNICE)
#include <stun/stunagent.h>
#include <stun/stunmessage.h>
#endif

namespace {

using namespace roam;
using namespace roam::stun;
using BenchClock = std::chrono::steady_clock;

constexpr std::string_view kDescription =
    "codecs: STUN decode+integrity, decode-only and encode of an ICE Binding request (libnice "
    "reference when built with it); signaling parse/validate/encode of a forwarded candidate "
    "(Boost.JSON parse reference)";

// A client's candidate as ./run bench signaling sends it: a host candidate with extension
// attributes (a sequence number and a send time).
constexpr std::string_view kClientCandidate =
    R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015","candidate":)"
    R"("candidate:1 1 UDP 2130706431 127.0.0.1 50000 typ host seq 123456 ts 1763800000123456789"})";

// ICE credentials shaped like a browser's (RFC 8445 §5.3: ufrag >= 4 chars, password >= 22).
constexpr std::string_view kUsername = "Wq3n7bXe:Lr5p";
constexpr std::string_view kPassword = "OE7kHDiTr8CuZgEtLhcXnq0P";

// Sink the optimiser cannot see through.
volatile std::uint64_t g_sink = 0;

struct Stats {
  double median, p10, p90;
};

Stats summarise(std::vector<double> rates) {
  std::sort(rates.begin(), rates.end());
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(rates.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, rates.size() - 1);
    return rates[lo] + (rates[hi] - rates[lo]) * (pos - static_cast<double>(lo));
  };
  return {at(0.5), at(0.1), at(0.9)};
}

struct Case {
  std::string name;
  std::function<std::uint64_t()> op;
  std::uint64_t iterations = 0;
  std::vector<double> rates;  // operations per second, one per repetition
};

// Picks an iteration count so that one repetition of `op` lasts about `target` seconds.
std::uint64_t calibrate(const std::function<std::uint64_t()>& op, double target) {
  for (std::uint64_t n = 1;; n *= 4) {
    const auto t0 = BenchClock::now();
    for (std::uint64_t i = 0; i < n; ++i)
      g_sink = g_sink + op();
    const double s = std::chrono::duration<double>(BenchClock::now() - t0).count();
    if (s >= target / 4) return static_cast<std::uint64_t>(static_cast<double>(n) * target / s) + 1;
  }
}

// Repetitions are interleaved across the cases (round robin) so that a change in machine load
// during the run affects every case alike instead of biasing the comparison.
void run_all(std::vector<Case>& cases, int reps, double target) {
  for (auto& c : cases)
    c.iterations = calibrate(c.op, target);
  for (int r = 0; r < reps; ++r) {
    for (auto& c : cases) {
      const auto t0 = BenchClock::now();
      for (std::uint64_t i = 0; i < c.iterations; ++i)
        g_sink = g_sink + c.op();
      const double s = std::chrono::duration<double>(BenchClock::now() - t0).count();
      c.rates.push_back(static_cast<double>(c.iterations) / s);
    }
  }
}

void print_row(std::string_view name, const std::vector<double>& rates) {
  const Stats s = summarise(rates);
  std::printf("%-44s %12.0f %12.0f %12.0f %5zu\n", std::string(name).c_str(), s.median, s.p10,
              s.p90, rates.size());
}

TransactionId fixed_tid() {
  TransactionId id{};
  for (std::size_t i = 0; i < id.size(); ++i)
    id[i] = std::byte(0x11 * (i + 1));
  return id;
}

Bytes build_request(const IntegrityKey& key, const TransactionId& id) {
  return MessageBuilder(Method::kBinding, Class::kRequest, id)
      .add_string(attr::kUsername, kUsername)
      .add_u32(attr::kPriority, 0x6e7f1eff)
      .add_u64(attr::kIceControlling, 0x932ff9b151263b36)
      .add_flag(attr::kUseCandidate)
      .finish(&key, Integrity::kSha1, true);
}

#if defined(ROAM_HAVE_LIBNICE)
struct NiceKey {
  const std::uint8_t* password;
  std::size_t length;
};

bool nice_validater(StunAgent*, StunMessage*, std::uint8_t*, std::uint16_t, std::uint8_t** password,
                    std::size_t* password_len, void* user_data) {
  const auto* key = static_cast<const NiceKey*>(user_data);
  *password = const_cast<std::uint8_t*>(key->password);
  *password_len = key->length;
  return true;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int reps = 15;
  double target = 0.15;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--describe") {
      std::printf("%s\n", std::string(kDescription).c_str());
      return 0;
    }
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--seconds" && i + 1 < argc) {
      target = std::max(0.01, std::atof(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: bench_codec [--describe] [--reps N (default 15)] "
                   "[--seconds S per repetition (default 0.15)]\n");
      return 2;
    }
  }

  const IntegrityKey key = IntegrityKey::short_term(kPassword);
  const TransactionId id = fixed_tid();
  const Bytes wire = build_request(key, id);
  {
    auto m = Message::parse(wire);
    if (!m || m->check_integrity(key) != IntegrityResult::kOk) {
      std::fprintf(stderr, "bench_codec: self-check failed: the test message does not verify\n");
      return 1;
    }
  }

  std::printf(
      "bench_codec: ICE Binding request, %zu bytes (USERNAME, PRIORITY, ICE-CONTROLLING, "
      "USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT)\n",
      wire.size());
  std::printf("rates in messages/s; %d repetitions of ~%.2f s each, interleaved across rows\n",
              reps, target);
  std::printf("%-44s %12s %12s %12s %5s\n", "measurement", "median", "p10", "p90", "reps");

  auto decode_and_verify = [&]() -> std::uint64_t {
    auto m = Message::parse(wire);
    return m && m->check_integrity(key) == IntegrityResult::kOk;
  };
  auto decode_only = [&]() -> std::uint64_t {
    auto m = Message::parse(wire);
    return m ? m->attributes().size() : 0;
  };
  auto encode = [&]() -> std::uint64_t { return build_request(key, id).size(); };
  std::vector<Case> cases;
  cases.push_back({"roam decode + FINGERPRINT + MESSAGE-INTEGRITY", decode_and_verify});
  cases.push_back({"roam decode + FINGERPRINT (no integrity)", decode_only});
  cases.push_back({"roam encode (build + MESSAGE-INTEGRITY + FP)", encode});

#if defined(ROAM_HAVE_LIBNICE)
  static std::uint16_t known[] = {STUN_ATTRIBUTE_USERNAME, STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                  STUN_ATTRIBUTE_PRIORITY, STUN_ATTRIBUTE_USE_CANDIDATE, 0};
  StunAgent agent;
  stun_agent_init(&agent, known, STUN_COMPATIBILITY_RFC5389,
                  static_cast<StunAgentUsageFlags>(STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS |
                                                   STUN_AGENT_USAGE_USE_FINGERPRINT));
  NiceKey nice_key{reinterpret_cast<const std::uint8_t*>(kPassword.data()), kPassword.size()};
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(wire.data());
  {
    StunMessage msg;
    const StunValidationStatus status =
        stun_agent_validate(&agent, &msg, bytes, wire.size(), nice_validater, &nice_key);
    if (status != STUN_VALIDATION_SUCCESS) {
      std::fprintf(stderr, "bench_codec: libnice rejects the test message (status %d)\n",
                   static_cast<int>(status));
      return 1;
    }
    // The reference must really check both: a wrong key and a broken FINGERPRINT must fail.
    NiceKey wrong{reinterpret_cast<const std::uint8_t*>("wrong"), 5};
    Bytes corrupt = wire;
    corrupt.back() ^= std::byte{1};
    if (stun_agent_validate(&agent, &msg, bytes, wire.size(), nice_validater, &wrong) ==
            STUN_VALIDATION_SUCCESS ||
        stun_agent_validate(&agent, &msg, reinterpret_cast<const std::uint8_t*>(corrupt.data()),
                            corrupt.size(), nice_validater, &nice_key) == STUN_VALIDATION_SUCCESS) {
      std::fprintf(stderr, "bench_codec: libnice accepted a bad key or FINGERPRINT\n");
      return 1;
    }
  }
  auto nice_validate = [&]() -> std::uint64_t {
    StunMessage msg;
    return stun_agent_validate(&agent, &msg, bytes, wire.size(), nice_validater, &nice_key) ==
           STUN_VALIDATION_SUCCESS;
  };
  auto nice_length = [&]() -> std::uint64_t {
    return static_cast<std::uint64_t>(
        stun_message_validate_buffer_length(bytes, wire.size(), true));
  };
  cases.push_back({"libnice stun_agent_validate (FP + MI)", nice_validate});
  cases.push_back({"libnice stun_message_validate_buffer_length", nice_length});
  const std::string reference =
      std::string("libnice ") + ROAM_LIBNICE_VERSION + " is the reference (same bytes, same run)";
#else
  const std::string reference = "libnice reference: not built (install libnice-dev, reconfigure)";
#endif

  run_all(cases, reps, target);
  for (const auto& c : cases)
    print_row(c.name, c.rates);
  std::printf("%s\n", reference.c_str());

  // ---- signaling: what roam-signaling does per forwarded candidate ----
  const auto parsed = signaling::parse_client_message(kClientCandidate);
  const auto* candidate = parsed ? std::get_if<signaling::Candidate>(&*parsed) : nullptr;
  if (!candidate || !candidate->candidate || !ice::parse_candidate(*candidate->candidate)) {
    std::fprintf(stderr, "bench_codec: self-check failed: the candidate message does not parse\n");
    return 1;
  }
  signaling::Candidate outgoing = *candidate;
  outgoing.request.reset();
  const signaling::ServerMessage forwarded{outgoing};
  std::printf("\nsignaling: a client's candidate message, %zu bytes:\n  %s\n",
              kClientCandidate.size(), std::string(kClientCandidate).c_str());
  std::printf("%-44s %12s %12s %12s %5s\n", "measurement", "median", "p10", "p90", "reps");
  auto parse_message = [&]() -> std::uint64_t {
    auto m = signaling::parse_client_message(kClientCandidate);
    return m ? m->index() + 1 : 0;
  };
  auto validate_line = [&]() -> std::uint64_t {
    auto c = ice::parse_candidate(*candidate->candidate);
    return c ? c->priority : 0;
  };
  auto encode_forwarded = [&]() -> std::uint64_t { return signaling::encode(forwarded).size(); };
  auto forward_path = [&]() -> std::uint64_t {
    auto m = signaling::parse_client_message(kClientCandidate);
    auto* c = m ? std::get_if<signaling::Candidate>(&*m) : nullptr;
    if (!c || !c->candidate || !ice::parse_candidate(*c->candidate)) return 0;
    c->request.reset();
    return signaling::encode(signaling::ServerMessage{std::move(*c)}).size();
  };
  auto json_parse = [&]() -> std::uint64_t {
    boost::json::error_code ec;
    auto v = boost::json::parse(
        boost::json::string_view(kClientCandidate.data(), kClientCandidate.size()), ec);
    return ec ? 0 : v.as_object().size();
  };
  std::vector<Case> signaling_cases;
  signaling_cases.push_back({"parse_client_message (candidate)", parse_message});
  signaling_cases.push_back({"ice::parse_candidate (its candidate line)", validate_line});
  signaling_cases.push_back({"encode (the forwarded candidate)", encode_forwarded});
  signaling_cases.push_back({"all three: the server's codec work per message", forward_path});
  signaling_cases.push_back({"reference: boost::json::parse, same text", json_parse});
  run_all(signaling_cases, reps, target);
  for (const auto& c : signaling_cases)
    print_row(c.name, c.rates);
  return g_sink == 0xFFFFFFFFFFFFFFFF ? 3 : 0;
}
