#include "signaling-server/server.h"

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <prometheus/registry.h>

#include "common/log/log.h"
#include "signaling-server/connection.h"
#include "signaling-server/redis_layout.h"
#include "signaling-server/tls_context.h"

namespace roam::signaling {
namespace asio = boost::asio;
using asio::awaitable;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// After accept() fails for lack of descriptors (EMFILE), wait before trying again rather than
// spinning on the same error.
constexpr std::chrono::milliseconds kAcceptBackoff{100};
constexpr std::chrono::milliseconds kDrainPoll{50};

redis::Options redis_options(const ServerConfig& config) {
  redis::Options options;
  options.host = config.redis.host;
  options.port = config.redis.port;
  options.command_timeout = std::chrono::milliseconds(500);
  options.max_in_flight = 8192;
  return options;
}

awaitable<void> sleep_for(Duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(kUseTuple);
}

}  // namespace

std::uint64_t raise_fd_limit(std::uint64_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_max < wanted) {
    std::uint64_t nr_open = wanted;
    std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
    rlimit raised{std::min<rlim_t>(wanted, nr_open), std::min<rlim_t>(wanted, nr_open)};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;  // root only
  }
  limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, std::max<rlim_t>(limit.rlim_cur, wanted));
  ::setrlimit(RLIMIT_NOFILE, &limit);
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

Server::Server(ServerConfig config) : registry_(std::make_shared<prometheus::Registry>()) {
  // Descriptors: one per connection plus Redis, listeners and slack.
  auto fds = raise_fd_limit(std::uint64_t{config.max_connections} + 1024);
  if (fds < std::uint64_t{config.max_connections} + 64) {
    spdlog::warn("open-file limit {} is below --max-connections {}: raise `ulimit -n`", fds,
                 config.max_connections);
  }
  metrics::Factory factory(*registry_, "signaling");
  metrics_ = std::make_unique<ServerMetrics>(factory);
  auto tls = make_server_tls_context(config.cert_file, config.key_file);
  unsigned threads =
      config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
  context_ = std::make_unique<ServerContext>(std::move(config), *metrics_, std::move(tls));
  router_ = std::make_unique<Router>(*context_);
  context_->router = router_.get();
  const auto& c = context_->config;

  for (unsigned i = 0; i < threads; ++i) {
    auto shard = std::make_unique<Shard>(i);
    shard->redis = std::make_unique<redis::Client>(shard->io.get_executor(), redis_options(c));
    shard->relays = std::make_unique<RelayDirectory>(*shard->redis);
    work_.push_back(asio::make_work_guard(shard->io));
    shards_.push_back(std::move(shard));
  }
  subscriber_ = std::make_unique<redis::Subscriber>(
      shard0().io.get_executor(), redis_options(c),
      [this](const redis::Message& message) { router_->on_published(message); });
  // Every Redis link reports to one state: each shard's command connection (its peers'
  // registrations, routes and grants) and the subscriber (messages for this instance).
  redis_link_up_.assign(shards_.size() + 1, false);
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    shards_[i]->redis->set_observer(
        [this, i](const redis::ConnectionEvent& event) { on_redis_link(i, event); });
  }
  subscriber_->set_observer([this](const redis::ConnectionEvent& event) {
    on_redis_link(redis_link_up_.size() - 1, event);
  });
  if (auto ok = subscriber_->subscribe(layout::instance_channel(c.instance_id)); !ok) {
    throw std::runtime_error("cannot subscribe: " + redis::to_string(ok.error()));
  }
  acceptor_ =
      std::make_unique<asio::ip::tcp::acceptor>(listen_on(shard0().io, c.listen, "--listen"));
  admin_ = std::make_unique<AdminServer>(
      shard0().io, c.admin_listen, [this] { return health(); }, registry_);
  signals_ = std::make_unique<asio::signal_set>(shard0().io, SIGINT, SIGTERM);
  reload_signals_ = std::make_unique<asio::signal_set>(shard0().io, SIGHUP);
}

Server::~Server() = default;

