// One NFQUEUE queue over libmnl/libnetfilter_queue: receive packet ids and lengths, give
// verdicts later (holding a verdict is how a packet is delayed without netem).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

struct mnl_socket;

namespace roam::lab {

struct QueuedPacket {
  std::uint32_t id = 0;
  std::size_t length = 0;  // full length on the wire (layer 3), even when only a prefix is copied
};

class NfQueue {
 public:
  // Binds `queue_num` in the calling process's network namespace. Throws std::runtime_error
  // naming the failing step (e.g. the queue is already bound by another process).
  NfQueue(std::uint16_t queue_num, std::uint32_t max_held);
  ~NfQueue();
  NfQueue(const NfQueue&) = delete;
  NfQueue& operator=(const NfQueue&) = delete;

  int fd() const;

  // Reads every message currently available (non-blocking) and calls `on_packet` for each.
  void drain(const std::function<void(const QueuedPacket&)>& on_packet);

  // NF_ACCEPT or NF_DROP for one packet; verdicts are buffered and sent by flush().
  void verdict(std::uint32_t id, bool accept);
  void flush();

 private:
  mnl_socket* nl_ = nullptr;
  std::uint16_t queue_num_;
  unsigned port_id_ = 0;
  std::vector<char> rx_;
  std::vector<char> tx_;
  std::size_t tx_used_ = 0;
};

}  // namespace roam::lab
