// ./run bench signaling: capacity of ONE roam-signaling instance on loopback, against the real
// stack (redis-server, coturn, roam-relay) started here:
//   (a) authenticated WSS connections held idle, server RSS per connection (target >= 20,000
//       within 1 GiB);
//   (b) candidate forwarding: throughput at saturation (each pair keeps 8 in flight and
//       refills its window in one burst), latency at a paced load (--paced-rate, or 80% of
//       saturation if less), at a light load and over a sweep of loads (target >= 50,000
//       messages/s with p99 <= 10 ms); paced load comes from one 1 ms ticker per generator
//       thread. Latency is measured in this process from a send timestamp carried in the
//       candidate as an RFC 8839 extension attribute, beside the server's own forward histogram;
//   (c) relay grant: connect -> session, client side and the server's own histogram (target
//       p99 <= 5 ms), with reservation tokens vs pool misses.
// Before the phases, a machine reference: what waking a thread costs here (two threads
// ping-ponging over pipes, across two CPUs and on one), since below saturation a server thread
// sleeps between messages and pays wake-ups for each (tests/support/wakeup_cost.h).
// The load generator shares the machine's cores with the server, redis, coturn and roam-relay:
// every figure is a lower bound of what the server does alone. With --generator-nice the
// generator yields the CPU to the server; then the server's histogram shows the server's own
// latency and the client-side figure mostly the generator's wait. `--help` lists the flags.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "common/net/wss_client.h"
#include "common/relay/pool_layout.h"
#include "common/signaling/message.h"
#include "tests/support/certificates.h"
#include "tests/support/cpu_affinity.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"
#include "tests/support/signaling_server.h"
#include "tests/support/sync_clients.h"
#include "tests/support/wait.h"
#include "tests/support/wakeup_cost.h"

namespace {

namespace asio = boost::asio;
namespace sig = roam::signaling;
using namespace std::chrono_literals;
using roam::net::WssClient;
using roam::net::WssClientOptions;
using roam::test::Process;
using roam::test::SignalingServer;
using roam::test::TempDir;
using Clock = std::chrono::steady_clock;
using Err = std::string;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

const std::string kJwtSecret = "roam-bench-jwt-secret-0123456789abcdef";
const std::string kTurnSecret = "roam-bench-turn-secret-0123456789";
constexpr int kPerSourceAddress = 100;  // < the server's default cap of 256 per client IP
// (a) runs the server with --idle-timeout 20: it looks at each connection every 10 s and pings
// one that was silent since the last look, so within the default hold every held connection
// has answered a server ping (docs/signaling-protocol.md, "Idle").
constexpr int kHoldPhaseIdleTimeoutS = 20;
// Round trips of the machine's wake-up reference: about 1 s where a hop across CPUs takes
// 40 us, enough for a stable mean.
constexpr int kWakeupRoundTrips = 10000;

// ---- flags ----------------------------------------------------------------------------------

struct Args {
  std::string phases = "abc";
  int connections = 20000;
  int connect_concurrency = 200;
  int hold_s = 35;
  int pairs = 200;
  int window = 8;
  double duration_s = 5;
  double paced_rate = 50000;
  double light_rate = 5000;
  std::vector<double> sweep = {10000, 20000, 30000, 40000};
  int rounds = 3;
  int grants = 1000;
  int grant_concurrency = 16;
  int client_threads = 2;
  int server_threads = 0;
  int generator_nice = 0;
  int server_cpus = 0;
  bool verify = true;
};

void usage() {
  std::printf(
      "usage: bench_signaling [flags]\n"
      "  --phases abc            which phases to run (a: connections, b: forwarding, c: grants)\n"
      "  --connections N         (a) WSS connections to hold (20000)\n"
      "  --connect-concurrency N (a) connection set-ups in flight (200)\n"
      "  --hold S                (a) seconds to hold them idle after the last one (35)\n"
      "  --pairs P               (b) sender/receiver pairs (200)\n"
      "  --window W              (b) messages in flight per pair at saturation (8)\n"
      "  --duration S            (b) seconds per measurement run (5)\n"
      "  --paced-rate R          (b) offered messages/s of the latency run (50000)\n"
      "  --light-rate R          (b) offered messages/s of the light-load latency run (5000)\n"
      "  --sweep R1,R2,...       (b) paced runs once each after the rounds: latency against load\n"
      "                          (10000,20000,30000,40000; 'none' for none)\n"
      "  --rounds R              (b) rounds of (saturated, paced, light) runs (3)\n"
      "  --grants K              (c) connects, half sequential, half concurrent (1000)\n"
      "  --grant-concurrency C   (c) pairs connecting at once in the concurrent half (16)\n"
      "  --client-threads T      load generator threads (2)\n"
      "  --server-threads T      roam-signaling --threads (0: its default, one per CPU)\n"
      "  --generator-nice N      run the generator's threads at nice N (0-19; 0): on a shared\n"
      "                          machine the server then gets the CPU it asks for first, as\n"
      "                          it would on its own; the generator is slowed instead\n"
      "  --server-cpus N         run roam-signaling alone on the last N CPUs (and --threads N\n"
      "                          unless --server-threads is given), everything else on the\n"
      "                          others: the server's own capacity per core (0: off)\n"
      "  --no-verify             skip certificate verification in the generator\n"
      "quick run: --connections 2000 --hold 5 --pairs 50 --duration 2 --grants 200\n");
}

double number(const std::string& flag, const std::string& text) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && v < 1e9) return v;
  } catch (const std::logic_error&) {
  }
  throw std::invalid_argument(flag + ": not a number: '" + text + "'");
}

std::optional<Args> parse_args(int argc, char** argv) {
  Args a;
  const std::map<std::string, int*> ints = {{"--connections", &a.connections},
                                            {"--connect-concurrency", &a.connect_concurrency},
                                            {"--hold", &a.hold_s},
                                            {"--pairs", &a.pairs},
                                            {"--window", &a.window},
                                            {"--rounds", &a.rounds},
                                            {"--grants", &a.grants},
                                            {"--grant-concurrency", &a.grant_concurrency},
                                            {"--client-threads", &a.client_threads},
                                            {"--server-threads", &a.server_threads},
                                            {"--generator-nice", &a.generator_nice},
                                            {"--server-cpus", &a.server_cpus}};
  const std::map<std::string, double*> doubles = {{"--duration", &a.duration_s},
                                                  {"--paced-rate", &a.paced_rate},
                                                  {"--light-rate", &a.light_rate}};
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (auto n = ints.find(flag); n != ints.end()) {
      *n->second = static_cast<int>(number(flag, value()));
    } else if (auto d = doubles.find(flag); d != doubles.end()) {
      *d->second = number(flag, value());
    } else if (flag == "--sweep") {
      a.sweep.clear();
      std::string list = value();
      if (list != "none") {
        std::istringstream in(list);
        for (std::string rate; std::getline(in, rate, ',');) {
          a.sweep.push_back(number(flag, rate));
          if (a.sweep.back() <= 0)
            throw std::invalid_argument("--sweep " + rate + ": a rate must be above 0");
        }
      }
    } else if (flag == "--phases") {
      a.phases = value();
    } else if (flag == "--no-verify") {
      a.verify = false;
    } else if (flag == "--help" || flag == "-h") {
      usage();
      return std::nullopt;
    } else {
      throw std::invalid_argument("unknown flag " + flag + " (--help lists them)");
    }
  }
  // Each flag's allowed range, so that a bad value is named in the error.
  struct Range {
    const char* flag;
    double value, min, max;
  };
  constexpr double kAny = 1e9;
  const Range ranges[] = {{"--connections", double(a.connections), 1, kAny},
                          {"--connect-concurrency", double(a.connect_concurrency), 1, kAny},
                          {"--hold", double(a.hold_s), 0, kAny},
                          {"--pairs", double(a.pairs), 1, kAny},
                          {"--window", double(a.window), 1, kAny},
                          {"--rounds", double(a.rounds), 1, kAny},
                          {"--grants", double(a.grants), 2, kAny},
                          {"--grant-concurrency", double(a.grant_concurrency), 1, kAny},
                          {"--client-threads", double(a.client_threads), 1, kAny},
                          {"--server-threads", double(a.server_threads), 0, kAny},
                          {"--generator-nice", double(a.generator_nice), 0, 19},
                          {"--server-cpus", double(a.server_cpus), 0, kAny},
                          {"--duration", a.duration_s, 1e-3, kAny},
                          {"--paced-rate", a.paced_rate, 1e-3, kAny},
                          {"--light-rate", a.light_rate, 1e-3, kAny}};
  for (const auto& r : ranges) {
    if (r.value < r.min || r.value > r.max) {
      char why[160];
      if (r.max < kAny) {
        std::snprintf(why, sizeof why, "%s %g: must be %g-%g", r.flag, r.value, r.min, r.max);
      } else {
        std::snprintf(why, sizeof why, "%s %g: must be at least %g", r.flag, r.value, r.min);
      }
      throw std::invalid_argument(why);
    }
  }
  return a;
}

