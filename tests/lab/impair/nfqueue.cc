#include "nfqueue.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern "C" {
#include <linux/netfilter.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
}

namespace roam::lab {
namespace {

constexpr int kCopyBytes = 64;           // enough for the IP header; lengths come from CAP_LEN
constexpr int kSocketBuffer = 16 << 20;  // held packets are in the kernel, not in this buffer
constexpr std::size_t kVerdictBatch = 64 * 1024;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

NfQueue::NfQueue(std::uint16_t queue_num, std::uint32_t max_held)
    : queue_num_(queue_num), rx_(0xffff + MNL_SOCKET_BUFFER_SIZE), tx_(kVerdictBatch) {
  nl_ = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl_) fail("netlink socket");
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) fail("netlink bind");
  port_id_ = mnl_socket_get_portid(nl_);
  int size = kSocketBuffer;
  setsockopt(fd(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  int on = 1;
  mnl_socket_setsockopt(nl_, NETLINK_NO_ENOBUFS, &on, sizeof on);

  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num_);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
  nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) fail("NFQUEUE bind");
  int n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
  if (n < 0 || mnl_cb_run(rx_.data(), n, 0, port_id_, nullptr, nullptr) < 0) {
    fail("NFQUEUE bind of queue " + std::to_string(queue_num_));
  }

  nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num_);
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, kCopyBytes);
  nfq_nlmsg_cfg_put_qmaxlen(nlh, max_held);
  // GSO packets stay whole (one verdict for the whole super-packet, as a real link would
  // carry its segments back to back).
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
  nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) fail("NFQUEUE params");
  n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
  if (n < 0 || mnl_cb_run(rx_.data(), n, 0, port_id_, nullptr, nullptr) < 0) {
    fail("NFQUEUE params");
  }
}

NfQueue::~NfQueue() {
  if (nl_) mnl_socket_close(nl_);
}

int NfQueue::fd() const {
  return mnl_socket_get_fd(nl_);
}

void NfQueue::drain(const std::function<void(const QueuedPacket&)>& on_packet) {
  struct Context {
    const std::function<void(const QueuedPacket&)>* on_packet;
  } context{&on_packet};
  auto callback = [](const nlmsghdr* nlh, void* data) -> int {
    nlattr* attr[NFQA_MAX + 1] = {};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) return MNL_CB_OK;
    const auto* ph =
        static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
    QueuedPacket p;
    p.id = ntohl(ph->packet_id);
    p.length = attr[NFQA_PAYLOAD] ? mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]) : 0;
    if (attr[NFQA_CAP_LEN]) p.length = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]));
    (*static_cast<Context*>(data)->on_packet)(p);
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = recv(fd(), rx_.data(), rx_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == ENOBUFS) continue;  // kernel dropped messages; keep going
      fail("NFQUEUE receive");
    }
    mnl_cb_run(rx_.data(), static_cast<size_t>(n), 0, port_id_, callback, &context);
  }
}

void NfQueue::verdict(std::uint32_t id, bool accept) {
  if (tx_used_ + MNL_SOCKET_BUFFER_SIZE / 64 > tx_.size()) flush();
  nlmsghdr* nlh = nfq_nlmsg_put(tx_.data() + tx_used_, NFQNL_MSG_VERDICT, queue_num_);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), accept ? NF_ACCEPT : NF_DROP);
  tx_used_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

void NfQueue::flush() {
  if (tx_used_ == 0) return;
  if (mnl_socket_sendto(nl_, tx_.data(), tx_used_) < 0) fail("NFQUEUE verdict");
  tx_used_ = 0;
}

}  // namespace roam::lab
