// Logging setup shared by the binaries: spdlog to stderr, level from config ("trace", "debug",
// "info", "warn", "error", "off"). Secrets (tokens, passwords, message bodies) are never logged.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace roam::log {

// Configures the default logger; returns false (and keeps "info") for an unknown level name.
bool init(std::string_view program, std::string_view level);

}  // namespace roam::log
