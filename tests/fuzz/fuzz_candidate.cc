// Fuzzes the RFC 8839 candidate parser. Properties: never crashes; every accepted line passes
// validate(), serializes within kMaxCanonicalCandidateSize, and re-parses to an equal
// Candidate whose text is stable (canonical form is a fixed point).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/ice/candidate.h"
#include "common/ice/candidate_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace roam::ice;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)is_end_of_candidates(text);
  auto candidate = parse_candidate(text);
  if (!candidate) {
    if (describe(candidate.error()).empty()) std::abort();
    return 0;
  }
  if (!validate(*candidate)) std::abort();
  const auto canonical = to_string(*candidate);
  if (canonical.size() > kMaxCanonicalCandidateSize) std::abort();
  auto again = parse_candidate(canonical);
  if (!again || !(*again == *candidate)) std::abort();
  if (to_string(*again) != canonical) std::abort();
  // The priority arithmetic on hostile values.
  (void)pair_priority(candidate->priority, again->priority);
  (void)pair_foundation(*candidate, *again).to_string();
  return 0;
}
