// The coturn configurations shipped in relay/coturn/ load in the real turnserver and do what
// they claim: the production one refuses internal peers, the test one allows loopback.
#include <cctype>
#include <ctime>
#include <fstream>

#include <gtest/gtest.h>

#include "common/auth/turn_rest.h"
#include "tests/support/servers.h"
#include "tests/support/turn_session.h"

namespace roam::test {
namespace {

// True if the text still holds an @UPPER_CASE@ placeholder.
bool has_placeholder(const std::string& text) {
  for (auto at = text.find('@'); at != std::string::npos; at = text.find('@', at + 1)) {
    auto end = text.find('@', at + 1);
    if (end == std::string::npos) return false;
    bool name = end > at + 1;
    for (auto i = at + 1; i < end && name; ++i)
      name = std::isupper(text[i]) || text[i] == '_';
    if (name) return true;
  }
  return false;
}

// Renders a template: @NAME@ → value; placeholders left over make the test fail.
std::string render(const std::string& text, const std::map<std::string, std::string>& values) {
  std::string out = text;
  for (const auto& [name, value] : values) {
    std::string key = "@" + name + "@";
    for (auto pos = out.find(key); pos != std::string::npos; pos = out.find(key, pos)) {
      out.replace(pos, key.size(), value);
      pos += value.size();
    }
  }
  EXPECT_FALSE(has_placeholder(out)) << "unrendered placeholder in:\n" << out;
  return out;
}

class CoturnConfig : public ::testing::Test {
 protected:
  std::unique_ptr<Coturn> start(const std::string& name, bool allow_loopback) {
    auto text = read_file(std::string(ROAM_SOURCE_DIR) + "/relay/coturn/" + name);
    EXPECT_FALSE(text.empty());
    // Ports, paths and the secret are set on the command line by the fixture (they override
    // the file); the rest comes from the file as shipped.
    auto rendered = render(text, {{"TURN_SECRET", "roam-test-secret"},
                                  {"REALM", "roam.test"},
                                  {"LISTEN_IP", "127.0.0.1"},
                                  {"RELAY_IP", "127.0.0.1"},
                                  {"EXTERNAL_IP_LINE", ""},
                                  {"PORT", "3478"},
                                  {"MIN_PORT", "49152"},
                                  {"MAX_PORT", "65535"},
                                  {"REDIS_IP", "127.0.0.1"},
                                  {"REDIS_DB", "0"},
                                  {"REDIS_PORT", std::to_string(free_tcp_port())},
                                  {"LOG_FILE", (dir_.path() / "ignored.log").string()},
                                  {"PID_FILE", (dir_.path() / "ignored.pid").string()},
                                  {"USERDB", (dir_.path() / "ignored.db").string()}});
    auto path = dir_.path() / name;
    std::ofstream(path) << rendered;
    std::string skip;
    CoturnOptions options;
    options.config_file = path.string();
    options.allow_loopback_peers = allow_loopback;
    auto c = Coturn::start(options, &skip);
    if (!c) ADD_FAILURE() << skip;
    return c;
  }

  // Outcome of CreatePermission for `peer` through an allocation on `coturn`.
  std::variant<turn::PermissionCreated, turn::PermissionFailed> permission(
      const Coturn& coturn, const std::string& peer) {
    auto c = auth::turn_rest::mint("roam-test-secret", "alice",
                                   static_cast<std::int64_t>(std::time(nullptr)),
                                   std::chrono::seconds(600));
    TurnSession s(coturn.address(), {c->username, c->password});
    s.client().allocate(Clock::now(), {});
    EXPECT_TRUE(s.wait_for<turn::Allocated>()) << coturn.log();
    s.client().create_permission(Clock::now(), *IpAddress::parse(peer));
    EXPECT_TRUE(s.run_until(
        [&] { return s.event<turn::PermissionCreated>() || s.event<turn::PermissionFailed>(); }));
    if (auto ok = s.event<turn::PermissionCreated>()) return *ok;
    return *s.event<turn::PermissionFailed>();
  }

  TempDir dir_;
};

TEST_F(CoturnConfig, ProductionConfigDeniesInternalPeers) {
  auto coturn = start("turnserver.conf", /*allow_loopback=*/false);
  if (!coturn) return;
  // IPv4 ranges only: the test coturn relays on 127.0.0.1, and an IPv4 allocation answers 443
  // (family mismatch) to any IPv6 peer before its deny list is consulted. The IPv6 lines are
  // still parsed: coturn logs "Wrong address format" for a malformed one (and starts anyway),
  // which is checked below.
  for (const char* internal :
       {"127.0.0.1", "10.1.2.3", "172.16.5.5", "192.168.1.1", "169.254.1.1", "100.64.0.1",
        "0.0.0.0", "198.18.0.1", "192.0.2.1", "224.0.0.1", "240.0.0.1"}) {
    auto r = permission(*coturn, internal);
    auto* failed = std::get_if<turn::PermissionFailed>(&r);
    ASSERT_NE(failed, nullptr) << internal << " was allowed";
    EXPECT_EQ(failed->code, 403) << internal;
    EXPECT_EQ(failed->failure, turn::Failure::kForbidden);
  }
  EXPECT_EQ(coturn->log().find("Wrong address format"), std::string::npos) << coturn->log();
  EXPECT_EQ(coturn->log().find("CONFIG ERROR"), std::string::npos) << coturn->log();
  // A public address is allowed (a permission sends nothing to the peer).
  auto r = permission(*coturn, "8.8.8.8");
  EXPECT_TRUE(std::holds_alternative<turn::PermissionCreated>(r)) << coturn->log();
}

TEST_F(CoturnConfig, TestConfigAllowsLoopbackPeers) {
  auto coturn = start("turnserver-test.conf", /*allow_loopback=*/false);
  if (!coturn) return;
  auto r = permission(*coturn, "127.0.0.1");
  EXPECT_TRUE(std::holds_alternative<turn::PermissionCreated>(r)) << coturn->log();
}

}  // namespace
}  // namespace roam::test
