// Admission control at accept time: a cap on connections in total and per client IP, so one
// address (or a botnet's worth of them) cannot take every socket. Thread-safe: the listener
// admits, connections on any I/O thread release (through Slot's destructor).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/util/socket_address.h"

namespace roam::signaling {

class ConnectionLimiter : public std::enable_shared_from_this<ConnectionLimiter> {
 public:
  enum class Refusal { kNone, kServerFull, kPerIpCap };

  // Holds one admitted connection's place; releases it when destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(std::shared_ptr<ConnectionLimiter> owner, IpAddress ip);
    Slot(Slot&& other) noexcept = default;
    Slot& operator=(Slot&&) = delete;
    ~Slot();
    explicit operator bool() const { return owner_ != nullptr; }

   private:
    std::shared_ptr<ConnectionLimiter> owner_;
    IpAddress ip_;
  };

  ConnectionLimiter(std::uint32_t max_total, std::uint32_t max_per_ip);

  // An empty Slot and the reason when the connection must be refused.
  Slot admit(const IpAddress& ip, Refusal* refusal);
  std::uint32_t total() const;
  std::uint32_t from(const IpAddress& ip) const;

 private:
  void release(const IpAddress& ip);

  const std::uint32_t max_total_;
  const std::uint32_t max_per_ip_;
  mutable std::mutex mutex_;
  std::uint32_t total_ = 0;
  std::unordered_map<IpAddress, std::uint32_t> per_ip_;
};

}  // namespace roam::signaling
