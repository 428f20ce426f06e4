// Fuzzes the control stream reader (common/session/control_frame.h). Input: byte 0 seeds how
// the rest, the stream, is split into feeds. Properties:
// - never crashes;
// - the outcome (frames, skipped unknown frames, error) is the same fed in one piece, byte by
//   byte and in the seeded split;
// - every decoded frame passes validate() and encodes to at most 3 + 1024 bytes that decode to
//   an equal frame and re-encode to the same bytes;
// - errors are sticky, non-empty, short plain text; a reader drained after every feed holds at
//   most one partial frame;
// - for texts built from the input, validate() accepts a candidate or a switch reason exactly
//   when encode() produces bytes, and those bytes decode back to the frame.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/session/control_frame.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/piece_sizes.h"

namespace {

using namespace roam;
using namespace roam::session;

constexpr std::size_t kMaxErrorTextSize = 200;

struct Outcome {
  std::vector<ControlFrame> frames;
  std::size_t skipped = 0;
  std::optional<std::string> error;
  bool operator==(const Outcome&) const = default;
};

void check_error(const std::string& e) {
  fuzz_check_error_text(e, kMaxErrorTextSize);
}

// Feeds `stream` in pieces of the sizes `next_size` returns, draining after each feed.
template <class NextSize>
Outcome run(ByteSpan stream, NextSize next_size) {
  ControlFrameReader r;
  Outcome o;
  while (true) {
    const std::size_t n = std::min(next_size(), stream.size());
    auto fed = r.feed(stream.first(n));
    stream = stream.subspan(n);
    while (auto f = r.next())
      o.frames.push_back(std::move(*f));
    if (!fed) {
      check_error(fed.error());
      FUZZ_CHECK(r.failed());
      o.error = fed.error();
      auto again = r.feed(stream);
      FUZZ_CHECK(!again && again.error() == fed.error());
      FUZZ_CHECK(!r.next());
      break;
    }
    FUZZ_CHECK(r.pending_bytes() < kControlFrameHeaderSize + kMaxControlPayloadSize);
    if (stream.empty()) break;
  }
  o.skipped = r.skipped_unknown();
  return o;
}

void check_frame(const ControlFrame& f) {
  FUZZ_CHECK(validate(f).has_value());
  const Bytes wire = encode(f);
  FUZZ_CHECK(wire.size() >= kControlFrameHeaderSize);
  FUZZ_CHECK(wire.size() <= kControlFrameHeaderSize + kMaxControlPayloadSize);
  FUZZ_CHECK(std::to_integer<std::uint8_t>(wire[0]) == static_cast<std::uint8_t>(type_of(f)));
  ControlFrameReader r;
  FUZZ_CHECK(r.feed(wire).has_value());
  auto again = r.next();
  FUZZ_CHECK(again && *again == f);
  FUZZ_CHECK(!r.next());
  FUZZ_CHECK(encode(*again) == wire);
}

void check_built(const ControlFrame& f) {
  const bool valid = validate(f).has_value();
  const Bytes wire = encode(f);
  FUZZ_CHECK(valid == !wire.empty());
  if (!valid) {
    check_error(validate(f).error());
    return;
  }
  check_frame(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ByteSpan stream(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  SeededPieceSizes seeded(data[0]);
  const Outcome split = run(stream, seeded);
  const Outcome bytewise = run(stream, [] { return std::size_t{1}; });
  FUZZ_CHECK(split == bytewise);
  // One feed holds everything until drained, so the pending bound may differ beyond it.
  if (stream.size() <= kMaxControlPendingBytes) {
    const Outcome whole = run(stream, [] { return SIZE_MAX; });
    FUZZ_CHECK(whole == split);
  }
  for (const ControlFrame& f : split.frames)
    check_frame(f);

  const std::string text(as_chars(stream.first(std::min<std::size_t>(stream.size(), 600))));
  check_built(Candidate{text});
  check_built(SwitchRequest{text});
  return 0;
}
