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
  // Fixed-point times (Boost.JSON would print 1.7952828150347593E9): readable and sortable.
  char head[96];
  std::snprintf(head, sizeof head, "{\"ts\":%.6f,\"t_ms\":%.3f,\"event\":", ts, t_ms);
  std::string text = head;
  text += boost::json::serialize(boost::json::value(boost::json::string_view(event)));
  if (!fields.empty()) {
    const std::string rest = boost::json::serialize(fields);  // "{...}"
    text += ',';
    text.append(rest, 1, std::string::npos);
  } else {
    text += '}';
  }
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

}  // namespace roam::agent
