#include "agent/commands/interfaces.h"

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>

#include <csignal>
#include <ctime>
#include <ostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "agent/net/interface_monitor.h"

namespace roam::agent {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

std::string scope_name(std::uint8_t scope) {
  switch (scope) {
    case RT_SCOPE_UNIVERSE:
      return "global";
    case RT_SCOPE_SITE:
      return "site";
    case RT_SCOPE_LINK:
      return "link";
    case RT_SCOPE_HOST:
      return "host";
    case RT_SCOPE_NOWHERE:
      return "nowhere";
  }
  return std::to_string(scope);
}

std::string link_type(std::uint16_t type) {
  switch (type) {
    case ARPHRD_LOOPBACK:
      return "loopback";
    case ARPHRD_ETHER:
      return "ether";
    case ARPHRD_NONE:
      return "none";  // tun, wireguard
    case ARPHRD_PPP:
      return "ppp";
  }
  return std::to_string(type);
}

json::array flag_names(const netlink::Address& a) {
  json::array out;
  if (a.temporary()) out.emplace_back("temporary");
  if (a.deprecated()) out.emplace_back("deprecated");
  if (a.tentative()) out.emplace_back("tentative");
  if (a.dad_failed()) out.emplace_back("dadfailed");
  if ((a.flags & IFA_F_OPTIMISTIC) != 0) out.emplace_back("optimistic");
  if ((a.flags & IFA_F_NODAD) != 0) out.emplace_back("nodad");
  if ((a.flags & IFA_F_PERMANENT) != 0) out.emplace_back("permanent");
  return out;
}

void put_address(json::object& o, const netlink::Address& a) {
  o["address"] = a.address.to_string();
  o["prefix"] = a.prefix_length;
  o["family"] = a.address.is_v4() ? "ipv4" : "ipv6";
  o["scope"] = scope_name(a.scope);
  o["flags"] = flag_names(a);
}

double monotonic_seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

void print_change(const netlink::InterfaceChange& c, std::ostream& out) {
  json::object o;
  o["event"] = std::string(to_string(c.kind));
  o["mono"] = monotonic_seconds(c.at);
  o["time"] = utc_now();
  o["index"] = c.index;
  o["interface"] = c.name;
  if (c.address) put_address(o, *c.address);
  out << json::serialize(o) << std::endl;  // one flushed line per event: readers follow live
}

void print_snapshot(const std::vector<netlink::InterfaceView>& views, bool as_json,
                    std::ostream& out) {
  if (as_json) {
    json::array interfaces;
    for (const auto& v : views) {
      json::object o;
      o["interface"] = v.link.name;
      o["index"] = v.link.index;
      o["type"] = link_type(v.link.type);
      o["up"] = v.link.up();
      o["running"] = v.link.running();
      o["usable"] = v.usable;
      json::array addresses;
      for (std::size_t i = 0; i < v.addresses.size(); ++i) {
        json::object a;
        put_address(a, v.addresses[i]);
        a["usable"] = static_cast<bool>(v.address_usable[i]);
        addresses.push_back(std::move(a));
      }
      o["addresses"] = std::move(addresses);
      interfaces.push_back(std::move(o));
    }
    json::object root;
    root["interfaces"] = std::move(interfaces);
    out << json::serialize(root) << "\n";
    return;
  }
  if (views.empty()) out << "no usable interfaces (--all lists every interface)\n";
  for (const auto& v : views) {
    out << v.link.name << "  index " << v.link.index << "  " << link_type(v.link.type) << "  "
        << (v.link.up() ? (v.link.running() ? "up" : "up, no carrier") : "down")
        << (v.usable ? "" : "  (not usable)") << "\n";
    for (std::size_t i = 0; i < v.addresses.size(); ++i) {
      const auto& a = v.addresses[i];
      out << "  " << a.address.to_string() << "/" << int{a.prefix_length} << "  scope "
          << scope_name(a.scope);
      for (const auto& f : flag_names(a))
        out << "  " << f.as_string().c_str();
      out << (v.address_usable[i] ? "" : "  (not usable)") << "\n";
    }
  }
}

}  // namespace

int run_interfaces(const InterfacesOptions& options, std::ostream& out, std::ostream& err) {
  asio::io_context io;
  InterfaceMonitorOptions monitor_options;
  if (options.all) {
    monitor_options.policy = {.loopback = true, .link_local = true, .deprecated = true};
  }
  if (options.receive_buffer_bytes > 0) {
    monitor_options.receive_buffer_bytes = options.receive_buffer_bytes;
  }
  monitor_options.on_resync = [&](std::uint64_t count) {
    if (!options.watch) return;
    json::object o;
    o["event"] = "resync";
    o["count"] = count;
    o["mono"] = monotonic_seconds(Clock::now());
    o["time"] = utc_now();
    out << json::serialize(o) << std::endl;
  };
  int status = 0;
  asio::steady_timer deadline(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);

  InterfaceMonitor* monitor_ptr = nullptr;
  const auto finish = [&](int code) {
    status = code;
    if (monitor_ptr != nullptr) monitor_ptr->stop();
    deadline.cancel();
    signals.cancel();
  };
  InterfaceMonitor monitor(
      io.get_executor(), monitor_options,
      [&](const std::vector<netlink::InterfaceChange>& changes) {
        if (!options.watch) return;
        for (const auto& c : changes)
          print_change(c, out);
      },
      [&] {
        deadline.cancel();
        if (!options.watch) {
          print_snapshot(monitor_ptr->table().snapshot(options.all), options.json, out);
          return finish(0);
        }
        json::object o;
        o["event"] = "ready";
        o["mono"] = monotonic_seconds(Clock::now());
        o["time"] = utc_now();
        out << json::serialize(o) << std::endl;
      },
      [&](const std::string& why) {
        err << "roam interfaces: " << why << "\n";
        finish(1);
      });
  monitor_ptr = &monitor;

  if (auto started = monitor.start(); !started) {
    err << "roam interfaces: " << started.error()
        << " (netlink is Linux-only; inside a sandbox, allow AF_NETLINK sockets)\n";
    return 1;
  }
  deadline.expires_after(options.timeout);
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    err << "roam interfaces: the kernel did not answer the interface dump within "
        << to_ms(options.timeout) / 1000 << " s\n";
    finish(1);
  });
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) finish(0);
  });
  io.run();
  return status;
}

}  // namespace roam::agent