// ---- statistics -----------------------------------------------------------------------------

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

double median(const std::vector<double>& v) {
  return percentile(v, 0.5);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A Prometheus histogram summed over the series whose labels contain `label_filter`.
struct Histogram {
  std::map<double, double> buckets;  // le -> cumulative count
  double sum = 0, count = 0;

  Histogram minus(const Histogram& before) const {
    Histogram d = *this;
    for (auto& [le, c] : d.buckets) {
      auto it = before.buckets.find(le);
      if (it != before.buckets.end()) c -= it->second;
    }
    d.sum -= before.sum;
    d.count -= before.count;
    return d;
  }
  // histogram_quantile(): linear interpolation inside the bucket holding the rank.
  std::optional<double> quantile(double q) const {
    if (count <= 0 || buckets.empty()) return std::nullopt;
    const double rank = q * count;
    double lower = 0, below = 0;
    for (const auto& [le, c] : buckets) {
      if (c >= rank) {
        if (std::isinf(le)) return lower;  // beyond the last finite bound: report it
        const double in_bucket = c - below;
        return in_bucket <= 0 ? le : lower + (le - lower) * (rank - below) / in_bucket;
      }
      lower = le;
      below = c;
    }
    return lower;
  }
};

Histogram parse_histogram(const std::string& text, const std::string& name,
                          const std::string& label_filter = "") {
  Histogram h;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const std::string series = line.substr(0, space);
    const double value = std::strtod(line.c_str() + space + 1, nullptr);
    if (!label_filter.empty() && series.find(label_filter) == std::string::npos) continue;
    if (series.rfind(name + "_bucket{", 0) == 0) {
      const auto le = series.find("le=\"");
      if (le == std::string::npos) continue;
      const std::string bound = series.substr(le + 4, series.find('"', le + 4) - le - 4);
      const double b = bound == "+Inf" ? INFINITY : std::strtod(bound.c_str(), nullptr);
      h.buckets[b] += value;
    } else if (series.rfind(name + "_sum", 0) == 0) {
      h.sum += value;
    } else if (series.rfind(name + "_count", 0) == 0) {
      h.count += value;
    }
  }
  return h;
}

std::string fmt_ms(std::optional<double> seconds) {
  if (!seconds) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f ms", *seconds * 1e3);
  return b;
}

// ---- processes ------------------------------------------------------------------------------

// Returns the soft limit now in force.
std::uint64_t raise_fd_limit() {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (::geteuid() == 0 && r.rlim_max < 200000) r.rlim_max = 200000;  // root may raise the cap
  r.rlim_cur = r.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &r) != 0) {
    ::getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  ::getrlimit(RLIMIT_NOFILE, &r);
  std::printf("open files limit of the generator (inherited by the servers): %llu\n",
              static_cast<unsigned long long>(r.rlim_cur));
  return r.rlim_cur;
}

// utime + stime of a process, in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);
    if (i == 15) break;
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The machine's CPU time so far, and how much of it the hypervisor gave to others ("steal",
// field 8 of /proc/stat's cpu line): a run with steal is slowed by something outside it.
struct MachineTime {
  double total = 0, steal = 0;
};
MachineTime machine_time() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  MachineTime t;
  double field = 0;
  for (int i = 1; i <= 8 && in >> field; ++i) {
    t.total += field;
    if (i == 8) t.steal = field;
  }
  return t;
}
double steal_fraction(const MachineTime& before, const MachineTime& after) {
  const double total = after.total - before.total;
  return total > 0 ? (after.steal - before.steal) / total : 0;
}

// --server-cpus: the last `server_count` CPUs this process may use go to roam-signaling; this
// process moves to the others, and so do the threads and servers it starts later (they inherit
// its affinity). Both sides as taskset lists ("1" or "2,3"); nullopt when there would be none
// left for the rest.
struct CpuSplit {
  std::string server, rest;
};
std::optional<CpuSplit> reserve_server_cpus(int server_count) {
  const std::vector<int> cpus = roam::test::allowed_cpus();
  if (static_cast<int>(cpus.size()) <= server_count) return std::nullopt;
  const auto split = cpus.end() - server_count;
  auto join = [](auto from, auto to) {
    std::string list;
    for (auto c = from; c != to; ++c)
      list += (list.empty() ? "" : ",") + std::to_string(*c);
    return list;
  };
  if (!roam::test::pin_calling_thread({cpus.begin(), split})) return std::nullopt;
  return CpuSplit{join(split, cpus.end()), join(cpus.begin(), split)};
}

double self_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// ---- the load generator ---------------------------------------------------------------------

