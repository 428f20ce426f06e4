#include "agent/net/interface_monitor.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace roam::agent {

namespace asio = boost::asio;

namespace {

// One recv() of a dump reply holds at most ~32 KiB (the kernel's netlink_dump skb); notification
// datagrams are smaller. A larger datagram is reported as MSG_TRUNC and costs a re-dump.
constexpr std::size_t kDatagramBytes = 64 * 1024;
// After a failed dump request (e.g. EBUSY while the kernel still finishes an older dump).
constexpr auto kRetryDelay = milliseconds(100);

std::string errno_text(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

}  // namespace

class InterfaceMonitor::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, InterfaceMonitorOptions options, ChangeHandler on_change,
       ReadyHandler on_ready, ErrorHandler on_error)
      : options_(options),
        table_(options.policy),
        descriptor_(executor),
        timer_(executor),
        on_change_(std::move(on_change)),
        on_ready_(std::move(on_ready)),
        on_error_(std::move(on_error)),
        buffer_(kDatagramBytes) {}

  expected<void, std::string> start() {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) return unexpected(errno_text("cannot open a NETLINK_ROUTE socket", errno));
    const int size = options_.receive_buffer_bytes;
    // SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN; plain SO_RCVBUF is capped.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    local.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      const int error = errno;
      ::close(fd);
      return unexpected(errno_text("cannot bind the NETLINK_ROUTE socket", error));
    }
    descriptor_.assign(fd);
    stopped_ = false;
    // Subscribed before dumping: a change racing the dump is seen as a notification too.
    begin_dump();
    wait_readable();
    return {};
  }

  void stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    descriptor_.close(ignored);
  }

  bool ready() const { return ready_; }
  const netlink::InterfaceTable& table() const { return table_; }
  std::uint64_t resyncs() const { return resyncs_; }

 private:
  enum class Phase { kIdle, kLinks, kAddresses };

  void begin_dump() {
    if (ready_) ++resyncs_;
    table_.begin_resync();
    resync_pending_ = false;
    dump_interrupted_ = false;
    request(netlink::Dump::kLinks);
  }

  void request(netlink::Dump what) {
    phase_ = what == netlink::Dump::kLinks ? Phase::kLinks : Phase::kAddresses;
    dump_seq_ = ++seq_;
    const auto bytes = netlink::build_dump_request(what, dump_seq_);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    const auto sent = ::sendto(descriptor_.native_handle(), bytes.data(), bytes.size(), 0,
                               reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
    if (sent < 0) {
      retry_later();
      return;
    }
    arm_timer(options_.dump_timeout);
  }

  void retry_later() {
    table_.abort_resync();
    phase_ = Phase::kIdle;
    resync_pending_ = true;
    arm_timer(kRetryDelay);
  }

  void arm_timer(Duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped_) return;
      // Either a retry is due or the current dump stalled: start over.
      if (self->phase_ != Phase::kIdle) self->table_.abort_resync();
      self->begin_dump();
    });
  }

  void wait_readable() {
    descriptor_.async_wait(asio::posix::descriptor_base::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                             if (self->stopped_) return;
                             if (ec) return self->fail("netlink wait failed: " + ec.message());
                             self->drain();
                           });
  }

  void drain() {
    for (;;) {
      sockaddr_nl from{};
      iovec iov{buffer_.data(), buffer_.size()};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof(from);
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      const auto n = ::recvmsg(descriptor_.native_handle(), &msg, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) {
          lost_events();
          continue;
        }
        return fail(errno_text("netlink receive failed", errno));
      }
      // Only the kernel (port id 0) speaks for the routing tables.
      if (from.nl_pid != 0) continue;
      if ((msg.msg_flags & MSG_TRUNC) != 0) {
        lost_events();
        continue;
      }
      handle(ByteSpan(buffer_.data(), static_cast<std::size_t>(n)));
      if (stopped_) return;
    }
    wait_readable();
  }

  // Notifications were dropped: the table can no longer be trusted, re-dump. A dump in
  // progress is finished first (the kernel refuses a second one with EBUSY).
  void lost_events() {
    if (phase_ == Phase::kIdle) {
      begin_dump();
    } else {
      resync_pending_ = true;
    }
  }

  void handle(ByteSpan datagram) {
    const auto now = Clock::now();
    auto messages = netlink::parse_messages(datagram);
    if (!messages) {
      lost_events();  // a corrupt datagram may have carried changes
      return;
    }
    std::vector<netlink::InterfaceChange> changes;
    for (const auto& m : *messages) {
      const bool ours = phase_ != Phase::kIdle && m.header.seq == dump_seq_;
      if (const auto* error = std::get_if<netlink::Error>(&m.body)) {
        if (ours && error->error != 0) retry_later();
      } else if (std::holds_alternative<netlink::Done>(m.body)) {
        if (ours) dump_done(now, changes);
      } else {
        if (ours && m.header.dump_interrupted()) dump_interrupted_ = true;
        table_.apply(m, now, changes);
      }
    }
    if (!changes.empty() && on_change_) on_change_(changes);
    if (became_ready_) {
      became_ready_ = false;
      if (on_ready_ && !stopped_) on_ready_();
    }
    if (resynced_) {
      resynced_ = false;
      if (options_.on_resync && !stopped_) options_.on_resync(resyncs_);
    }
  }

  void dump_done(TimePoint now, std::vector<netlink::InterfaceChange>& changes) {
    timer_.cancel();
    if (phase_ == Phase::kLinks) {
      request(netlink::Dump::kAddresses);
      return;
    }
    phase_ = Phase::kIdle;
    if (dump_interrupted_ || resync_pending_) {
      table_.abort_resync();
      begin_dump();
      return;
    }
    table_.end_resync(now, changes);
    if (!ready_) {
      ready_ = true;
      became_ready_ = true;
    } else {
      resynced_ = true;
    }
  }

  void fail(const std::string& why) {
    stop();
    if (on_error_) on_error_(why);
  }

  InterfaceMonitorOptions options_;
  netlink::InterfaceTable table_;
  asio::posix::stream_descriptor descriptor_;
  asio::steady_timer timer_;
  ChangeHandler on_change_;
  ReadyHandler on_ready_;
  ErrorHandler on_error_;
  std::vector<std::byte> buffer_;
  Phase phase_ = Phase::kIdle;
  std::uint32_t seq_ = 0;
  std::uint32_t dump_seq_ = 0;
  bool stopped_ = true;
  bool ready_ = false;
  bool became_ready_ = false;
  bool resynced_ = false;
  bool resync_pending_ = false;
  bool dump_interrupted_ = false;
  std::uint64_t resyncs_ = 0;
};

InterfaceMonitor::InterfaceMonitor(asio::any_io_executor executor, InterfaceMonitorOptions options,
                                   ChangeHandler on_change, ReadyHandler on_ready,
                                   ErrorHandler on_error)
    : impl_(std::make_shared<Impl>(std::move(executor), options, std::move(on_change),
                                   std::move(on_ready), std::move(on_error))) {}

InterfaceMonitor::~InterfaceMonitor() {
  impl_->stop();
}

expected<void, std::string> InterfaceMonitor::start() {
  return impl_->start();
}
void InterfaceMonitor::stop() {
  impl_->stop();
}
bool InterfaceMonitor::ready() const {
  return impl_->ready();
}
const netlink::InterfaceTable& InterfaceMonitor::table() const {
  return impl_->table();
}
std::uint64_t InterfaceMonitor::resyncs() const {
  return impl_->resyncs();
}

}  // namespace roam::agent
