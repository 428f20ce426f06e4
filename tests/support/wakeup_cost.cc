#include "tests/support/wakeup_cost.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "tests/support/cpu_affinity.h"

namespace roam::test {
namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

class Pipe {
 public:
  Pipe() { ok_ = ::pipe(fds_.data()) == 0; }
  ~Pipe() {
    if (ok_) {
      ::close(fds_[0]);
      ::close(fds_[1]);
    }
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  bool ok() const { return ok_; }
  void put() const {
    const char byte = 1;
    while (::write(fds_[1], &byte, 1) < 0 && errno == EINTR) {
    }
  }
  void take() const {
    char byte = 0;
    while (::read(fds_[0], &byte, 1) < 0 && errno == EINTR) {
    }
  }

 private:
  std::array<int, 2> fds_{-1, -1};
  bool ok_ = false;
};

// One ping-pong run between a thread on `ping_cpu` and one on `pong_cpu`.
std::optional<WakeupCost> ping_pong(int ping_cpu, int pong_cpu, int round_trips, std::string* why) {
  Pipe to_pong, to_ping;
  if (!to_pong.ok() || !to_ping.ok()) {
    *why = std::string("pipe: ") + std::strerror(errno);
    return std::nullopt;
  }
  // Both loops always run to the end (a pipe between two live threads does not fail), so
  // neither thread is left blocked; a failed pin is reported afterwards.
  double pong_cpu_s = 0;
  bool pong_pinned = false;
  std::thread pong([&] {
    pong_pinned = pin_calling_thread({pong_cpu});
    const double start = thread_cpu_seconds();
    for (int i = 0; i < round_trips; ++i) {
      to_pong.take();
      to_ping.put();
    }
    pong_cpu_s = thread_cpu_seconds() - start;
  });
  const bool ping_pinned = pin_calling_thread({ping_cpu});
  // Let the other thread reach its first read(), so that the first hop wakes it too.
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::vector<double> hops_us;
  hops_us.reserve(static_cast<std::size_t>(round_trips));
  const double start = thread_cpu_seconds();
  for (int i = 0; i < round_trips; ++i) {
    const auto sent = Clock::now();
    to_pong.put();
    to_ping.take();
    hops_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent).count() / 2);
  }
  const double ping_cpu_s = thread_cpu_seconds() - start;
  pong.join();
  if (!ping_pinned || !pong_pinned || hops_us.empty()) {
    *why = "the ping-pong threads could not be pinned to CPUs " + std::to_string(ping_cpu) +
           " and " + std::to_string(pong_cpu);
    return std::nullopt;
  }
  std::nth_element(hops_us.begin(), hops_us.begin() + static_cast<long>(hops_us.size() / 2),
                   hops_us.end());
  WakeupCost cost;
  cost.cpu_us = (ping_cpu_s + pong_cpu_s) / (2.0 * round_trips) * 1e6;
  cost.latency_us = hops_us[hops_us.size() / 2];
  return cost;
}

}  // namespace

std::optional<WakeupReference> measure_wakeup_cost(int round_trips, std::string* why) {
  const std::vector<int> cpus = allowed_cpus();
  if (cpus.size() < 2) {
    *why = cpus.empty() ? "its CPU affinity cannot be read" : "this process may use only one CPU";
    return std::nullopt;
  }
  WakeupReference reference;
  reference.cpus = std::to_string(cpus.front()) + "," + std::to_string(cpus.back());
  auto across = ping_pong(cpus.front(), cpus.back(), round_trips, why);
  auto same = across ? ping_pong(cpus.front(), cpus.front(), round_trips, why) : std::nullopt;
  // The calling thread was pinned for the run: give it back every CPU it had.
  pin_calling_thread(cpus);
  if (!across || !same) return std::nullopt;
  reference.across_cpus = *across;
  reference.same_cpu = *same;
  return reference;
}

}  // namespace roam::test