// One io_context per thread; every peer lives on one of them (WssClient's thread model).
class Threads {
 public:
  // `nice` applies to these threads only (Linux nice values are per thread): the servers,
  // started from the main thread, keep the default.
  Threads(int count, int nice) {
    for (int i = 0; i < count; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
    for (auto& c : contexts_) {
      threads_.emplace_back([ctx = c.get(), nice] {
        if (nice != 0 && ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) != 0) {
          std::printf("warning: generator thread: setpriority(%d): %s\n", nice,
                      std::strerror(errno));
        }
        ctx->run();
      });
    }
  }
  ~Threads() {
    guards_.clear();
    for (auto& c : contexts_)
      c->stop();
    for (auto& t : threads_)
      t.join();
  }
  int size() const { return static_cast<int>(contexts_.size()); }
  asio::io_context& at(int i) { return *contexts_[static_cast<std::size_t>(i % size())]; }
  // Runs `f` on thread i's io_context and waits for it.
  void run_on(int i, std::function<void()> f) {
    std::promise<void> done;
    asio::post(at(i), [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// Runs f(item) for every non-null item on the thread that owns it (home_io(item): its counters,
// handlers and connections live there); returns when every thread is done.
template <class T, class F>
void for_each_on_its_thread(Threads& threads, std::vector<std::unique_ptr<T>>& items, F f) {
  for (int t = 0; t < threads.size(); ++t) {
    threads.run_on(t, [&] {
      for (auto& item : items)
        if (item && &home_io(*item) == &threads.at(t)) f(item);
    });
  }
}

using Inbox = asio::experimental::channel<void(boost::system::error_code, std::string)>;

// One authenticated signaling connection.
struct Peer {
  Peer(asio::io_context& ctx, std::string peer_id)
      : io(ctx), id(std::move(peer_id)), inbox(ctx, 256) {}
  asio::io_context& io;
  std::string id;
  std::unique_ptr<WssClient> ws;
  Inbox inbox;  // every message but forwarded candidates
  std::function<void(const std::string&)> on_candidate;
  bool reading = false;
  bool closed = false;
  int close_code = 0;  // from the server's close frame, 0 = none
  std::string close_error;
};

asio::io_context& home_io(Peer& p) {
  return p.io;
}

struct Generator {
  Args args;
  std::unique_ptr<asio::ssl::context> tls;
  std::uint16_t port = 0;

  WssClientOptions options(const std::string& source) const {
    WssClientOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.server_name = "localhost";  // SNI + the certificate's DNS subjectAltName
    o.verify_peer = args.verify;
    o.local_address = asio::ip::make_address(source);
    o.handshake_timeout = 20s;
    o.stamp_arrivals = true;  // forward latency up to the arrival (on_forwarded)
    return o;
  }
};

// 127.<net>.x.y with at most kPerSourceAddress connections per address.
std::string source_address(int net, int index) {
  const int j = index / kPerSourceAddress;
  return "127." + std::to_string(net) + "." + std::to_string(j / 250) + "." +
         std::to_string(j % 250 + 1);
}

// Fails the awaited operation by aborting the connection when `deadline` passes first.
struct Watchdog {
  Watchdog(asio::io_context& io, WssClient& ws, std::chrono::milliseconds after)
      : timer(std::make_shared<asio::steady_timer>(io, after)) {
    timer->async_wait([&ws, t = timer](boost::system::error_code ec) {
      if (!ec) ws.abort();
    });
  }
  ~Watchdog() { timer->cancel(); }
  std::shared_ptr<asio::steady_timer> timer;
};

// connect, hello, welcome.
asio::awaitable<roam::expected<void, Err>> open_peer(const Generator& g, Peer& p,
                                                     const std::string& source) {
  p.ws = std::make_unique<WssClient>(p.io.get_executor(), *g.tls, g.options(source));
  if (auto c = co_await p.ws->connect(); !c) co_return roam::unexpected(c.error());
  sig::Hello hello;
  hello.token = roam::test::mint_token(kJwtSecret, p.id, 7200s);
  hello.client = "roam-bench/0.1";
  const sig::ClientMessage message = hello;
  if (auto s = co_await p.ws->send(sig::encode(message)); !s) co_return roam::unexpected(s.error());
  Watchdog watchdog(p.io, *p.ws, 20000ms);
  auto reply = co_await p.ws->receive();
  if (!reply) co_return roam::unexpected("waiting for welcome: " + reply.error());
  auto parsed = sig::parse_server_message(*reply);
  if (!parsed || !std::holds_alternative<sig::Welcome>(*parsed)) {
    co_return roam::unexpected("expected welcome, got: " + reply->substr(0, 200));
  }
  co_return roam::expected<void, Err>{};
}

// Keeps a read pending (Beast answers pings only then) and sorts what arrives.
asio::awaitable<void> read_loop(Peer& p) {
  p.reading = true;
  for (;;) {
    auto m = co_await p.ws->receive();
    if (!m) {
      if (p.ws->close_info()) p.close_code = p.ws->close_info()->code;
      p.close_error = m.error();
      p.closed = true;
      p.inbox.close();
      break;
    }
    if (p.on_candidate && m->find("\"type\":\"candidate\"") != std::string::npos) {
      p.on_candidate(*m);
      continue;
    }
    p.inbox.try_send(boost::system::error_code{}, std::move(*m));  // dropped when full
  }
  p.reading = false;
}

// The next message of the wanted type, or nullopt after `timeout`.
template <class T>
asio::awaitable<std::optional<T>> next_of(Peer& p, std::chrono::milliseconds timeout,
                                          std::string* other = nullptr) {
  using namespace asio::experimental::awaitable_operators;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    asio::steady_timer timer(p.io, deadline);
    auto r = co_await (p.inbox.async_receive(kUse) || timer.async_wait(kUse));
    if (r.index() == 1) break;
    auto [ec, text] = std::get<0>(std::move(r));
    if (ec) break;
    auto parsed = sig::parse_server_message(text);
    if (parsed && std::holds_alternative<T>(*parsed)) co_return std::get<T>(std::move(*parsed));
    if (other) *other = text.substr(0, 300);
  }
  co_return std::nullopt;
}

// ---- (a) connections held -------------------------------------------------------------------

struct ConnectionsResult {
  int wanted = 0, held = 0, failed = 0, lost = 0;
  double establish_s = 0, oldest_idle_s = 0;
  long rss_before_kib = 0, rss_after_kib = 0, generator_rss_kib = 0;
  std::vector<double> setup_ms;
  std::map<std::string, int> errors;
  int shutdown_1012 = 0;
  std::map<std::string, int> shutdown_other;  // how the others ended
  double shutdown_s = 0;
};

ConnectionsResult phase_connections(Generator& g, Threads& threads, SignalingServer& server) {
  ConnectionsResult r;
  const int n = g.args.connections;
  r.wanted = n;
  std::this_thread::sleep_for(1s);
  r.rss_before_kib = server.rss_kib();

  std::vector<std::unique_ptr<Peer>> peers(static_cast<std::size_t>(n));
  std::vector<double> setup_ms(static_cast<std::size_t>(n), -1);
  std::mutex errors_mutex;
  std::atomic<int> next{0}, workers_left{0}, ok{0}, bad{0};
  const int workers = std::max(1, g.args.connect_concurrency);
  workers_left = workers;
  const auto start = Clock::now();
  for (int w = 0; w < workers; ++w) {
    const int t = w % threads.size();
    asio::co_spawn(
        threads.at(t),
        [&, t]() -> asio::awaitable<void> {
          for (int i = next++; i < n; i = next++) {
            auto peer = std::make_unique<Peer>(threads.at(t), "a-" + std::to_string(i));
            auto& p = *peer;
            peers[static_cast<std::size_t>(i)] = std::move(peer);
            const auto t0 = Clock::now();
            auto opened = co_await open_peer(g, p, source_address(1, i));
            if (!opened) {
              ++bad;
              std::lock_guard lock(errors_mutex);
              ++r.errors[opened.error()];
              continue;
            }
            setup_ms[static_cast<std::size_t>(i)] = ms_between(t0, Clock::now());
            ++ok;
            asio::co_spawn(p.io, read_loop(p), asio::detached);
          }
          --workers_left;
        },
        asio::detached);
  }
  int last_report = 0;
  while (workers_left > 0) {
    std::this_thread::sleep_for(100ms);
    if (ok + bad - last_report >= 5000) {
      last_report = ok + bad;
      std::printf("  ... %d connected, %d failed, %.1f s\n", ok.load(), bad.load(),
                  seconds_since(start));
      std::fflush(stdout);
    }
  }
  r.establish_s = seconds_since(start);
  const auto established = Clock::now();
  r.failed = bad;
  for (double v : setup_ms)
    if (v >= 0) r.setup_ms.push_back(v);

  std::printf("  %d connected in %.1f s; holding them idle for %d s\n", ok.load(), r.establish_s,
              g.args.hold_s);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(g.args.hold_s));
  r.rss_after_kib = server.rss_kib();
  ::malloc_trim(0);  // the generator's own figure without its freed handshake memory
  r.generator_rss_kib = roam::test::proc_status_kib(::getpid(), "VmRSS:");
  r.oldest_idle_s = seconds_since(start);  // the first connection said hello just after start
  (void)established;
  std::map<std::string, int> lost_reasons;
  for_each_on_its_thread(threads, peers, [&](auto& p) {
    if (!p->ws) return;
    if (p->closed) {
      ++r.lost;
      ++lost_reasons[p->close_error];
    } else if (p->reading) {
      ++r.held;
    }
  });
  for (const auto& [why, count] : lost_reasons)
    std::printf("  lost while idle: %d x %s\n", count, why.c_str());

  // Graceful shutdown: every client should get close 1012.
  const auto stop_start = Clock::now();
  server.terminate();
  roam::test::eventually([&] { return !server.running(); }, 15s, 20ms);
  r.shutdown_s = seconds_since(stop_start);
  auto pending_reads = [&] {
    int reading = 0;
    for_each_on_its_thread(threads, peers, [&](auto& p) { reading += p->reading ? 1 : 0; });
    return reading;
  };
  roam::test::eventually([&] { return pending_reads() == 0; }, 5s, 100ms);
  for_each_on_its_thread(threads, peers, [&](auto& p) {
    if (p->close_code == 1012) {
      ++r.shutdown_1012;
    } else {
      ++r.shutdown_other[p->reading ? "still reading after 5 s" : p->close_error];
    }
    if (p->ws && p->reading) p->ws->abort();
  });
  // Let aborted reads finish, then free every peer on its own thread (one whose read is still
  // pending is leaked rather than freed under its coroutine).
  roam::test::eventually([&] { return pending_reads() == 0; }, 10s, 50ms);
  for_each_on_its_thread(threads, peers, [](auto& p) {
    if (p->reading)
      (void)p.release();
    else
      p.reset();
  });
  return r;
}

// ---- (b) forwarding ---------------------------------------------------------------------------

struct Pair {
  Pair(asio::io_context& io, int i)
      : sender(io, "b-s-" + std::to_string(i)),
        receiver(io, "b-r-" + std::to_string(i)),
        wake(io) {}
  Peer sender, receiver;
  std::string session;
  std::int64_t sent = 0, received = 0;
  asio::steady_timer wake;  // the receiver cancels it when a message arrives
  bool waiting = false;
  std::string send_error;
};

asio::io_context& home_io(Pair& p) {
  return p.sender.io;
}

struct RunStats {
  std::mutex mutex;
  std::vector<double> latency_ms;  // send() to the receiving coroutine
  std::vector<double> arrival_ms;  // send() to the kernel's arrival stamp at the receiver
  std::int64_t measured = 0;
  Clock::time_point measure_from, measure_to;
};

struct RunConfig {
  Clock::time_point end;
  int window = 8;
  std::optional<Clock::duration> interval;  // paced: one message per interval per pair
};

// Nanoseconds on `C`: the steady Clock for latency, the system clock to compare with the
// kernel's arrival stamps.
template <class C = Clock>
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(C::now().time_since_epoch()).count();
}

// `phase`: this pair's offset into the pacing interval, so that paced pairs do not all send
// at the same instant (bursts of one message per pair would measure a queue, not the server).
// A host candidate with RFC 8839 extension attributes carrying a sequence number and the send
// time twice: this process's steady clock (read again by the receiver) and the system clock
// (the kernel's arrival stamps are on it).
std::string candidate_prefix(const Pair& pair) {
  return "{\"type\":\"candidate\",\"session\":\"" + pair.session +
         "\",\"candidate\":\"candidate:1 1 UDP 2130706431 127.0.0.1 50000 typ host seq ";
}

// Sends `count` numbered candidates on the pair as one burst (one TCP send).
asio::awaitable<bool> send_burst(Pair& pair, const std::string& prefix, std::int64_t count) {
  for (std::int64_t k = 0; k < count; ++k) {
    std::string text = prefix;
    text += std::to_string(pair.sent);
    text += " ts ";
    text += std::to_string(now_ns());
    text += " rt ";
    text += std::to_string(now_ns<std::chrono::system_clock>());
    text += "\"}";
    auto ok = co_await pair.sender.ws->send(std::move(text), k + 1 < count);
    if (!ok) {
      pair.send_error = ok.error();
      co_return false;
    }
    ++pair.sent;
  }
  co_return true;
}

// Saturation: each pair keeps `window` messages in flight, refilling the window in one burst
// whenever the receiver frees room (as a busy agent's trickle would go).
asio::awaitable<void> send_loop(Pair& pair, RunConfig cfg, std::atomic<int>& running) {
  const std::string prefix = candidate_prefix(pair);
  while (Clock::now() < cfg.end) {
    while (pair.sent - pair.received >= cfg.window && Clock::now() < cfg.end) {
      pair.waiting = true;
      pair.wake.expires_after(20ms);
      co_await pair.wake.async_wait(kUse);
      pair.waiting = false;
    }
    if (Clock::now() >= cfg.end) break;
    if (!co_await send_burst(pair, prefix, cfg.window - (pair.sent - pair.received))) break;
  }
  --running;
}

// Paced load: one ticker per generator thread instead of a timer per pair, so the generator
// wakes once per millisecond rather than once per message. Each pair sends one message per
// cfg.interval, the pairs' schedules spread evenly over it; what falls due in one tick goes out
// back to back, about as bursty as that many independent clients at this rate would be.
asio::awaitable<void> paced_loop(asio::io_context& io, std::vector<Pair*> pairs, RunConfig cfg,
                                 std::atomic<int>& running) {
  constexpr auto kTick = 1ms;
  const auto interval = *cfg.interval;
  const auto start = Clock::now();
  std::vector<Clock::time_point> next(pairs.size());
  std::vector<std::string> prefixes;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    next[i] = start + interval * static_cast<long>(i) / static_cast<long>(pairs.size());
    prefixes.push_back(candidate_prefix(*pairs[i]));
  }
  asio::steady_timer tick(io);
  // A tick that comes late (the thread starved, as at --generator-nice 19) sends everything
  // due by then, and the ticks it missed are skipped: counting through each of them kept the
  // loop sending for a minute after cfg.end, into the next run.
  for (auto at = start + kTick; at < cfg.end; at = std::max(at + kTick, Clock::now())) {
    tick.expires_at(at);
    co_await tick.async_wait(kUse);
    const auto now = Clock::now();
    if (now >= cfg.end) break;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      Pair& pair = *pairs[i];
      if (!pair.send_error.empty()) continue;
      std::int64_t due = 0;  // beyond the window, messages stay due for a later tick
      while (next[i] <= now && pair.sent + due - pair.received < cfg.window) {
        ++due;
        next[i] += interval;
      }
      co_await send_burst(pair, prefixes[i], due);
    }
  }
  running -= static_cast<int>(pairs.size());
}

