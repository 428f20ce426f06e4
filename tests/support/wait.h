// Polling for integration tests that watch another process (a server, a sidecar) change state.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace roam::test {

// True as soon as `condition` holds, false if it still does not after `timeout`.
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(poll);
  }
  return condition();
}

}  // namespace roam::test
