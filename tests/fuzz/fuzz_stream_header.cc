// Fuzzes the stream header reader and parser (common/session/stream_header.h). Input: byte 0
// seeds how the rest, the stream, is split into feeds. Properties:
// - never crashes or throws;
// - the outcome (status, header, error) is the same fed in one piece, byte by byte and in the
//   seeded split, and the bytes after the header (rest() plus what was not fed) are the same;
// - the reader agrees with parse_stream_header() on the first line;
// - every accepted header passes validate() and encodes to one line of at most 4096 bytes that
//   parses back to an equal header and re-encodes to the same bytes;
// - errors are non-empty, short plain text;
// - a file name built from the input passes validate() exactly when encode() produces a line,
//   and an accepted name is a plain one (no '/', '\\', leading '.', control characters).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/session/stream_header.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/piece_sizes.h"

namespace {

using namespace roam;
using namespace roam::session;
using Status = StreamHeaderReader::Status;

constexpr std::size_t kMaxErrorTextSize = 200;

struct Outcome {
  Status status = Status::kNeedMore;
  std::optional<StreamHeader> header;
  std::string error;
  std::string after;  // kDone: rest() and the bytes never fed
  bool operator==(const Outcome&) const = default;
};

void check_error(const std::string& e) {
  fuzz_check_error_text(e, kMaxErrorTextSize);
}

template <class NextSize>
Outcome run(ByteSpan stream, NextSize next_size) {
  StreamHeaderReader r;
  Outcome o;
  while (o.status == Status::kNeedMore && !stream.empty()) {
    const std::size_t n = std::min(next_size(), stream.size());
    o.status = r.feed(stream.first(n));
    FUZZ_CHECK(o.status == r.status());
    stream = stream.subspan(n);
  }
  if (o.status == Status::kDone) {
    o.header = r.header();
    FUZZ_CHECK(r.error().empty());
    // Done is final and consumes nothing more.
    FUZZ_CHECK(r.feed(as_bytes("{}\n")) == Status::kDone);
  } else {
    FUZZ_CHECK(r.rest().empty());
  }
  if (o.status == Status::kError) {
    check_error(r.error());
    o.error = r.error();
    FUZZ_CHECK(r.feed(as_bytes("{\"v\":1,\"kind\":\"pipe\"}\n")) == Status::kError);
  }
  // On an error the stream is reset: where the reader stopped does not matter.
  if (o.status == Status::kDone) {
    o.after = std::string(as_chars(r.rest())) + std::string(as_chars(stream));
  }
  return o;
}

void check_header(const StreamHeader& h) {
  FUZZ_CHECK(validate(h).has_value());
  const Bytes wire = encode(h);
  FUZZ_CHECK(!wire.empty() && wire.size() <= kMaxStreamHeaderSize);
  const std::string_view text = as_chars(wire);
  FUZZ_CHECK(text.find('\n') == text.size() - 1);
  auto again = parse_stream_header(text.substr(0, text.size() - 1));
  FUZZ_CHECK(again && *again == h);
  FUZZ_CHECK(encode(*again) == wire);
  StreamHeaderReader r;
  FUZZ_CHECK(r.feed(wire) == Status::kDone && r.header() == h && r.rest().empty());
}

void check_file_name(std::string_view name) {
  const StreamHeader h = FileHeader{std::string(name), name.size()};
  const bool valid = validate(h).has_value();
  FUZZ_CHECK(valid == !encode(h).empty());
  if (!valid) {
    check_error(validate(h).error());
    return;
  }
  FUZZ_CHECK(!name.empty() && name.size() <= kMaxFileNameSize && name[0] != '.');
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(c != '/' && c != '\\' && u >= 0x20 && u != 0x7f);
  }
  check_header(h);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ByteSpan stream(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  SeededPieceSizes seeded(data[0]);
  const Outcome whole = run(stream, [] { return SIZE_MAX; });
  FUZZ_CHECK(run(stream, seeded) == whole);
  FUZZ_CHECK(run(stream, [] { return std::size_t{1}; }) == whole);
  if (whole.header) check_header(*whole.header);

  // The reader and the parser agree on a complete first line.
  const std::string_view text = as_chars(stream);
  const std::size_t newline = text.find('\n');
  if (newline != std::string_view::npos && newline < kMaxStreamHeaderSize) {
    auto parsed = parse_stream_header(text.substr(0, newline));
    FUZZ_CHECK(parsed.has_value() == (whole.status == Status::kDone));
    if (parsed) {
      FUZZ_CHECK(*parsed == *whole.header);
      FUZZ_CHECK(whole.after == text.substr(newline + 1));
    } else {
      FUZZ_CHECK(parsed.error() == whole.error);
    }
  } else {
    FUZZ_CHECK(whole.status != Status::kDone);
    FUZZ_CHECK((whole.status == Status::kError) == (text.size() >= kMaxStreamHeaderSize));
  }

  // The whole input as one line (newlines and all).
  auto direct = parse_stream_header(text);
  if (direct) {
    check_header(*direct);
  } else {
    check_error(direct.error());
  }

  check_file_name(text.substr(0, std::min<std::size_t>(text.size(), 300)));
  return 0;
}