// Two latencies per message: to the receiving coroutine (what a client program sees, including
// this generator's own wait for the CPU on a shared machine) and to the kernel's arrival stamp
// on the receiving socket (the server's forwarding and the network only; the stamp is that of
// the newest segment read, so it never comes before the message's own arrival).
void on_forwarded(Pair& pair, RunStats& stats, const std::string& text) {
  const auto now = Clock::now();
  const std::int64_t arrived_unix_ns = pair.receiver.ws->last_arrival_unix_ns();
  ++pair.received;
  if (pair.waiting) pair.wake.cancel();
  const auto at = text.find(" ts ");
  if (at == std::string::npos) return;
  const std::int64_t sent = std::strtoll(text.c_str() + at + 4, nullptr, 10);
  const auto sent_at = Clock::time_point(std::chrono::nanoseconds(sent));
  if (sent_at < stats.measure_from || sent_at >= stats.measure_to) return;
  const double ms = ms_between(sent_at, now);
  const auto rt = text.find(" rt ", at);
  const std::int64_t sent_unix_ns =
      rt == std::string::npos ? 0 : std::strtoll(text.c_str() + rt + 4, nullptr, 10);
  std::lock_guard lock(stats.mutex);
  stats.latency_ms.push_back(ms);
  if (sent_unix_ns > 0 && arrived_unix_ns > 0) {
    stats.arrival_ms.push_back(static_cast<double>(arrived_unix_ns - sent_unix_ns) * 1e-6);
  }
  ++stats.measured;
}

struct ForwardRun {
  double offered = 0;  // paced runs: messages/s offered; 0 = saturated
  double rate = 0;     // forwarded messages/s over the measured interval
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  double arrival_p50 = 0, arrival_p99 = 0;  // up to the kernel's arrival stamp (on_forwarded)
  std::optional<double> server_p50, server_p99;
  double server_cpu = 0, generator_cpu = 0;  // cores busy
  double steal = 0;                          // share of the machine's CPU time stolen
  std::int64_t sent = 0, received = 0;
};

struct ForwardingResult {
  bool ok = false;
  std::string failure;
  std::vector<ForwardRun> saturated, paced, light, sweep;
};

