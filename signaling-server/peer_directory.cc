#include "signaling-server/peer_directory.h"

namespace roam::signaling {

std::shared_ptr<Connection> PeerDirectory::add(const std::string& peer,
                                               const std::shared_ptr<Connection>& connection,
                                               PeerInfo info) {
  std::lock_guard lock(mutex_);
  auto& slot = peers_[peer];
  std::shared_ptr<Connection> replaced;
  if (slot.identity != connection.get()) replaced = slot.connection.lock();
  slot = Slot{connection, connection.get(), std::move(info), 0};
  return replaced;
}

bool PeerDirectory::remove(const std::string& peer, const Connection* connection) {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(peer);
  if (it == peers_.end() || it->second.identity != connection) return false;
  peers_.erase(it);
  return true;
}

void PeerDirectory::set_generation(const std::string& peer, const Connection* connection,
                                   std::int64_t generation) {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(peer);
  if (it != peers_.end() && it->second.identity == connection) it->second.generation = generation;
}

std::optional<PeerDirectory::Entry> PeerDirectory::find(const std::string& peer) const {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) return std::nullopt;
  auto connection = it->second.connection.lock();
  if (!connection) return std::nullopt;
  return Entry{std::move(connection), it->second.info, it->second.generation};
}

std::shared_ptr<Connection> PeerDirectory::connection_of(const std::string& peer) const {
  std::lock_guard lock(mutex_);
  auto it = peers_.find(peer);
  return it == peers_.end() ? nullptr : it->second.connection.lock();
}

std::size_t PeerDirectory::peers() const {
  std::lock_guard lock(mutex_);
  return peers_.size();
}

std::vector<PeerDirectory::Registered> PeerDirectory::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<Registered> out;
  out.reserve(peers_.size());
  for (const auto& [peer, slot] : peers_) {
    if (auto connection = slot.connection.lock()) {
      out.push_back({std::move(connection), peer, slot.info, slot.generation});
    }
  }
  return out;
}

void PeerDirectory::track(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex_);
  open_[connection.get()] = connection;
}

void PeerDirectory::untrack(const Connection* connection) {
  std::lock_guard lock(mutex_);
  open_.erase(connection);
}

std::vector<std::shared_ptr<Connection>> PeerDirectory::connections() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Connection>> out;
  out.reserve(open_.size());
  for (const auto& [identity, weak] : open_) {
    if (auto c = weak.lock()) out.push_back(std::move(c));
  }
  return out;
}

std::size_t PeerDirectory::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_.size();
}

}  // namespace roam::signaling
