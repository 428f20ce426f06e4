// The path event log (`roam ice --events FILE`): one JSON object per line, each with the wall
// clock ("ts", Unix seconds, for correlating with other machines' logs and the lab's faults)
// and the agent's monotonic clock ("t_ms", milliseconds since start, for durations). The
// schema is documented in docs/path-events.md. Lines are flushed as written, so a crash keeps
// everything before it.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "common/util/expected.h"
#include "common/util/time.h"

namespace roam::agent {

class EventLog {
 public:
  // `path`: a file (created or truncated), "-" for stdout, empty for no log (write() is a no-op).
  static expected<std::unique_ptr<EventLog>, std::string> open(const std::string& path,
                                                               TimePoint start);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Writes {"ts":…,"t_ms":…,"event":event, …fields}. `now` is the monotonic time of the event.
  void write(std::string_view event, boost::json::object fields, TimePoint now);
  bool enabled() const { return file_ != nullptr; }

 private:
  EventLog(std::FILE* file, bool owned, TimePoint start)
      : file_(file), owned_(owned), start_(start) {}
  std::FILE* file_;
  bool owned_;
  TimePoint start_;
};

}  // namespace roam::agent