// offered_rate 0: saturation (a window of messages in flight per pair), else paced.
ForwardRun forward_run(Threads& threads, std::vector<std::unique_ptr<Pair>>& pairs,
                       SignalingServer& server, const Args& args, double offered_rate) {
  const bool paced = offered_rate > 0;
  RunStats stats;
  const auto start = Clock::now();
  const auto warmup = std::chrono::duration_cast<Clock::duration>(0.5s);
  const auto length =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.duration_s));
  stats.measure_from = start + warmup;
  stats.measure_to = start + warmup + length;
  RunConfig cfg;
  cfg.end = stats.measure_to;
  cfg.window = paced ? 128 : args.window;  // paced: stay below the server's 256-message queue
  if (paced) {
    cfg.interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(static_cast<double>(pairs.size()) / offered_rate));
  }
  std::int64_t sent_before = 0, received_before = 0;
  for_each_on_its_thread(threads, pairs, [&](auto& p) {
    sent_before += p->sent;
    received_before += p->received;
    Pair* pair = p.get();
    p->receiver.on_candidate = [pair, &stats](const std::string& text) {
      on_forwarded(*pair, stats, text);
    };
  });
  std::atomic<int> running{static_cast<int>(pairs.size())};
  if (paced) {
    for (int t = 0; t < threads.size(); ++t) {
      std::vector<Pair*> mine;
      for (auto& p : pairs)
        if (&p->sender.io == &threads.at(t)) mine.push_back(p.get());
      asio::co_spawn(threads.at(t), paced_loop(threads.at(t), std::move(mine), cfg, running),
                     asio::detached);
    }
  } else {
    for (auto& p : pairs)
      asio::co_spawn(p->sender.io, send_loop(*p, cfg, running), asio::detached);
  }

  std::this_thread::sleep_until(stats.measure_from);
  const std::string metrics_before = server.metrics();
  const double server_cpu0 = cpu_seconds(server.pid()), self_cpu0 = self_cpu_seconds();
  const auto machine0 = machine_time();
  const auto t0 = Clock::now();
  std::this_thread::sleep_until(stats.measure_to);
  const double wall = seconds_since(t0);
  ForwardRun run;
  run.offered = offered_rate;
  run.server_cpu = (cpu_seconds(server.pid()) - server_cpu0) / wall;
  run.generator_cpu = (self_cpu_seconds() - self_cpu0) / wall;
  run.steal = steal_fraction(machine0, machine_time());
  const std::string metrics_after = server.metrics();
  // The senders use this frame (`running`): never leave, nor start the next run, before they
  // are done. (Before paced_loop skipped missed ticks, starved senders ran on for a minute.)
  for (int minutes = 1; !roam::test::eventually([&] { return running == 0; }, 60s, 5ms);
       ++minutes) {
    std::printf(
        "  warning: %d of %zu pairs' senders still running %d min after the run's end; "
        "waiting for them\n",
        running.load(), pairs.size(), minutes);
    std::fflush(stdout);
  }
  // Drain what is still in flight, so the next run starts from an empty pipe.
  const bool drained = roam::test::eventually(
      [&] {
        std::int64_t s = 0, rcv = 0;
        for_each_on_its_thread(threads, pairs, [&](auto& p) {
          s += p->sent;
          rcv += p->received;
        });
        run.sent = s - sent_before;
        run.received = rcv - received_before;
        return s == rcv;
      },
      5s, 20ms);
  if (!drained) {
    std::printf(
        "  warning: %lld messages still in flight 5 s after the run's end: the next run "
        "starts with them\n",
        static_cast<long long>(run.sent - run.received));
    std::fflush(stdout);
  }
  for_each_on_its_thread(threads, pairs, [](auto& p) { p->receiver.on_candidate = nullptr; });
  std::lock_guard lock(stats.mutex);
  run.rate = static_cast<double>(stats.measured) / args.duration_s;
  run.p50 = percentile(stats.latency_ms, 0.5);
  run.p90 = percentile(stats.latency_ms, 0.9);
  run.p99 = percentile(stats.latency_ms, 0.99);
  run.arrival_p50 = percentile(stats.arrival_ms, 0.5);
  run.arrival_p99 = percentile(stats.arrival_ms, 0.99);
  run.max = stats.latency_ms.empty()
                ? 0
                : *std::max_element(stats.latency_ms.begin(), stats.latency_ms.end());
  const auto h = parse_histogram(metrics_after, "roam_signaling_forward_seconds", "route=\"local\"")
                     .minus(parse_histogram(metrics_before, "roam_signaling_forward_seconds",
                                            "route=\"local\""));
  run.server_p50 = h.quantile(0.5);
  run.server_p99 = h.quantile(0.99);
  return run;
}

// Opens both peers of every pair and a session between them.
std::string open_pairs(Generator& g, std::vector<std::unique_ptr<Pair>>& pairs, int net) {
  std::atomic<int> left{static_cast<int>(pairs.size())};
  std::mutex m;
  std::string failure;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    Pair& pair = *pairs[i];
    asio::co_spawn(
        pair.sender.io,
        [&, i]() -> asio::awaitable<void> {
          auto fail = [&](const std::string& why) {
            std::lock_guard lock(m);
            if (failure.empty()) failure = why;
          };
          const int index = static_cast<int>(i);
          auto a = co_await open_peer(g, pair.sender, source_address(net, 2 * index));
          if (a) a = co_await open_peer(g, pair.receiver, source_address(net, 2 * index + 1));
          if (!a) {
            fail("opening pair " + std::to_string(i) + ": " + a.error());
            --left;
            co_return;
          }
          asio::co_spawn(pair.sender.io, read_loop(pair.sender), asio::detached);
          asio::co_spawn(pair.receiver.io, read_loop(pair.receiver), asio::detached);
          sig::Connect connect{"c" + std::to_string(i), pair.receiver.id};
          const sig::ClientMessage message = connect;
          auto sent = co_await pair.sender.ws->send(sig::encode(message));
          std::string other = sent ? "timeout" : sent.error();
          std::optional<sig::Session> s, rs;
          if (sent) s = co_await next_of<sig::Session>(pair.sender, 10000ms, &other);
          if (s) rs = co_await next_of<sig::Session>(pair.receiver, 10000ms, &other);
          if (!s || !rs) {
            fail("pair " + std::to_string(i) + ": no session (" + other + ")");
          } else {
            pair.session = s->session;
          }
          --left;
        },
        asio::detached);
  }
  while (left > 0)
    std::this_thread::sleep_for(10ms);
  return failure;
}

void close_pairs(Threads& threads, std::vector<std::unique_ptr<Pair>>& pairs) {
  for_each_on_its_thread(threads, pairs, [](auto& p) {
    for (Peer* peer : {&p->sender, &p->receiver})
      if (peer->ws) peer->ws->abort();
  });
  roam::test::eventually(
      [&] {
        bool any = false;
        for_each_on_its_thread(threads, pairs, [&](auto& p) {
          if (p->sender.reading || p->receiver.reading) any = true;
        });
        return !any;
      },
      5s, 20ms);
  for_each_on_its_thread(threads, pairs, [](auto& p) {
    if (p->sender.reading || p->receiver.reading)
      (void)p.release();  // never under a read
    else
      p.reset();
  });
}

ForwardingResult phase_forwarding(Generator& g, Threads& threads, SignalingServer& server) {
  ForwardingResult result;
  std::vector<std::unique_ptr<Pair>> pairs;
  for (int i = 0; i < g.args.pairs; ++i)
    pairs.push_back(std::make_unique<Pair>(threads.at(i), i));
  result.failure = open_pairs(g, pairs, 2);
  if (!result.failure.empty()) {
    close_pairs(threads, pairs);
    return result;
  }
  std::printf("  %d pairs with a session each (%d connections)\n", g.args.pairs, 2 * g.args.pairs);
  auto print = [](const std::string& label, const ForwardRun& r) {
    char what[32] = "saturated";
    if (r.offered > 0) std::snprintf(what, sizeof what, "paced@%.0f", r.offered);
    std::printf(
        "  %-7s %-13s %7.0f msg/s  latency p50 %6.2f p90 %6.2f p99 %7.2f max %7.2f ms | "
        "at arrival p50 %6.2f p99 %7.2f ms | "
        "server hist p50 %s p99 %s | cpu: server %.2f cores (%.1f us/msg), generator %.2f, "
        "steal %.1f%%\n",
        label.c_str(), what, r.rate, r.p50, r.p90, r.p99, r.max, r.arrival_p50, r.arrival_p99,
        fmt_ms(r.server_p50).c_str(), fmt_ms(r.server_p99).c_str(), r.server_cpu,
        r.rate > 0 ? r.server_cpu / r.rate * 1e6 : 0.0, r.generator_cpu, 100 * r.steal);
    std::fflush(stdout);
  };
  for (int round = 1; round <= g.args.rounds; ++round) {
    result.saturated.push_back(forward_run(threads, pairs, server, g.args, 0));
    const std::string label = "round " + std::to_string(round);
    print(label, result.saturated.back());
    // Latency is measured below saturation: at --paced-rate, or at 80% of what this round
    // reached when that is less (beyond it the figure would only measure the queue).
    const double offered = std::min(g.args.paced_rate, 0.8 * result.saturated.back().rate);
    result.paced.push_back(forward_run(threads, pairs, server, g.args, offered));
    print(label, result.paced.back());
    // The floor: latency when the machine is far from busy.
    result.light.push_back(forward_run(threads, pairs, server, g.args, g.args.light_rate));
    print(label, result.light.back());
  }
  if (!g.args.sweep.empty()) std::printf("  latency against load (one paced run each):\n");
  for (double rate : g.args.sweep) {
    result.sweep.push_back(forward_run(threads, pairs, server, g.args, rate));
    print("sweep", result.sweep.back());
  }
  std::string send_error;
  int lost = 0;
  for_each_on_its_thread(threads, pairs, [&](auto& p) {
    if (!p->send_error.empty()) send_error = p->send_error;
    if (p->sender.closed || p->receiver.closed) {
      ++lost;
      if (send_error.empty())
        send_error = p->sender.closed ? p->sender.close_error : p->receiver.close_error;
    }
  });
  if (lost > 0) {
    std::printf("  WARNING: %d pairs lost a connection during the runs (%s)\n", lost,
                send_error.c_str());
  }
  close_pairs(threads, pairs);
  result.ok = true;
  return result;
}

// ---- (c) relay grants -------------------------------------------------------------------------

struct GrantStats {
  std::vector<double> client_ms;
  int with_token = 0, without_token = 0, no_relay = 0, errors = 0;
  std::string first_error;
  Histogram server;
  double misses = 0, token_grants = 0;
};

