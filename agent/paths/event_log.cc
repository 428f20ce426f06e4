#include "agent/paths/event_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include <boost/json/serialize.hpp>

namespace roam::agent {

expected<std::unique_ptr<EventLog>, std::string> EventLog::open(const std::string& path,
                                                                TimePoint start) {
  if (path.empty()) return std::unique_ptr<EventLog>(new EventLog(nullptr, false, start));
  if (path == "-") return std::unique_ptr<EventLog>(new EventLog(stdout, false, start));
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return unexpected("cannot open event log " + path + ": " + std::strerror(errno));
  return std::unique_ptr<EventLog>(new EventLog(f, true, start));
}

EventLog::~EventLog() {
  if (owned_ && file_) std::fclose(file_);
}

void EventLog::write(std::string_view event, boost::json::object fields, TimePoint now) {
  if (!file_) return;
  // The wall clock is read here, not derived from `now`: the monotonic and real clocks drift
  // apart (NTP slewing), and "ts" is for matching other hosts' timestamps.
  const double ts =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double t_ms = std::chrono::duration<double, std::milli>(now - start_).count();
  boost::json::object line;
  line.reserve(fields.size() + 3);
  line["ts"] = ts;
  line["t_ms"] = t_ms;
  line["event"] = event;
  for (auto& [k, v] : fields)
    line[k] = std::move(v);
  const std::string text = boost::json::serialize(line);
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

}  // namespace roam::agent
