// FUZZ_CHECK(cond): a fuzz-target invariant. A violation prints the condition and aborts, which
// libFuzzer reports as a finding and the corpus replay (ctest) as a failure.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "invariant violated: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

// An error text a decoder returns for bad input: present, bounded, printable ASCII (it is logged
// and may be sent to a peer, so hostile bytes must never be echoed into it raw).
inline void fuzz_check_error_text(std::string_view text, std::size_t max_size) {
  FUZZ_CHECK(!text.empty() && text.size() <= max_size);
  for (char c : text)
    FUZZ_CHECK(c >= 0x20 && c <= 0x7e);
}