void Server::on_redis_link(std::size_t link, const redis::ConnectionEvent& event) {
  using Kind = redis::ConnectionEvent::Kind;
  if (event.kind == Kind::kConnectFailed) return;
  const bool up = event.kind == Kind::kConnected;
  bool was_all_up = false, all_up = false;
  {
    std::lock_guard lock(redis_links_mutex_);
    was_all_up = std::ranges::all_of(redis_link_up_, [](bool b) { return b; });
    redis_link_up_[link] = up;
    all_up = std::ranges::all_of(redis_link_up_, [](bool b) { return b; });
    // redis_up says whether this instance works fully: after a Redis restart the links come
    // back one by one (each with its own backoff, up to 5 s apart), and until the last one is
    // up some peers' messages still fail.
    metrics_->redis_up.Set(all_up ? 1 : 0);
  }
  const auto& redis = context_->config.redis;
  if (all_up && !was_all_up) {
    spdlog::info("redis {}:{}: all {} connections up", redis.host, redis.port,
                 redis_link_up_.size());
  } else if (was_all_up && !all_up) {
    metrics_->redis_outages.Increment();
  }
  if (!up) spdlog::warn("redis connection lost: {}", redis::to_string(event.cause));
  // After an outage (possibly a Redis restart that lost every key) register our peers again.
  if (up && link == 0) asio::co_spawn(shard0().io, refresh_registrations(), asio::detached);
}

Health Server::health() const {
  bool draining = context_->draining;
  boost::json::object o{
      {"status", draining ? "draining" : "ok"},
      {"instance", context_->config.instance_id},
      {"redis", metrics_->redis_up.Value() > 0 ? "up" : "down"},
      {"peers", context_->directory.peers()},
      {"connections", context_->directory.open_connections()},
      // Relays this instance can grant (shard 0's cache, refreshed every second).
      {"relays", shards_.front()->relays->relays().size()},
  };
  return Health{!draining, boost::json::serialize(o) + "\n"};
}

void Server::run() {
  const auto& c = context_->config;
  for (auto& shard : shards_) {
    shard->redis->start();
    asio::co_spawn(shard->io, shard->relays->run(), asio::detached);
  }
  subscriber_->start();
  admin_->start();
  asio::co_spawn(shard0().io, accept_loop(), asio::detached);
  asio::co_spawn(shard0().io, heartbeat_loop(), asio::detached);
  signals_->async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info(
        "signal {}: shutting down (grace {} s)", signal,
        std::chrono::duration_cast<std::chrono::seconds>(context_->config.shutdown_grace).count());
    begin_shutdown();
  });
  await_reload_signal();

  std::printf("ready wss=%s:%u admin=%s:%u instance=%s\n", c.listen.host.c_str(),
              acceptor_->local_endpoint().port(), c.admin_listen.host.c_str(), admin_->port(),
              c.instance_id.c_str());
  std::fflush(stdout);
  spdlog::info("serving on {}:{} with {} threads; admin on {}:{}", c.listen.host,
               acceptor_->local_endpoint().port(), shards_.size(), c.admin_listen.host,
               admin_->port());

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < shards_.size(); ++i) {
    threads.emplace_back([this, i] { shards_[i]->io.run(); });
  }
  shard0().io.run();
  for (auto& shard : shards_)
    shard->io.stop();
  for (auto& t : threads)
    t.join();
}

awaitable<void> Server::accept_loop() {
  auto& metrics = *metrics_;
  while (acceptor_->is_open()) {
    auto& shard = *shards_[next_shard_++ % shards_.size()];
    auto [ec, socket] = co_await acceptor_->async_accept(shard.io, kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      spdlog::warn("accept: {}", ec.message());
      co_await sleep_for(kAcceptBackoff);
      continue;
    }
    boost::system::error_code endpoint_ec;
    auto remote = socket.remote_endpoint(endpoint_ec);
    if (endpoint_ec) continue;
    auto address = remote.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    auto ip = IpAddress::parse(address.to_string());
    if (!ip) continue;
    ConnectionLimiter::Refusal refusal{};
    auto slot = context_->limiter->admit(*ip, &refusal);
    if (!slot) {
      (refusal == ConnectionLimiter::Refusal::kPerIpCap ? metrics.refused_per_ip
                                                        : metrics.refused_full)
          .Increment();
      continue;  // the socket closes as it goes out of scope
    }
    metrics.accepted.Increment();
    // Signaling messages are small and latency-bound: never wait for Nagle's coalescing.
    socket.set_option(asio::ip::tcp::no_delay(true), endpoint_ec);
    auto connection =
        std::make_shared<Connection>(*context_, shard, std::move(socket), std::move(slot));
    asio::post(shard.io, [connection] { connection->start(); });
  }
}

