#include "tests/support/sync_clients.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <stdexcept>

namespace roam::test {
namespace {

int connect_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

SyncRedis::SyncRedis(std::uint16_t port) : fd_(connect_loopback(port)) {
  if (fd_ < 0) throw std::runtime_error("cannot connect to redis on port " + std::to_string(port));
  timeval tv{5, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

SyncRedis::~SyncRedis() {
  if (fd_ >= 0) ::close(fd_);
}

RespReply SyncRedis::command(const std::vector<std::string>& argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (const auto& a : argv)
    out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  if (!send_all(fd_, out)) throw std::runtime_error("redis send failed");
  return read_reply();
}

std::string SyncRedis::read_line() {
  for (;;) {
    auto pos = buffer_.find("\r\n");
    if (pos != std::string::npos) {
      std::string line = buffer_.substr(0, pos);
      buffer_.erase(0, pos + 2);
      return line;
    }
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) throw std::runtime_error("redis connection closed");
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

RespReply SyncRedis::read_reply() {
  std::string line = read_line();
  if (line.empty()) throw std::runtime_error("empty RESP line");
  RespReply r;
  char kind = line[0];
  std::string rest = line.substr(1);
  switch (kind) {
    case '+':
      r.type = RespReply::Type::kString;
      r.text = rest;
      return r;
    case '-':
      r.type = RespReply::Type::kError;
      r.text = rest;
      return r;
    case ':':
      r.type = RespReply::Type::kInteger;
      r.integer = std::stoll(rest);
      return r;
    case '$': {
      long long len = std::stoll(rest);
      if (len < 0) return r;  // nil
      while (buffer_.size() < static_cast<std::size_t>(len) + 2) {
        char chunk[4096];
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) throw std::runtime_error("redis connection closed");
        buffer_.append(chunk, static_cast<std::size_t>(n));
      }
      r.type = RespReply::Type::kString;
      r.text = buffer_.substr(0, static_cast<std::size_t>(len));
      buffer_.erase(0, static_cast<std::size_t>(len) + 2);
      return r;
    }
    case '*': {
      long long count = std::stoll(rest);
      if (count < 0) return r;
      r.type = RespReply::Type::kArray;
      for (long long i = 0; i < count; ++i)
        r.elements.push_back(read_reply());
      return r;
    }
  }
  throw std::runtime_error("bad RESP reply: " + line);
}

std::optional<std::string> http_get(std::uint16_t port, const std::string& path,
                                    std::chrono::milliseconds timeout) {
  int fd = connect_loopback(port);
  if (fd < 0) return std::nullopt;
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  std::string response;
  if (send_all(fd, request)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
      char chunk[8192];
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      response.append(chunk, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  auto header_end = response.find("\r\n\r\n");
  const bool ok = response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200");
  if (header_end == std::string::npos || !ok) {
    return std::nullopt;
  }
  return response.substr(header_end + 4);
}

std::optional<double> scrape_value(const std::string& exposition, const std::string& metric,
                                   const std::string& labels) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, metric.size(), metric) != 0) continue;
    std::string rest = line.substr(metric.size());
    if (!rest.empty() && rest[0] != ' ' && rest[0] != '{') continue;  // longer name
    if (!labels.empty() && rest.find(labels) == std::string::npos) continue;
    auto space = line.rfind(' ');
    return std::stod(line.substr(space + 1));
  }
  return std::nullopt;
}

}  // namespace roam::test