// `count` connect -> session -> bye cycles on one pair.
asio::awaitable<void> grant_loop(Pair& pair, int count, GrantStats& stats, std::mutex& m,
                                 std::atomic<int>& left) {
  auto fail = [&](const std::string& why) {
    std::lock_guard lock(m);
    ++stats.errors;
    if (stats.first_error.empty()) stats.first_error = why;
  };
  for (int i = 0; i < count; ++i) {
    const std::string request = "g" + std::to_string(i);
    sig::Connect connect{request, pair.receiver.id};
    const sig::ClientMessage message = connect;
    std::string text = sig::encode(message);
    const auto t0 = Clock::now();
    auto sent = co_await pair.sender.ws->send(std::move(text));
    if (!sent) {
      fail(sent.error());
      break;
    }
    std::string other;
    auto mine = co_await next_of<sig::Session>(pair.sender, 5000ms, &other);
    const auto t1 = Clock::now();
    if (!mine || mine->request != request) {
      fail("no session for " + request + ": " + other);
      break;
    }
    auto theirs = co_await next_of<sig::Session>(pair.receiver, 5000ms, &other);
    if (!theirs) {
      fail("the other peer got no session: " + other);
      break;
    }
    {
      std::lock_guard lock(m);
      stats.client_ms.push_back(ms_between(t0, t1));
      for (const auto* s : {&*mine, &*theirs}) {
        if (!s->relay)
          ++stats.no_relay;
        else if (s->relay->token)
          ++stats.with_token;
        else
          ++stats.without_token;
      }
    }
    sig::Bye bye{mine->session, "bench"};
    const sig::ClientMessage bye_message = bye;
    auto b = co_await pair.sender.ws->send(sig::encode(bye_message));
    if (!b) {
      fail(b.error());
      break;
    }
    auto echoed = co_await next_of<sig::Bye>(pair.receiver, 5000ms, &other);
    if (!echoed) {
      fail("bye not forwarded: " + other);
      break;
    }
  }
  --left;
}

GrantStats grant_run(std::vector<std::unique_ptr<Pair>>& pairs, int per_pair,
                     SignalingServer& server) {
  GrantStats stats;
  std::mutex m;
  const std::string before = server.metrics();
  std::atomic<int> left{static_cast<int>(pairs.size())};
  for (auto& p : pairs)
    asio::co_spawn(p->sender.io, grant_loop(*p, per_pair, stats, m, left), asio::detached);
  roam::test::eventually([&] { return left == 0; }, 600s, 5ms);
  const std::string after = server.metrics();
  stats.server = parse_histogram(after, "roam_signaling_relay_grant_seconds")
                     .minus(parse_histogram(before, "roam_signaling_relay_grant_seconds"));
  auto diff = [&](const std::string& name, const std::string& labels) {
    return roam::test::scrape_value(after, name, labels).value_or(0) -
           roam::test::scrape_value(before, name, labels).value_or(0);
  };
  stats.misses = diff("roam_signaling_pool_misses_total", "");
  stats.token_grants = diff("roam_signaling_relay_grants_total", "{result=\"token\"");
  return stats;
}

struct GrantResult {
  bool ok = false;
  std::string failure;
  GrantStats sequential, concurrent;
};

GrantResult phase_grants(Generator& g, Threads& threads, SignalingServer& server) {
  GrantResult result;
  const int half = g.args.grants / 2;
  const int c = std::min(g.args.grant_concurrency, half);
  std::vector<std::unique_ptr<Pair>> pairs;
  for (int i = 0; i < c; ++i)
    pairs.push_back(std::make_unique<Pair>(threads.at(i), 1000 + i));
  // open_pairs also creates one session per pair; it ends with the connections.
  result.failure = open_pairs(g, pairs, 3);
  if (!result.failure.empty()) {
    close_pairs(threads, pairs);
    return result;
  }
  std::vector<std::unique_ptr<Pair>> one;
  one.push_back(std::move(pairs.front()));
  result.sequential = grant_run(one, half, server);
  pairs.front() = std::move(one.front());
  result.concurrent = grant_run(pairs, half / c, server);
  close_pairs(threads, pairs);
  result.ok = true;
  return result;
}

