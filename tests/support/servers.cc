#include "tests/support/servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/support/sync_clients.h"

namespace roam::test {
namespace {

bool wait_until(const std::function<bool()>& ready, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool redis_ping(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const char ping[] = "PING\r\n";
    if (::send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == sizeof ping - 1) {
      pollfd p{fd, POLLIN, 0};
      char buf[16] = {};
      ok = ::poll(&p, 1, 500) == 1 && ::recv(fd, buf, sizeof buf - 1, 0) > 0 &&
           std::strncmp(buf, "+PONG", 5) == 0;
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

bool stun_ping(const SocketAddress& server, int timeout_ms) {
  int fd = ::socket(server.ip.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  // RFC 8489 §5 header: Binding request, length 0, magic cookie, fixed transaction ID.
  unsigned char request[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 'r', 'o',
                               'a',  'm',  '-',  'p',  'i',  'n',  'g',  '-',  '0', '1'};
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (server.ip.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(server.port);
    std::memcpy(&a->sin_addr, server.ip.bytes().data(), 4);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(server.port);
    std::memcpy(&a->sin6_addr, server.ip.bytes().data(), 16);
    len = sizeof *a;
  }
  bool ok = false;
  if (::sendto(fd, request, sizeof request, 0, reinterpret_cast<sockaddr*>(&ss), len) ==
      sizeof request) {
    pollfd p{fd, POLLIN, 0};
    unsigned char buf[1500];
    ok = ::poll(&p, 1, timeout_ms) == 1 && ::recv(fd, buf, sizeof buf, 0) >= 20 &&
         std::memcmp(buf + 8, request + 8, 12) == 0;
  }
  ::close(fd);
  return ok;
}

std::unique_ptr<Coturn> Coturn::start(const CoturnOptions& options, std::string* skip_reason) {
  auto binary = find_program("turnserver");
  if (!binary) {
    if (skip_reason) *skip_reason = "turnserver not installed (apt-get install coturn)";
    return nullptr;
  }
  std::unique_ptr<Coturn> c(new Coturn());
  c->options_ = options;
  c->binary_ = *binary;
  c->port_ = free_udp_port();
  c->min_port_ = free_udp_port_range(options.relay_ports);
  c->max_port_ = static_cast<std::uint16_t>(c->min_port_ + options.relay_ports - 1);
  if (!c->launch()) throw std::runtime_error("turnserver did not start:\n" + c->log());
  return c;
}

bool Coturn::launch() {
  std::vector<std::string> argv = {binary_,
                                   "-n",
                                   "--no-cli",
                                   "--listening-ip=127.0.0.1",
                                   "--relay-ip=127.0.0.1",
                                   "--listening-port=" + std::to_string(port_),
                                   "--min-port=" + std::to_string(min_port_),
                                   "--max-port=" + std::to_string(max_port_),
                                   "--no-tls",
                                   "--no-dtls",
                                   "--no-tcp",
                                   "--use-auth-secret",
                                   "--static-auth-secret=" + options_.secret,
                                   "--realm=" + options_.realm,
                                   "--log-file=" + (dir_.path() / "turn.log").string(),
                                   "--simple-log",
                                   "--userdb=" + (dir_.path() / "turndb.sqlite").string(),
                                   "--pidfile=" + (dir_.path() / "turn.pid").string(),
                                   "--no-stun-backward-compatibility"};
  if (options_.allow_loopback_peers) argv.push_back("--allow-loopback-peers");
  if (options_.statsdb_redis_port) {
    argv.push_back("--redis-statsdb=ip=127.0.0.1 dbname=0 port=" +
                   std::to_string(*options_.statsdb_redis_port) + " connect_timeout=30");
  }
  if (!options_.config_file.empty()) {
    // "-n" means "no configuration file": replace it, or coturn silently ignores -c.
    argv[1] = "-c";
    argv.insert(argv.begin() + 2, options_.config_file);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process_ = Process::spawn(argv, dir_.path() / "stdout.log");
  return wait_until([&] { return stun_ping(address(), 100); }, 10000);
}

Coturn::~Coturn() {
  process_.stop();
}

std::string Coturn::log() const {
  return read_file(dir_.path() / "turn.log") + read_file(dir_.path() / "stdout.log");
}

void Coturn::kill(bool restart) {
  process_.signal(SIGKILL);
  process_.stop();
  if (restart && !launch()) throw std::runtime_error("turnserver did not restart:\n" + log());
}

std::unique_ptr<RedisServer> RedisServer::start(std::string* skip_reason) {
  auto binary = find_program("redis-server");
  if (!binary) {
    if (skip_reason) *skip_reason = "redis-server not installed (apt-get install redis-server)";
    return nullptr;
  }
  std::unique_ptr<RedisServer> r(new RedisServer());
  r->binary_ = *binary;
  r->port_ = free_tcp_port();
  if (!r->launch()) throw std::runtime_error("redis-server did not start:\n" + r->log());
  return r;
}

bool RedisServer::launch() {
  std::vector<std::string> argv = {binary_,
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_.path().string(),
                                   "--daemonize",
                                   "no"};
  process_ = Process::spawn(argv, dir_.path() / "redis.log");
  return wait_until([&] { return redis_ping(port_); }, 10000);
}

RedisServer::~RedisServer() {
  process_.stop();
}

std::string RedisServer::log() const {
  return read_file(dir_.path() / "redis.log");
}

void RedisServer::kill(bool restart) {
  process_.signal(SIGKILL);
  process_.stop();
  if (restart && !launch()) throw std::runtime_error("redis-server did not restart:\n" + log());
}

std::unique_ptr<PrometheusServer> PrometheusServer::start(const std::vector<std::uint16_t>& targets,
                                                          std::string* skip_reason) {
  auto binary = find_program("prometheus");
  if (!binary) {
    if (skip_reason) *skip_reason = "prometheus not installed (apt-get install prometheus)";
    return nullptr;
  }
  std::unique_ptr<PrometheusServer> p(new PrometheusServer());
  p->port_ = free_tcp_port();
  std::string list;
  for (auto t : targets)
    list += (list.empty() ? "'127.0.0.1:" : ", '127.0.0.1:") + std::to_string(t) + "'";
  auto config = p->dir_.path() / "prometheus.yml";
  {
    std::ofstream out(config);
    out << "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n"
        << "scrape_configs:\n  - job_name: roam\n    static_configs:\n      - targets: [" << list
        << "]\n";
  }
  p->process_ = Process::spawn(
      {*binary, "--config.file=" + config.string(),
       "--storage.tsdb.path=" + (p->dir_.path() / "data").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(p->port_), "--log.level=warn"},
      p->dir_.path() / "prometheus.log");
  if (!wait_until([&] { return http_get(p->port_, "/-/ready").has_value(); }, 20000)) {
    throw std::runtime_error("prometheus did not start:\n" + p->log());
  }
  return p;
}

PrometheusServer::~PrometheusServer() {
  process_.stop();
}

std::optional<std::string> PrometheusServer::query(const std::string& promql) const {
  std::string encoded;
  for (unsigned char c : promql) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      encoded.push_back(static_cast<char>(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      encoded += hex;
    }
  }
  return http_get(port_, "/api/v1/query?query=" + encoded);
}

std::string PrometheusServer::log() const {
  return read_file(dir_.path() / "prometheus.log");
}

}  // namespace roam::test
