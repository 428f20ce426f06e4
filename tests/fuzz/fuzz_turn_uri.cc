// Fuzzes the TURN URI parser (relay grants come from the network). Properties: never crashes;
// errors name the problem; an accepted URI's address re-parses from its canonical form.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/turn/uri.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = roam::turn::parse_turn_uri(text);
  if (!r) {
    if (r.error().empty()) std::abort();
    return 0;
  }
  if (r->port == 0) std::abort();
  const std::string host = r->ip.is_v6() ? "[" + r->ip.to_string() + "]" : r->ip.to_string();
  auto again = roam::turn::parse_turn_uri("turn:" + host + ":" + std::to_string(r->port));
  if (!again || *again != *r) std::abort();
  return 0;
}
