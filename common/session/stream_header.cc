#include "common/session/stream_header.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <utility>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

namespace roam::session {
namespace {

namespace json = boost::json;

// The longest perf_result line: both integers at UINT64_MAX and every real at the longest text
// Boost.JSON's serializer (Ryu, shortest round trip) writes for a non-negative double.
constexpr std::size_t kLongestRealText = std::string_view("1.2345678901234567E-308").size();
constexpr std::size_t kLongestPerfResultSize =
    std::string_view(R"({"v":1,"kind":"perf_result","bytes":18446744073709551615,)"
                     R"("duration_ms":18446744073709551615,"max_gap_ms":)")
        .size() +
    kLongestRealText + std::string_view(R"(,"switch_gaps_ms":[)").size() +
    kMaxSwitchGaps * (kLongestRealText + 1) + std::string_view("]}\n").size();
static_assert(kLongestPerfResultSize <= kMaxStreamHeaderSize);
// A file name escapes to at most 2 bytes per byte ('"'; '\\' and control characters are
// refused).
static_assert(
    std::string_view(R"({"v":1,"kind":"file","name":"","size":18446744073709551615})").size() +
        2 * kMaxFileNameSize + 1 <=
    kMaxStreamHeaderSize);

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

// ---- the JSON layer ----------------------------------------------------------------------
//
// Boost.JSON 1.81 reads doubles imprecisely (about one in four random doubles comes back a
// unit in the last place off), so the document is collected by a basic_parser handler that
// keeps the text of each number and converts it with std::from_chars. The handler keeps only
// what the headers use: the members of the top-level object, and the elements of arrays that
// are such members.

// A member of the top-level object.
struct Value {
  enum class Kind { kString, kNumber, kBool, kNull, kObject, kArray };
  Kind kind = Kind::kNull;
  std::string text;                      // kString
  bool integer = false;                  // kNumber: an integer literal (no fraction, exponent)
  std::optional<std::uint64_t> natural;  // kNumber: an integer literal in 0..UINT64_MAX
  std::optional<double> real;            // kNumber: finite (nullopt: out of double range)
  std::vector<std::optional<double>> elements;  // kArray: finite numbers; nullopt otherwise
  std::size_t element_count = 0;  // kArray; elements holds the first kMaxSwitchGaps + 1
};

class Collector {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  std::map<std::string, Value, std::less<>> members;
  bool top_is_object = false;
  bool duplicate = false;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return begin_container(Value::Kind::kObject); }
  bool on_object_end(std::size_t, json::error_code&) { return end_container(); }
  bool on_array_begin(json::error_code&) { return begin_container(Value::Kind::kArray); }
  bool on_array_end(std::size_t, json::error_code&) { return end_container(); }

  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code& ec) {
    key_.append(part.data(), part.size());
    std::string key = std::move(key_);
    key_.clear();
    if (!top_is_object || depth_ != 1) return true;
    // Boost.JSON would keep the last of duplicates, other parsers the first: refused.
    auto [it, inserted] = members.try_emplace(std::move(key));
    if (!inserted) {
      duplicate = true;
      ec = json::error::syntax;  // stops the parser; `duplicate` tells why
      return false;
    }
    member_ = &it->second;
    return true;
  }

  bool on_string_part(json::string_view part, std::size_t, json::error_code&) {
    if (Value* v = member_slot()) v->text.append(part.data(), part.size());
    return true;
  }
  bool on_string(json::string_view part, std::size_t, json::error_code&) {
    if (Value* v = member_slot()) {
      v->kind = Value::Kind::kString;
      v->text.append(part.data(), part.size());
    }
    add_element(std::nullopt);
    return true;
  }

  bool on_number_part(json::string_view part, json::error_code&) {
    number_.append(part.data(), part.size());
    return true;
  }
  bool on_int64(std::int64_t n, json::string_view, json::error_code&) {
    std::optional<std::uint64_t> natural;
    if (n >= 0) natural = static_cast<std::uint64_t>(n);
    return number(true, natural, static_cast<double>(n));
  }
  bool on_uint64(std::uint64_t n, json::string_view, json::error_code&) {
    return number(true, n, static_cast<double>(n));
  }
  bool on_double(double, json::string_view part, json::error_code&) {
    // The exact reading of the literal (JSON's number grammar is a subset of from_chars').
    number_.append(part.data(), part.size());
    double d = 0;
    const char* end = number_.data() + number_.size();
    auto [ptr, ec] = std::from_chars(number_.data(), end, d);
    std::optional<double> real;
    if (ec == std::errc() && ptr == end && std::isfinite(d)) real = d;
    return number(false, std::nullopt, real);
  }

