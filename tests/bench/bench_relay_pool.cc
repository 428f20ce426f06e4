// ./run bench relay-pool: how fast one roam-relay fills its reservation-token pool against a
// local coturn (target >= 200 tokens/s), and the latency of the documented atomic take from
// Redis (p50/p99), beside a plain PING on the same connection as the reference floor.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/relay/pool_layout.h"
#include "tests/support/servers.h"
#include "tests/support/sync_clients.h"

namespace {

using namespace std::chrono_literals;
using roam::test::Coturn;
using roam::test::Process;
using roam::test::RedisServer;
using roam::test::SyncRedis;
using Clock = std::chrono::steady_clock;

constexpr int kRuns = 5;
constexpr int kPoolTarget = 400;
constexpr int kTakes = 2000;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

void print_stats(const char* what, const std::vector<double>& v, const char* unit) {
  std::printf("%-42s median %9.1f  p10 %9.1f  p90 %9.1f  %s  (n=%zu)\n", what, percentile(v, 0.5),
              percentile(v, 0.1), percentile(v, 0.9), unit, v.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--describe") == 0) {
    std::printf("roam-relay token creation rate and atomic take latency (real coturn + redis)\n");
    return 0;
  }
  std::string skip;
  auto redis = RedisServer::start(&skip);
  if (!redis) {
    std::printf("skipped: %s\n", skip.c_str());
    return 1;
  }
  roam::test::CoturnOptions options;
  // Each token holds an even/odd port pair for 300 s: room for the pool and every take.
  options.relay_ports = 2 * (kPoolTarget + kTakes) + 64;
  const std::string relay = std::string(ROAM_BINARY_DIR) + "/bin/roam-relay";
  std::printf("roam-relay pool fill: target %d tokens, %d runs, fresh coturn each run\n",
              kPoolTarget, kRuns);

  std::vector<double> rates, first_token_ms;
  for (int run = 0; run < kRuns; ++run) {
    auto coturn = Coturn::start(options, &skip);
    if (!coturn) {
      std::printf("skipped: %s\n", skip.c_str());
      return 1;
    }
    SyncRedis r(redis->port());
    r.command({"FLUSHALL"});
    roam::test::TempDir dir;
    const std::string instance = "bench-" + std::to_string(run);
    const auto start = Clock::now();
    auto process =
        Process::spawn({relay, "--coturn", coturn->address().to_string(), "--secret",
                        coturn->options().secret, "--realm", coturn->options().realm, "--redis",
                        "127.0.0.1:" + std::to_string(redis->port()), "--instance-id", instance,
                        "--pool-target", std::to_string(kPoolTarget), "--max-in-flight", "32",
                        "--metrics", "127.0.0.1:0", "--log-level", "warn"},
                       dir.path() / "relay.log");
    std::optional<double> first;
    long long size = 0;
    while (Clock::now() - start < 60s) {
      size = r.command({"ZCARD", roam::relay::pool_key(instance)}).integer;
      if (size > 0 && !first) {
        first = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      }
      if (size >= kPoolTarget) break;
      std::this_thread::sleep_for(2ms);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (size < kPoolTarget) {
      std::printf("run %d: pool reached only %lld tokens in 60 s\n%s", run, size,
                  roam::test::read_file(dir.path() / "relay.log").c_str());
      return 1;
    }
    // Includes process start-up and Redis/coturn connection: a conservative rate.
    rates.push_back(kPoolTarget / seconds);
    first_token_ms.push_back(first.value_or(0));
    std::printf("run %d: %d tokens in %.3f s = %.0f tokens/s\n", run, kPoolTarget, seconds,
                kPoolTarget / seconds);

    if (run == kRuns - 1) {
      // Take latency, on the last run's full pool (the sidecar refills behind the takes).
      SyncRedis taker(redis->port());
      std::vector<double> take_us, miss_us, ping_us;
      const std::string script(roam::relay::take_token_script());
      auto sha = taker.command({"SCRIPT", "LOAD", script}).text;
      int misses = 0;
      for (int i = 0; i < kTakes; ++i) {
        auto t0 = Clock::now();
        auto reply = taker.command({"EVALSHA", sha, "1", roam::relay::pool_key(instance), "10000"});
        double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
        if (reply.type == roam::test::RespReply::Type::kString) {
          take_us.push_back(us);
        } else {
          miss_us.push_back(us);
          ++misses;
        }
        t0 = Clock::now();
        taker.command({"PING"});
        ping_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        // 500 takes/s: what two busy signaling servers would ask of one relay, and below the
        // refill rate, so takes measure a non-empty pool.
        std::this_thread::sleep_for(2ms);
      }
      std::printf("\n");
      print_stats("take token (EVALSHA) latency", take_us, "us");
      std::printf("%-42s p50 %.1f us, p99 %.1f us (%d takes, %d found the pool empty)\n", "",
                  percentile(take_us, 0.5), percentile(take_us, 0.99), kTakes, misses);
      if (!miss_us.empty()) print_stats("take on an empty pool (nil)", miss_us, "us");
      print_stats("reference: PING on the same connection", ping_us, "us");
    }
    process.stop();
  }
  std::printf("\n");
  print_stats("pool fill rate (incl. process start)", rates, "tokens/s");
  print_stats("time to first token", first_token_ms, "ms");
  std::printf("target: >= 200 tokens/s; verdict: %s\n",
              percentile(rates, 0.5) >= 200 ? "met" : "NOT met");
  return 0;
}
