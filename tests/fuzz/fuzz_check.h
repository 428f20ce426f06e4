// FUZZ_CHECK(cond): a fuzz-target invariant. A violation prints the condition and aborts, which
// libFuzzer reports as a finding and the corpus replay (ctest) as a failure.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "invariant violated: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                                \
    }                                                                              \
  } while (0)