void print_grants(const char* what, const GrantStats& s) {
  std::printf(
      "  %-26s n=%zu  client connect->session p50 %.2f p90 %.2f p99 %.2f ms | server "
      "relay_grant_seconds p50 %s p99 %s (n=%.0f)\n",
      what, s.client_ms.size(), percentile(s.client_ms, 0.5), percentile(s.client_ms, 0.9),
      percentile(s.client_ms, 0.99), fmt_ms(s.server.quantile(0.5)).c_str(),
      fmt_ms(s.server.quantile(0.99)).c_str(), s.server.count);
  std::printf(
      "  %-26s sessions with a reservation token %d, without (pool miss) %d, no relay %d; "
      "server: token grants %.0f, pool misses %.0f; errors %d%s%s\n",
      "", s.with_token, s.without_token, s.no_relay, s.token_grants, s.misses, s.errors,
      s.first_error.empty() ? "" : ": ", s.first_error.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--describe") == 0) {
    std::printf("roam-signaling: connections held + RSS, forwarding rate/latency, relay grants\n");
    return 0;
  }
  Args args;
  try {
    auto parsed = parse_args(argc, argv);
    if (!parsed) return 0;
    args = *parsed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_signaling: %s\n", e.what());
    return 2;
  }
  const std::string signaling = std::string(ROAM_BINARY_DIR) + "/bin/roam-signaling";
  const std::string relay = std::string(ROAM_BINARY_DIR) + "/bin/roam-relay";
  for (const auto& binary : {signaling, relay}) {
    if (::access(binary.c_str(), X_OK) != 0) {
      std::printf("skipped: %s is not built (./run build)\n", binary.c_str());
      return 1;
    }
  }
  auto openssl = roam::test::find_program("openssl");
  if (!openssl) {
    std::printf("skipped: the openssl CLI is not installed (apt-get install openssl)\n");
    return 1;
  }
  const bool run_a = args.phases.find('a') != std::string::npos;
  const bool run_b = args.phases.find('b') != std::string::npos;
  const bool run_c = args.phases.find('c') != std::string::npos;

  // Before --server-cpus narrows this process to its share of the CPUs.
  std::string no_wakeup_reference;
  const auto wakeups = roam::test::measure_wakeup_cost(kWakeupRoundTrips, &no_wakeup_reference);

  std::optional<std::string> server_cpus;
  if (args.server_cpus > 0) {
    const auto split = reserve_server_cpus(args.server_cpus);
    if (!split) {
      std::fprintf(stderr,
                   "bench_signaling: --server-cpus %d: this process may use too few CPUs to "
                   "leave any for the generator\n",
                   args.server_cpus);
      return 2;
    }
    server_cpus = split->server;
    if (args.server_threads == 0) args.server_threads = args.server_cpus;
    std::printf(
        "roam-signaling benchmark: ONE instance on loopback, alone on CPU %s with %d I/O "
        "threads; redis-server, coturn, roam-relay and this load generator (%d threads) on CPU "
        "%s.\n",
        split->server.c_str(), args.server_threads, args.client_threads, split->rest.c_str());
  } else {
    std::printf(
        "roam-signaling benchmark: ONE instance on loopback; redis-server, coturn, roam-relay "
        "and this load generator (%d threads) share the machine's %ld cores with it, so every "
        "figure is a lower bound of the server alone.\n",
        args.client_threads, ::sysconf(_SC_NPROCESSORS_ONLN));
  }
  if (args.generator_nice > 0) {
    std::printf(
        "the generator's threads run at nice %d: the server gets the CPU it asks for first, and "
        "client-side latency includes the generator's own wait for CPU.\n",
        args.generator_nice);
  }
  {
    std::ifstream loadavg("/proc/loadavg");
    double one = 0;
    loadavg >> one;
    std::printf("load average before start: %.2f%s\n", one,
                one > 0.5 ? " (other processes are busy: figures will be lower and noisier)" : "");
  }
  if (wakeups) {
    std::printf(
        "machine reference (two threads ping-ponging over pipes, CPUs %s): one thread waking "
        "the other on another CPU costs %.1f us of CPU (both threads) and takes %.1f us "
        "(median); on the same CPU %.1f us and %.1f us. Under a paced load each message wakes "
        "a server thread and the receiving client, and often a second server thread.\n",
        wakeups->cpus.c_str(), wakeups->across_cpus.cpu_us, wakeups->across_cpus.latency_us,
        wakeups->same_cpu.cpu_us, wakeups->same_cpu.latency_us);
  } else {
    std::printf("machine reference: no wake-up cost (%s)\n", no_wakeup_reference.c_str());
  }
  const auto fd_limit = raise_fd_limit();
  // Each held connection is one descriptor here and one in the server (which also inherits
  // this limit); keep a margin for the servers' own sockets, logs and timers.
  if (run_a && fd_limit < static_cast<std::uint64_t>(args.connections) + 200) {
    const int fit = static_cast<int>(fd_limit) - 200;
    std::printf(
        "NOTE: the hard open-files limit is %llu and cannot be raised here (setrlimit refused: "
        "no CAP_SYS_RESOURCE in the initial user namespace), so neither this process nor "
        "roam-signaling can hold %d connections; (a) holds %d instead.\n",
        static_cast<unsigned long long>(fd_limit), args.connections, fit);
    args.connections = fit;
  }

  try {
    TempDir dir;
    if (std::string why;
        !roam::test::make_self_signed_certificate(dir.path(), "server", "localhost", &why)) {
      std::printf("failed: %s\n", why.c_str());
      return 1;
    }
    std::string skip;
    auto redis = roam::test::RedisServer::start(&skip);
    if (!redis) {
      std::printf("skipped: %s\n", skip.c_str());
      return 1;
    }
    // The instances differ in name, flags and CPUs only.
    auto server_options = [&](const std::string& name, std::vector<std::string> flags) {
      return roam::test::SignalingServerOptions{dir.path(),
                                                dir.path() / "server.pem",
                                                dir.path() / "server.key",
                                                kJwtSecret,
                                                kTurnSecret,
                                                redis->port(),
                                                name,
                                                std::move(flags),
                                                server_cpus};
    };
    // Tokens: 2 per session (one per peer): (b)'s pairs and (c)'s grants, plus a margin.
    const int tokens = (run_b ? 2 * args.pairs : 0) +
                       (run_c ? 2 * (args.grants + args.grant_concurrency) : 0) + 50;
    roam::test::CoturnOptions coturn_options;
    coturn_options.secret = kTurnSecret;
    // Each reservation holds an even/odd port pair for 300 s, and the pool refills behind the
    // takes: room for the pool twice over.
    coturn_options.relay_ports = 4 * tokens + 64;
    auto coturn = roam::test::Coturn::start(coturn_options, &skip);
    if (!coturn) {
      std::printf("skipped: %s\n", skip.c_str());
      return 1;
    }
    const auto relay_start = Clock::now();
    auto relay_process = Process::spawn(
        {relay, "--coturn", coturn->address().to_string(), "--secret", kTurnSecret, "--realm",
         coturn->options().realm, "--redis", "127.0.0.1:" + std::to_string(redis->port()),
         "--instance-id", "relay-bench", "--pool-target", std::to_string(tokens), "--max-in-flight",
         "32", "--metrics", "127.0.0.1:0", "--log-level", "warn"},
        dir.path() / "relay.log");
    roam::test::SyncRedis r(redis->port());
    long long pool = 0;
    roam::test::eventually(
        [&] {
          pool = r.command({"ZCARD", roam::relay::pool_key("relay-bench")}).integer;
          return pool >= tokens;
        },
        180s, 100ms);
    std::printf("relay pool: %lld of %d reservation tokens ready after %.1f s\n", pool, tokens,
                seconds_since(relay_start));
    if (pool < tokens) {
      std::printf("  (short: roam-relay log)\n%s\n",
                  roam::test::read_file(dir.path() / "relay.log").c_str());
    }

    Generator g;
    g.args = args;
    auto tls = roam::net::make_tls_client_context((dir.path() / "server.pem").string());
    if (!tls) {
      std::printf("failed: %s\n", tls.error().c_str());
      return 1;
    }
    g.tls = std::make_unique<asio::ssl::context>(std::move(*tls));
    Threads threads(args.client_threads, args.generator_nice);

    std::optional<ConnectionsResult> a;
    if (run_a) {
      std::printf("\n(a) connections held: %d, %d per source address, %d set-ups in flight\n",
                  args.connections, kPerSourceAddress, args.connect_concurrency);
      const std::vector<std::string> flags = {"--threads", std::to_string(args.server_threads),
                                              "--idle-timeout",
                                              std::to_string(kHoldPhaseIdleTimeoutS)};
      SignalingServer server(server_options("sig-a", flags));
      g.port = server.wss_port();
      a = phase_connections(g, threads, server);
      const double per_conn =
          a->held > 0 ? static_cast<double>(a->rss_after_kib - a->rss_before_kib) / a->held : 0;
      std::printf(
          "  held %d of %d (failed %d, lost while idle %d; the oldest idle for %.0f s; pinged "
          "after %d-%d s of silence); set-up %.1f s total = %.0f connections/s\n",
          a->held, a->wanted, a->failed, a->lost, a->oldest_idle_s, kHoldPhaseIdleTimeoutS / 2,
          kHoldPhaseIdleTimeoutS, a->establish_s, (a->wanted - a->failed) / a->establish_s);
      std::printf(
          "  set-up time per connection (TCP+TLS+upgrade+hello/welcome): p10 %.1f "
          "p50 %.1f p90 %.1f p99 %.1f ms\n",
          percentile(a->setup_ms, 0.1), percentile(a->setup_ms, 0.5), percentile(a->setup_ms, 0.9),
          percentile(a->setup_ms, 0.99));
      std::printf(
          "  server RSS: %.1f MiB idle -> %.1f MiB with %d connections = %.1f KiB per "
          "connection (generator RSS %.1f MiB)\n",
          a->rss_before_kib / 1024.0, a->rss_after_kib / 1024.0, a->held, per_conn,
          a->generator_rss_kib / 1024.0);
      std::printf("  SIGTERM: server exited after %.2f s; %d of %d clients got close 1012\n",
                  a->shutdown_s, a->shutdown_1012, a->held);
      for (const auto& [how, count] : a->shutdown_other)
        std::printf("  ... %d ended otherwise: %s\n", count, how.c_str());
      for (const auto& [why, count] : a->errors)
        std::printf("  set-up failure: %d x %s\n", count, why.c_str());
      if (a->failed > 0 || a->lost > 0) std::printf("%s\n", server.log_tail().c_str());
      server.stop();
    }

    // Forwarding and grants measure the server, not the per-connection rate limit (50/s by
    // default): this instance runs with a limit no test client reaches.
    const std::vector<std::string> unlimited = {"--rate",    "10000000",
                                                "--burst",   "10000000",
                                                "--threads", std::to_string(args.server_threads)};
    std::optional<ForwardingResult> b;
    std::optional<GrantResult> c;
    if (run_b || run_c) {
      SignalingServer server(server_options("sig-bc", unlimited));
      g.port = server.wss_port();
      if (run_b) {
        std::printf(
            "\n(b) forwarding: %d pairs, one direction; saturated = %d in flight per pair, paced "
            "= %.0f msg/s offered; %d rounds of %.1f s (server: --rate/--burst 10000000)\n",
            args.pairs, args.window, args.paced_rate, args.rounds, args.duration_s);
        b = phase_forwarding(g, threads, server);
        if (!b->ok)
          std::printf("  failed: %s\n%s\n", b->failure.c_str(), server.log_tail().c_str());
      }
      if (run_c) {
        if (!server.wait_for_relays()) std::printf("  warning: the server lists no relay\n");
        std::printf(
            "\n(c) relay grants: %d connects (half sequential on one pair, half on %d "
            "pairs at once), each followed by bye\n",
            args.grants, args.grant_concurrency);
        c = phase_grants(g, threads, server);
        if (!c->ok) {
          std::printf("  failed: %s\n%s\n", c->failure.c_str(), server.log_tail().c_str());
        } else {
          print_grants("sequential", c->sequential);
          print_grants("concurrent", c->concurrent);
        }
      }
      server.stop();
    }

    // ---- summary ----
    if (server_cpus) {
      std::printf("\nsummary (one roam-signaling instance alone on CPU %s, %d I/O threads)\n",
                  server_cpus->c_str(), args.server_threads);
    } else {
      std::printf(
          "\nsummary (one roam-signaling instance; the generator and the other servers "
          "share the same %ld cores)\n",
          ::sysconf(_SC_NPROCESSORS_ONLN));
    }
    std::printf("  %-44s %-26s %s\n", "figure", "target", "measured");
    auto row = [](const std::string& figure, const std::string& target, const std::string& value,
                  std::optional<bool> met) {
      std::printf("  %-44s %-26s %s%s\n", figure.c_str(), target.c_str(), value.c_str(),
                  !met ? "" : (*met ? "  [met]" : "  [NOT met]"));
    };
    char buf[256];
    if (a) {
      const double mib = a->rss_after_kib / 1024.0;
      std::snprintf(
          buf, sizeof buf, "%d held, server RSS %.0f MiB (%.1f KiB/conn)", a->held, mib,
          a->held ? (a->rss_after_kib - a->rss_before_kib) / static_cast<double>(a->held) : 0.0);
      // Fewer than 20000 (a smaller run, or the open-files cap): only a failure is certain.
      std::optional<bool> met;
      if (mib > 1024)
        met = false;
      else if (a->held >= 20000)
        met = true;
      row("(a) idle authenticated WSS connections", ">= 20000 within 1 GiB", buf, met);
      std::snprintf(buf, sizeof buf, "%.0f MiB",
                    (a->rss_before_kib +
                     20000.0 * (a->rss_after_kib - a->rss_before_kib) / std::max(1, a->held)) /
                        1024.0);
      row("(a) server RSS extrapolated to 20000", "<= 1024 MiB", buf, std::nullopt);
      std::snprintf(buf, sizeof buf, "%.1f s (%.0f/s)", a->establish_s,
                    (a->wanted - a->failed) / a->establish_s);
      row("(a) time to establish them", "-", buf, std::nullopt);
    }
    if (b && b->ok) {
      std::vector<double> rates, p50, p90, p99, arrival50, arrival99, paced_rate, srv99, cpu,
          us_per_msg;
      for (const auto& r : b->saturated) {
        rates.push_back(r.rate);
        cpu.push_back(r.server_cpu);
        if (r.rate > 0) us_per_msg.push_back(r.server_cpu / r.rate * 1e6);
      }
      for (const auto& r : b->paced) {
        p50.push_back(r.p50);
        p90.push_back(r.p90);
        p99.push_back(r.p99);
        arrival50.push_back(r.arrival_p50);
        arrival99.push_back(r.arrival_p99);
        paced_rate.push_back(r.rate);
        if (r.server_p99) srv99.push_back(*r.server_p99 * 1e3);
      }
      std::snprintf(buf, sizeof buf, "%.0f msg/s median (p10 %.0f, p90 %.0f), server %.2f cores",
                    median(rates), percentile(rates, 0.1), percentile(rates, 0.9), median(cpu));
      row("(b) forwarded candidates/s, saturated", ">= 50000/s", buf, median(rates) >= 50000);
      std::snprintf(buf, sizeof buf, "%.1f us/msg = %.0f msg/s per busy core", median(us_per_msg),
                    1e6 / median(us_per_msg));
      row("(b) server CPU per forwarded message", "saturated", buf, std::nullopt);
      if (wakeups) {
        std::snprintf(buf, sizeof buf, "%.1f us of CPU across CPUs, %.1f us on one",
                      wakeups->across_cpus.cpu_us, wakeups->same_cpu.cpu_us);
        row("(b) reference: one thread wake-up", "-", buf, std::nullopt);
      }
      std::snprintf(buf, sizeof buf, "p50 %.2f p90 %.2f p99 %.2f ms at %.0f msg/s", median(p50),
                    median(p90), median(p99), median(paced_rate));
      row("(b) forward latency, paced, client-side", "p99 <= 10 ms at 50000/s", buf,
          median(p99) <= 10 && median(paced_rate) >= 0.98 * 50000);
      std::snprintf(buf, sizeof buf, "p50 %.2f p99 %.2f ms", median(arrival50), median(arrival99));
      row("(b) ... up to the arrival at the client", "-", buf, std::nullopt);
      std::snprintf(buf, sizeof buf, "p99 %.3f ms (histogram estimate)",
                    srv99.empty() ? 0.0 : median(srv99));
      row("(b) forward latency, paced, server hist", "-", srv99.empty() ? "n/a" : buf,
          std::nullopt);
      std::vector<double> l50, l99, lrate, lsrv99;
      for (const auto& r : b->light) {
        l50.push_back(r.p50);
        l99.push_back(r.p99);
        lrate.push_back(r.rate);
        if (r.server_p99) lsrv99.push_back(*r.server_p99 * 1e3);
      }
      std::snprintf(buf, sizeof buf, "p50 %.2f p99 %.2f ms at %.0f msg/s (server hist p99 %.3f ms)",
                    median(l50), median(l99), median(lrate), lsrv99.empty() ? 0.0 : median(lsrv99));
      row("(b) forward latency, light load", "-", buf, std::nullopt);
      // The highest offered load of the sweep (or the paced rounds) whose p99 met 10 ms, seen
      // by the receiving clients, at the kernel's arrival stamp on their sockets (which leaves
      // out the generator's own wait for CPU on this shared machine) and by the server's own
      // histogram (read to written).
      enum class Seen { kClient, kArrival, kServer };
      auto p99_of = [](const ForwardRun& r, Seen seen) {
        if (seen == Seen::kClient) return r.p99;
        if (seen == Seen::kArrival) return r.arrival_p99;
        return r.server_p99 ? *r.server_p99 * 1e3 : 1e9;
      };
      auto highest = [&](Seen seen) -> const ForwardRun* {
        const ForwardRun* best = nullptr;
        for (const auto* runs : {&b->sweep, &b->paced}) {
          for (const auto& r : *runs) {
            const double p99 = p99_of(r, seen);
            if (p99 <= 10.0 && r.rate >= 0.98 * r.offered && (!best || r.offered > best->offered))
              best = &r;
          }
        }
        return best;
      };
      if (const auto* best = highest(Seen::kClient)) {
        std::snprintf(buf, sizeof buf, "%.0f msg/s: p50 %.2f p99 %.2f ms", best->offered, best->p50,
                      best->p99);
      } else {
        std::snprintf(buf, sizeof buf, "none of the measured loads");
      }
      row("(b) highest load with p99 <= 10 ms", "-", buf, std::nullopt);
      if (const auto* best = highest(Seen::kArrival)) {
        std::snprintf(buf, sizeof buf, "%.0f msg/s: p50 %.2f p99 %.2f ms", best->offered,
                      best->arrival_p50, best->arrival_p99);
      } else {
        std::snprintf(buf, sizeof buf, "none of the measured loads");
      }
      row("(b) ... up to the arrival at the client", "-", buf, std::nullopt);
      if (const auto* best = highest(Seen::kServer)) {
        std::snprintf(buf, sizeof buf, "%.0f msg/s: server hist p99 %.3f ms", best->offered,
                      *best->server_p99 * 1e3);
      } else {
        std::snprintf(buf, sizeof buf, "none of the measured loads");
      }
      row("(b) ... by the server histogram", "-", buf, std::nullopt);
    }
    if (c && c->ok) {
      for (const auto* s : {&c->sequential, &c->concurrent}) {
        const bool seq = s == &c->sequential;
        const auto p99 = s->server.quantile(0.99);
        std::snprintf(buf, sizeof buf, "p50 %s p99 %s (client p99 %.2f ms)",
                      fmt_ms(s->server.quantile(0.5)).c_str(), fmt_ms(p99).c_str(),
                      percentile(s->client_ms, 0.99));
        row(seq ? "(c) relay grant, sequential (server hist)"
                : "(c) relay grant, concurrent (server hist)",
            "p99 <= 5 ms", buf, p99 ? std::optional(*p99 <= 0.005) : std::nullopt);
      }
      std::snprintf(buf, sizeof buf, "%d with token, %d pool misses (server: %.0f misses)",
                    c->sequential.with_token + c->concurrent.with_token,
                    c->sequential.without_token + c->concurrent.without_token,
                    c->sequential.misses + c->concurrent.misses);
      row("(c) sessions' relay grants", "no misses (pool sized)", buf, std::nullopt);
    }
    std::printf(
        "  server histogram figures are estimates: linear interpolation inside the buckets, "
        "as Prometheus' histogram_quantile() does.\n");
    // The throughput target is for an instance with 2 cores of its own (targets.md).
    if (run_b && args.server_cpus != 2) {
      std::printf(
          "  the forwarding target is defined for an instance with 2 cores of its own: this run "
          "%s; on a machine with >= 4 CPUs, --server-cpus 2 measures that setting.\n",
          server_cpus ? "gave the server a different number of cores"
                      : "shared the cores with the load generator");
    }
    relay_process.stop();
  } catch (const std::exception& e) {
    std::printf("failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
