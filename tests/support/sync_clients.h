// Small blocking clients for tests: Redis (RESP2) and HTTP/1.0 GET, over loopback TCP.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace roam::test {

// A RESP2 reply: nil, integer, bulk/simple string, error text, or array.
struct RespReply {
  enum class Type { kNil, kInteger, kString, kError, kArray } type = Type::kNil;
  std::int64_t integer = 0;
  std::string text;  // string or error
  std::vector<RespReply> elements;
};

class SyncRedis {
 public:
  explicit SyncRedis(std::uint16_t port);
  ~SyncRedis();
  SyncRedis(const SyncRedis&) = delete;
  SyncRedis& operator=(const SyncRedis&) = delete;
  // Throws std::runtime_error when the connection fails.
  RespReply command(const std::vector<std::string>& argv);

 private:
  RespReply read_reply();
  std::string read_line();
  int fd_ = -1;
  std::string buffer_;
};

// Body of GET http://127.0.0.1:port/path, or nullopt on any failure or non-200 status.
std::optional<std::string> http_get(
    std::uint16_t port, const std::string& path,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// The value of the first sample line of `metric` (exact name, optional {labels} prefix match)
// in a Prometheus text exposition; nullopt if absent.
std::optional<double> scrape_value(const std::string& exposition, const std::string& metric,
                                   const std::string& labels = "");

}  // namespace roam::test
