#include "agent/commands/progress.h"

#include <unistd.h>

#include <cstdio>

namespace roam::agent {

namespace {
constexpr Duration kRedraw = milliseconds(200);
constexpr int kWidth = 24;
}  // namespace

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return text;
}

ProgressBar::ProgressBar(std::uint64_t total) : total_(total), enabled_(::isatty(2) == 1) {}

void ProgressBar::update(std::uint64_t done, const std::string& note, bool force) {
  if (!enabled_) return;
  const TimePoint now = Clock::now();
  if (!force && now - last_draw_ < kRedraw) return;
  last_draw_ = now;
  const double fraction = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(kWidth, ' ');
  for (int i = 0; i < filled && i < kWidth; ++i)
    bar[i] = '=';
  if (filled < kWidth) bar[filled] = '>';
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double mbit = seconds > 0 ? static_cast<double>(done) * 8 / seconds / 1e6 : 0;
  std::fprintf(stderr, "\r[%s] %3.0f%%  %s / %s  %.1f Mbit/s  %s\x1b[K", bar.c_str(),
               fraction * 100, human_bytes(done).c_str(), human_bytes(total_).c_str(), mbit,
               note.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_) return;
  std::fprintf(stderr, "\n");
}

}  // namespace roam::agent
