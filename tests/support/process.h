// Child processes for integration tests: real servers started on free loopback ports and
// always stopped (SIGTERM, then SIGKILL) when the owning object dies.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace roam::test {

// Full path of an executable on PATH (or in /usr/sbin, /sbin), or nullopt.
std::optional<std::string> find_program(const std::string& name);

// Asks the kernel for a currently free loopback port (bind to port 0, read it, close).
std::uint16_t free_udp_port();
std::uint16_t free_tcp_port();
// A free UDP port P such that P..P+count-1 are all free (for coturn relay ranges).
std::uint16_t free_udp_port_range(int count);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class Process {
 public:
  Process() = default;
  // Starts argv[0] (absolute path) with stdout and stderr appended to `log`.
  static Process spawn(const std::vector<std::string>& argv, const std::filesystem::path& log);
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Sends SIGTERM, waits up to `grace`, then SIGKILL. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

 private:
  pid_t pid_ = -1;
};

std::string read_file(const std::filesystem::path& path);

}  // namespace roam::test