  bool on_bool(bool, json::error_code&) { return scalar(Value::Kind::kBool); }
  bool on_null(json::error_code&) { return scalar(Value::Kind::kNull); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // The member whose value is being read, when the parser is directly in the top object.
  Value* member_slot() { return top_is_object && depth_ == 1 ? member_ : nullptr; }
  // An element of an array that is a member.
  bool in_member_array() const {
    return top_is_object && depth_ == 2 && member_ != nullptr &&
           member_->kind == Value::Kind::kArray;
  }
  void add_element(std::optional<double> element) {
    if (!in_member_array()) return;
    if (member_->elements.size() <= kMaxSwitchGaps) member_->elements.push_back(element);
    ++member_->element_count;
  }

  bool begin_container(Value::Kind kind) {
    if (depth_ == 0) {
      top_is_object = kind == Value::Kind::kObject;
    } else if (Value* v = member_slot()) {
      v->kind = kind;
    } else {
      add_element(std::nullopt);
    }
    ++depth_;
    return true;
  }
  bool end_container() {
    --depth_;
    return true;
  }

  bool scalar(Value::Kind kind) {
    if (Value* v = member_slot()) v->kind = kind;
    add_element(std::nullopt);
    return true;
  }

  bool number(bool integer, std::optional<std::uint64_t> natural, std::optional<double> real) {
    number_.clear();
    if (real && *real == 0) real = 0.0;  // -0 reads as 0
    if (Value* v = member_slot()) {
      v->kind = Value::Kind::kNumber;
      v->integer = integer;
      v->natural = natural;
      v->real = real;
    }
    add_element(real);
    return true;
  }

  std::size_t depth_ = 0;
  Value* member_ = nullptr;  // the member of the last top-level key
  std::string key_;          // assembled from on_key_part pieces
  std::string number_;       // assembled from on_number_part pieces
};

json::parse_options strict_options() {
  json::parse_options opts;  // standard JSON only: no comments, trailing commas, bad UTF-8
  opts.max_depth = kMaxStreamHeaderDepth;
  return opts;
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

expected<std::map<std::string, Value, std::less<>>, std::string> parse_object(
    std::string_view line) {
  json::basic_parser<Collector> parser(strict_options());
  json::error_code ec;
  const std::size_t used = parser.write_some(false, line.data(), line.size(), ec);
  if (parser.handler().duplicate) {
    return unexpected(std::string("stream header: duplicate member name in a JSON object"));
  }
  if (ec == json::error::too_deep) {
    return unexpected(std::string("stream header: JSON nested deeper than 8 levels"));
  }
  // Boost's messages are fixed texts ("syntax error", "incomplete JSON", ...).
  if (ec) return unexpected("stream header: not valid JSON: " + ec.message());
  for (char c : line.substr(used)) {
    if (!is_json_space(c)) {
      return unexpected(std::string("stream header: not valid JSON: data after the object"));
    }
  }
  if (!parser.handler().top_is_object) {
    return unexpected(std::string("stream header: not a JSON object"));
  }
  return std::move(parser.handler().members);
}

// ---- member rules --------------------------------------------------------------------------

constexpr std::string_view kAnyU64 = "an integer in 0..18446744073709551615";
constexpr std::string_view kDurationRange = "an integer in 1..86400000";
constexpr std::string_view kRateRange = "an integer in 1..18446744073709551615 (omit it for bulk)";
constexpr std::string_view kRealRange = "a finite number >= 0";
constexpr std::string_view kSha256Rule = "64 lower-case hex digits";
constexpr std::string_view kKinds = "file, pipe, perf, file_result or perf_result";

std::string member_error(std::string_view kind, std::string_view name, std::string_view problem) {
  std::string e(kind);
  e += '.';
  e += name;
  e += ": ";
  e += problem;
  return e;
}
std::string expected_error(std::string_view kind, std::string_view name, std::string_view what) {
  return member_error(kind, name, "expected " + std::string(what));
}

// One UTF-8 sequence at `at` (RFC 3629 §4: no overlong forms, no surrogates, <= U+10FFFF):
// its code point and length, or nullopt.
std::optional<std::pair<char32_t, std::size_t>> utf8_at(std::string_view s, std::size_t at) {
  const auto b0 = static_cast<unsigned char>(s[at]);
  if (b0 < 0x80) return std::pair<char32_t, std::size_t>{b0, 1};
  std::size_t n = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xe0) == 0xc0) {
    n = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    n = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (s.size() - at < n) return std::nullopt;
  for (std::size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[at + i]);
    if ((b & 0xc0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
  return std::pair<char32_t, std::size_t>{cp, n};
}

// A plain file name the receiver can create in its target directory as is.
expected<void, std::string> check_file_name(std::string_view name) {
  auto error = [](std::string_view problem) {
    return unexpected(member_error("file", "name", problem));
  };
  if (name.empty()) return error("empty; expected 1..255 bytes of UTF-8");
  if (name.size() > kMaxFileNameSize) {
    return error(std::to_string(name.size()) + " bytes exceeds 255");
  }
  // "." and ".." included: a name must never climb or stay in place, and hidden names would
  // surprise the receiving user.
  if (name.front() == '.') {
    return error("must not start with '.' (hidden and relative names are refused)");
  }
  for (std::size_t at = 0; at < name.size();) {
    const auto seq = utf8_at(name, at);
    if (!seq) return error("not valid UTF-8");
    const char32_t cp = seq->first;
    if (cp == '/') return error("must not contain '/'");
    if (cp == '\\') return error("must not contain '\\'");
    // C0, DEL and C1 controls (NUL included): they garble terminals and logs.
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      return error("must not contain control characters");
    }
    at += seq->second;
  }
  return {};
}

bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool valid_real(double d) {
  return std::isfinite(d) && d >= 0;
}

expected<void, std::string> check(const FileHeader& h) {
  return check_file_name(h.name);
}

expected<void, std::string> check(const PipeHeader&) {
  return {};
}

expected<void, std::string> check(const PerfHeader& h) {
  if (h.duration_ms < 1 || h.duration_ms > kMaxPerfDurationMs) {
    return unexpected(expected_error("perf", "duration_ms", kDurationRange));
  }
  if (h.rate_bps && *h.rate_bps == 0) {
    return unexpected(expected_error("perf", "rate_bps", kRateRange));
  }
  return {};
}

expected<void, std::string> check(const FileResult& r) {
  if (r.sha256.size() != kSha256HexSize ||
      !std::all_of(r.sha256.begin(), r.sha256.end(), is_lower_hex)) {
    return unexpected(expected_error("file_result", "sha256", kSha256Rule));
  }
  return {};
}

std::string too_many_gaps(std::size_t count) {
  return member_error("perf_result", "switch_gaps_ms",
                      std::to_string(count) + " entries exceeds " + std::to_string(kMaxSwitchGaps));
}
std::string bad_gap(std::size_t index) {
  return expected_error("perf_result", "switch_gaps_ms[" + std::to_string(index) + "]", kRealRange);
}

expected<void, std::string> check(const PerfResult& r) {
  if (!valid_real(r.max_gap_ms)) {
    return unexpected(expected_error("perf_result", "max_gap_ms", kRealRange));
  }
  if (r.switch_gaps_ms.size() > kMaxSwitchGaps) {
    return unexpected(too_many_gaps(r.switch_gaps_ms.size()));
  }
  for (std::size_t i = 0; i < r.switch_gaps_ms.size(); ++i) {
    if (!valid_real(r.switch_gaps_ms[i])) return unexpected(bad_gap(i));
  }
  return {};
}

// Reads the members of one kind. The first problem is kept and later reads return nullopt,
// so a kind's reader reads straight through and checks ok() once.
class Members {
 public:
  Members(const std::map<std::string, Value, std::less<>>& members, std::string_view kind)
      : members_(members), kind_(kind) {}

  bool ok() const { return !error_.has_value(); }
  const std::string& error() const { return *error_; }
  void fail(std::string error) {
    if (ok()) error_ = std::move(error);
  }

  const Value* find(std::string_view name, std::string_view what, bool required = true) {
    if (!ok()) return nullptr;
    auto it = members_.find(name);
    if (it == members_.end()) {
      if (required) fail(member_error(kind_, name, "missing; expected " + std::string(what)));
      return nullptr;
    }
    return &it->second;
  }

  std::optional<std::string> string(std::string_view name, std::string_view what) {
    const Value* v = find(name, what);
    if (v == nullptr) return std::nullopt;
    if (v->kind != Value::Kind::kString) return bad(name, what);
    return v->text;
  }

  // An integer literal in min..max.
  std::optional<std::uint64_t> integer(std::string_view name, std::uint64_t min, std::uint64_t max,
                                       std::string_view what, bool required = true) {
    const Value* v = find(name, what, required);
    if (v == nullptr) return std::nullopt;
    if (!v->natural || *v->natural < min || *v->natural > max) return bad(name, what);
    return v->natural;
  }

  std::optional<double> real(std::string_view name) {
    const Value* v = find(name, kRealRange);
    if (v == nullptr) return std::nullopt;
    if (!v->real || !valid_real(*v->real)) return bad(name, kRealRange);
    return v->real;
  }

  std::optional<std::vector<double>> reals(std::string_view name, std::string_view what) {
    const Value* v = find(name, what);
    if (v == nullptr) return std::nullopt;
    if (v->kind != Value::Kind::kArray) return bad(name, what);
    if (v->element_count > kMaxSwitchGaps) {
      fail(too_many_gaps(v->element_count));
      return std::nullopt;
    }
    std::vector<double> out;
    out.reserve(v->elements.size());
    for (std::size_t i = 0; i < v->elements.size(); ++i) {
      if (!v->elements[i] || !valid_real(*v->elements[i])) {
        fail(bad_gap(i));
        return std::nullopt;
      }
      out.push_back(*v->elements[i]);
    }
    return out;
  }

 private:
  std::nullopt_t bad(std::string_view name, std::string_view what) {
    fail(expected_error(kind_, name, what));
    return std::nullopt;
  }

  const std::map<std::string, Value, std::less<>>& members_;
  std::string_view kind_;
  std::optional<std::string> error_;
};

template <class Header>
expected<StreamHeader, std::string> finish(Members& m, std::optional<Header> header) {
  if (!m.ok()) return unexpected(m.error());
  if (auto ok = check(*header); !ok) return unexpected(ok.error());
  return StreamHeader(std::move(*header));
}

expected<StreamHeader, std::string> read_kind(std::string_view kind,
                                              const std::map<std::string, Value, std::less<>>& v) {
  Members m(v, kind);
  if (kind == "file") {
    auto name = m.string("name", "a string (the file name)");
    auto size = m.integer("size", 0, kMaxU64, kAnyU64);
    std::optional<FileHeader> h;
    if (m.ok()) h = FileHeader{std::move(*name), *size};
    return finish(m, std::move(h));
  }
  if (kind == "pipe") return finish(m, std::optional<PipeHeader>(PipeHeader{}));
  if (kind == "perf") {
    auto duration = m.integer("duration_ms", 1, kMaxPerfDurationMs, kDurationRange);
    auto rate = m.integer("rate_bps", 1, kMaxU64, kRateRange, /*required=*/false);
    std::optional<PerfHeader> h;
    if (m.ok()) h = PerfHeader{static_cast<std::uint32_t>(*duration), rate};
    return finish(m, std::move(h));
  }
  if (kind == "file_result") {
    auto size = m.integer("size", 0, kMaxU64, kAnyU64);
    auto sha256 = m.string("sha256", kSha256Rule);
    std::optional<FileResult> r;
    if (m.ok()) r = FileResult{*size, std::move(*sha256)};
    return finish(m, std::move(r));
  }
  if (kind == "perf_result") {
    auto bytes = m.integer("bytes", 0, kMaxU64, kAnyU64);
    auto duration = m.integer("duration_ms", 0, kMaxU64, kAnyU64);
    auto max_gap = m.real("max_gap_ms");
    auto gaps = m.reals("switch_gaps_ms", "an array of at most 128 numbers");
    std::optional<PerfResult> r;
    if (m.ok()) r = PerfResult{*bytes, *duration, *max_gap, std::move(*gaps)};
    return finish(m, std::move(r));
  }
  return unexpected(std::string("kind: unknown; expected ") + std::string(kKinds));
}

// ---- encoding ------------------------------------------------------------------------------

json::string_view jv(std::string_view s) {
  return {s.data(), s.size()};
}

void add_members(json::object& o, const FileHeader& h) {
  o.emplace("name", jv(h.name));
  o.emplace("size", h.size);
}
void add_members(json::object&, const PipeHeader&) {}
void add_members(json::object& o, const PerfHeader& h) {
  o.emplace("duration_ms", h.duration_ms);
  if (h.rate_bps) o.emplace("rate_bps", *h.rate_bps);
}
void add_members(json::object& o, const FileResult& r) {
  o.emplace("size", r.size);
  o.emplace("sha256", jv(r.sha256));
}
void add_members(json::object& o, const PerfResult& r) {
  o.emplace("bytes", r.bytes);
  o.emplace("duration_ms", r.duration_ms);
  o.emplace("max_gap_ms", r.max_gap_ms);
  json::array gaps;
  gaps.reserve(r.switch_gaps_ms.size());
  for (double g : r.switch_gaps_ms)
    gaps.emplace_back(g);
  o.emplace("switch_gaps_ms", std::move(gaps));
}

}  // namespace

std::string_view kind_name(const StreamHeader& header) {
  constexpr std::string_view kNames[] = {"file", "pipe", "perf", "file_result", "perf_result"};
  static_assert(std::size(kNames) == std::variant_size_v<StreamHeader>);
  return kNames[header.index()];
}

expected<void, std::string> validate(const StreamHeader& header) {
  return std::visit([](const auto& h) { return check(h); }, header);
}

Bytes encode(const StreamHeader& header) {
  if (!validate(header)) return {};
  json::object o;
  o.emplace("v", kStreamHeaderVersion);
  o.emplace("kind", jv(kind_name(header)));
  std::visit([&o](const auto& h) { add_members(o, h); }, header);
  std::string text = json::serialize(o);
  text += '\n';
  // The static_asserts above bound every valid header; this only guards against a future
  // member that breaks them.
  if (text.size() > kMaxStreamHeaderSize) return {};
  return to_bytes(text);
}

expected<StreamHeader, std::string> parse_stream_header(std::string_view line) try {
  if (line.size() > kMaxStreamHeaderSize - 1) {
    return unexpected("stream header: " + std::to_string(line.size()) + " bytes exceeds " +
                      std::to_string(kMaxStreamHeaderSize - 1) + " (plus the newline)");
  }
  // The line ends at the first '\n': a text that holds one is not one line.
  if (line.find('\n') != std::string_view::npos) {
    return unexpected(std::string("stream header: contains a newline before its end"));
  }
  auto members = parse_object(line);
  if (!members) return unexpected(std::move(members.error()));

  // The version first: a later version may give the other members other meanings.
  auto version = members->find("v");
  if (version == members->end()) return unexpected(std::string("v: missing; expected 1"));
  if (version->second.kind != Value::Kind::kNumber || !version->second.integer) {
    return unexpected(std::string("v: expected an integer (the header version, 1)"));
  }
  if (version->second.natural != std::optional<std::uint64_t>(kStreamHeaderVersion)) {
    return unexpected(std::string("v: unsupported version (this side speaks 1)"));
  }
  auto kind = members->find("kind");
  if (kind == members->end()) {
    return unexpected("kind: missing; expected " + std::string(kKinds));
  }
  if (kind->second.kind != Value::Kind::kString) {
    return unexpected("kind: expected a string (" + std::string(kKinds) + ")");
  }
  return read_kind(kind->second.text, *members);
} catch (const std::exception&) {
  return unexpected(std::string("stream header: could not be parsed"));
}

StreamHeaderReader::Status StreamHeaderReader::feed(ByteSpan data) {
  if (status_ != Status::kNeedMore) return status_;
  const std::string_view chars = as_chars(data);
  const std::size_t newline = chars.find('\n');
  const std::size_t take = newline == std::string_view::npos ? chars.size() : newline;
  if (line_.size() + take > kMaxStreamHeaderSize - 1) {
    status_ = Status::kError;
    error_ = "stream header: no newline within " + std::to_string(kMaxStreamHeaderSize) + " bytes";
    line_ = std::string();
    return status_;
  }
  line_.append(chars.substr(0, take));
  if (newline == std::string_view::npos) return status_;

  auto header = parse_stream_header(line_);
  line_ = std::string();
  if (!header) {
    status_ = Status::kError;
    error_ = std::move(header.error());
    return status_;
  }
  header_ = std::move(*header);
  rest_.assign(data.begin() + newline + 1, data.end());
  status_ = Status::kDone;
  return status_;
}

}  // namespace roam::session
