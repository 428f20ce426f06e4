// A one-line progress bar on a terminal (stderr), redrawn at most every 200 ms:
// "[=====>     ]  42%  12.3 MiB / 29.1 MiB  85.2 Mbit/s  direct wlan0". Off when stderr is not
// a terminal, so logs and pipes stay clean.
#pragma once

#include <cstdint>
#include <string>

#include "common/util/time.h"

namespace roam::agent {

class ProgressBar {
 public:
  explicit ProgressBar(std::uint64_t total);
  // `done` bytes so far; `note` is shown after the rate (e.g. the active path).
  void update(std::uint64_t done, const std::string& note, bool force = false);
  void finish();  // ends the line
  bool enabled() const { return enabled_; }

 private:
  std::uint64_t total_;
  bool enabled_;
  TimePoint start_ = Clock::now();
  TimePoint last_draw_{};
};

std::string human_bytes(std::uint64_t bytes);

}  // namespace roam::agent
