// The first line of every application stream between two Roam agents: one JSON object
// terminated by '\n', at most 4096 bytes including the newline. The opener of a stream sends
// a header (file, pipe, perf); for file and perf streams the receiver answers on the same
// stream, after the opener's FIN, with a result line (file_result, perf_result).
//
//   {"v":1,"kind":"file","name":"report.pdf","size":123}
//   {"v":1,"kind":"pipe"}
//   {"v":1,"kind":"perf","duration_ms":10000,"rate_bps":50000000}       rate_bps optional
//   {"v":1,"kind":"file_result","size":123,"sha256":"<64 lower-case hex digits>"}
//   {"v":1,"kind":"perf_result","bytes":N,"duration_ms":N,"max_gap_ms":X,"switch_gaps_ms":[X]}
//
// Contracts:
// - Pure: no I/O, no clocks; never throws except std::bad_alloc.
// - Strict: standard JSON only (valid UTF-8, no comments), nesting at most 8 levels, no
//   duplicate member names in the header object, "v" must be 1, every member of the kind present
//   with its type and range. Unknown members are ignored (forward compatibility); an unknown kind
//   is an error.
// - Integers are JSON integers (no fraction, no exponent); the "_ms" reals of perf_result are
//   any finite JSON numbers >= 0, read exactly (the nearest double, so a peer's shortest
//   round-trip text reads back to the double it wrote).
// - Every header the reader accepts passes validate(), and encode() of it parses back to an
//   equal header within kMaxStreamHeaderSize (fuzzed by tests/fuzz/fuzz_stream_header.cc).
// - Error texts name the member and never quote values (names come from the peer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/util/bytes.h"
#include "common/util/expected.h"

namespace roam::session {

inline constexpr int kStreamHeaderVersion = 1;
// Bounds.
inline constexpr std::size_t kMaxStreamHeaderSize = 4096;        // the line, newline included
inline constexpr std::size_t kMaxStreamHeaderDepth = 8;          // JSON nesting (unknown members)
inline constexpr std::size_t kMaxFileNameSize = 255;             // bytes of UTF-8 (ext4, NTFS: 255)
inline constexpr std::uint32_t kMaxPerfDurationMs = 86'400'000;  // one day
inline constexpr std::size_t kSha256HexSize = 64;
// perf_result keeps within kMaxStreamHeaderSize whatever its numbers: 128 gaps of the longest
// double text (23 bytes, "1.2345678901234567E-308") and a comma each, plus the other members
// at their longest, fit with room to spare (static_assert in stream_header.cc).
inline constexpr std::size_t kMaxSwitchGaps = 128;

// Sender → receiver: a file follows; the stream's FIN ends it.
struct FileHeader {
  std::string name;  // 1..255 bytes of UTF-8; a plain file name (see validate())
  std::uint64_t size = 0;
  bool operator==(const FileHeader&) const = default;
};

// A raw byte pipe in both directions.
struct PipeHeader {
  bool operator==(const PipeHeader&) const = default;
};

// Sender → receiver: a throughput test of duration_ms, paced at rate_bps or bulk (absent).
struct PerfHeader {
  std::uint32_t duration_ms = 10'000;     // 1..kMaxPerfDurationMs
  std::optional<std::uint64_t> rate_bps;  // >= 1 when present
  bool operator==(const PerfHeader&) const = default;
};

// Receiver → sender, after the sender's FIN: what arrived.
struct FileResult {
  std::uint64_t size = 0;
  std::string sha256;  // 64 lower-case hex digits
  bool operator==(const FileResult&) const = default;
};

// Receiver → sender, after the sender's FIN. The reals are finite and >= 0.
struct PerfResult {
  std::uint64_t bytes = 0;
  std::uint64_t duration_ms = 0;
  double max_gap_ms = 0;               // the longest time without data
  std::vector<double> switch_gaps_ms;  // the gap around each path switch, at most 128
  bool operator==(const PerfResult&) const = default;
};

using StreamHeader = std::variant<FileHeader, PipeHeader, PerfHeader, FileResult, PerfResult>;

// "file", "pipe", "perf", "file_result", "perf_result" (the "kind" member).
std::string_view kind_name(const StreamHeader& header);

// Checks a header built in code against the rules the parser enforces. The errors are the
// parser's member errors, e.g. "file.name: must not contain '/'",
// "file.name: must not start with '.' (hidden and relative names are refused)",
// "perf.duration_ms: expected an integer in 1..86400000",
// "perf_result.switch_gaps_ms: expected an array of at most 128 numbers".
expected<void, std::string> validate(const StreamHeader& header);

// The compact JSON line, '\n' included, at most kMaxStreamHeaderSize bytes. A header that
// fails validate() encodes to an empty buffer, never to a line the peer would reject.
Bytes encode(const StreamHeader& header);

// Parses one line (without its '\n'; trailing JSON white space such as '\r' is allowed).
// Errors:
// - "stream header: N bytes exceeds 4095 (plus the newline)",
//   "stream header: contains a newline before its end";
// - "stream header: not valid JSON: <Boost.JSON's fixed text>", "... nested deeper than 8
//   levels", "... duplicate member name", "stream header: not a JSON object";
// - "v: missing; expected 1", "v: expected an integer (the header version, 1)",
//   "v: unsupported version (this side speaks 1)" (any other integer);
// - "kind: missing; expected file, pipe, perf, file_result or perf_result",
//   "kind: expected a string (...)", "kind: unknown; expected file, pipe, ...";
// - member errors "<kind>.<member>: missing; expected ..." / "<kind>.<member>: expected ..."
//   and the validate() errors.
expected<StreamHeader, std::string> parse_stream_header(std::string_view line);

// Incremental reader of the first line of a stream: feed the stream's bytes until it returns
// kDone (header() and rest() are then valid) or kError (error() says why; reset the stream).
class StreamHeaderReader {
 public:
  enum class Status { kNeedMore, kDone, kError };

  // Consumes bytes up to and including the '\n'. Once the status is kDone or kError, feed()
  // returns it again and consumes nothing: bytes after the header belong to the caller (the
  // ones in the completing feed are in rest()). Errors: parse_stream_header()'s, and
  // "stream header: no newline within 4096 bytes" as soon as 4096 bytes hold no '\n'.
  Status feed(ByteSpan data);

  Status status() const { return status_; }
  // Precondition: status() == kDone.
  const StreamHeader& header() const { return *header_; }
  // The bytes after the '\n' in the feed that completed the header (a copy: valid as long
  // as the reader). Empty before kDone.
  ByteSpan rest() const { return rest_; }
  // Empty unless status() == kError.
  const std::string& error() const { return error_; }

 private:
  Status status_ = Status::kNeedMore;
  std::string line_;  // bytes so far, without the '\n'; at most kMaxStreamHeaderSize - 1
  std::optional<StreamHeader> header_;
  Bytes rest_;
  std::string error_;
};

}  // namespace roam::session