awaitable<void> Server::heartbeat_loop() {
  double accepted_at_last_trim = 0;
  while (!context_->draining) {
    co_await sleep_for(layout::kHeartbeat);
    if (context_->draining) break;
    co_await refresh_registrations();
    return_cached_tokens(false);
    // A TLS handshake allocates ~100 KiB of transient big-number and hash state; after a wave
    // of set-ups glibc keeps those freed pages between live connections' blocks. malloc_trim()
    // gives whole free pages back (MADV_DONTNEED), so resident memory follows the connections
    // held, not the peak of set-ups in flight. Only after new connections: it walks every arena.
    const double accepted = metrics_->accepted.Value();
    if (accepted != accepted_at_last_trim) {
      accepted_at_last_trim = accepted;
      ::malloc_trim(0);
    }
  }
}

awaitable<void> Server::refresh_registrations() {
  auto peers = context_->directory.snapshot();
  const auto& c = context_->config;
  auto ttl_ms = std::to_string(std::chrono::milliseconds(layout::kPeerTtl).count());
  for (std::size_t first = 0; first < peers.size(); first += layout::kRefreshBatch) {
    auto last = std::min(peers.size(), first + layout::kRefreshBatch);
    std::vector<std::string> keys;
    std::vector<std::string> args{c.instance_id, ttl_ms};
    for (auto i = first; i < last; ++i) {
      keys.push_back(layout::peer_key(peers[i].peer));
      args.push_back(encode_peer_info(peers[i].info));
    }
    auto result =
        co_await shard0().redis->eval(context_->refresh_script, std::move(keys), std::move(args));
    if (!result || !result->as_array()) {
      metrics_->redis_errors.Increment();
      co_return;  // the next heartbeat (or reconnect) tries again
    }
    const auto& generations = *result->as_array();
    for (auto i = first; i < last && i - first < generations.size(); ++i) {
      const auto* generation = generations[i - first].as_integer();
      if (!generation || *generation <= 0) continue;
      auto connection = peers[i].connection;
      asio::post(connection->get_executor(),
                 [connection, g = *generation] { connection->on_registered(g); });
    }
  }
}

void Server::return_cached_tokens(bool all) {
  for (auto& shard : shards_) {
    asio::co_spawn(
        shard->io,
        [this, &shard = *shard, all]() -> awaitable<void> {
          auto tokens = all ? shard.tokens.take_all() : shard.tokens.stale(Clock::now());
          if (!tokens.empty()) co_await context_->grants.give_back(*shard.redis, std::move(tokens));
        },
        asio::detached);
  }
}

void Server::begin_shutdown() {
  if (context_->draining.exchange(true)) {
    stop_all();  // second signal: no more grace
    return;
  }
  boost::system::error_code ignored;
  acceptor_->close(ignored);
  reload_signals_->cancel(ignored);
  for (auto& connection : context_->directory.connections()) {
    asio::post(connection->get_executor(), [connection] {
      connection->close(1012, "server shutting down", DisconnectReason::kShutdown);
    });
  }
  signals_->async_wait([this](boost::system::error_code ec, int) {
    if (!ec) stop_all();
  });
  return_cached_tokens(true);  // before the drain's end, so the ZADDs reach Redis
  asio::co_spawn(shard0().io, drain(), asio::detached);
}

void Server::await_reload_signal() {
  reload_signals_->async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    reload_certificate();
    await_reload_signal();
  });
}

void Server::reload_certificate() {
  const auto& c = context_->config;
  try {
    context_->tls =
        std::make_shared<asio::ssl::context>(make_server_tls_context(c.cert_file, c.key_file));
    metrics_->certificate_reloads.Increment();
    spdlog::info("SIGHUP: certificate reloaded from {} (key {}); new connections use it",
                 c.cert_file, c.key_file);
  } catch (const std::exception& e) {
    metrics_->certificate_reload_failures.Increment();
    spdlog::error("SIGHUP: certificate not reloaded, still serving the previous one: {}", e.what());
  }
}

awaitable<void> Server::drain() {
  auto deadline = Clock::now() + context_->config.shutdown_grace;
  while (context_->directory.open_connections() > 0 && Clock::now() < deadline) {
    co_await sleep_for(kDrainPoll);
  }
  auto left = context_->directory.open_connections();
  if (left > 0) spdlog::warn("shutdown grace over: dropping {} connections", left);
  // Let the last unregister commands reach Redis.
  co_await sleep_for(std::chrono::milliseconds(100));
  stop_all();
}

void Server::stop_all() {
  admin_->stop();
  work_.clear();
  for (auto& shard : shards_)
    shard->io.stop();
}

}  // namespace roam::signaling
