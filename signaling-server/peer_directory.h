// The peers connected to this instance: peer id → its live connection, and every open
// connection (authenticated or not) for shutdown. Thread-safe: connections on every I/O
// thread add and remove themselves; routing on any thread looks peers up. Connections are
// held weakly: the directory never keeps one alive.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/signaling/peer_info.h"

namespace roam::signaling {

class Connection;

class PeerDirectory {
 public:
  struct Entry {
    std::shared_ptr<Connection> connection;
    PeerInfo info;
    std::int64_t generation = 0;  // from the Redis registry; 0 = not registered there
  };

  // Registers `connection` as `peer`; returns the connection it replaces (same peer id), if any.
  std::shared_ptr<Connection> add(const std::string& peer,
                                  const std::shared_ptr<Connection>& connection, PeerInfo info);
  // Removes `peer` only while it still maps to `connection` (a replaced connection leaving
  // must not remove its successor). Returns whether it did.
  bool remove(const std::string& peer, const Connection* connection);
  // Records the registry generation of `peer` if it still maps to `connection`.
  void set_generation(const std::string& peer, const Connection* connection,
                      std::int64_t generation);
  std::optional<Entry> find(const std::string& peer) const;
  // The connection alone (the forwarding hot path: no copy of the peer's info).
  std::shared_ptr<Connection> connection_of(const std::string& peer) const;
  std::size_t peers() const;

  struct Registered {
    std::shared_ptr<Connection> connection;
    std::string peer;
    PeerInfo info;
    std::int64_t generation;
  };
  std::vector<Registered> snapshot() const;

  // Every open connection, for shutdown.
  void track(const std::shared_ptr<Connection>& connection);
  void untrack(const Connection* connection);
  std::vector<std::shared_ptr<Connection>> connections() const;
  std::size_t open_connections() const;

 private:
  struct Slot {
    std::weak_ptr<Connection> connection;
    const Connection* identity = nullptr;
    PeerInfo info;
    std::int64_t generation = 0;
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Slot> peers_;
  std::unordered_map<const Connection*, std::weak_ptr<Connection>> open_;
};

}  // namespace roam::signaling
