#include "common/ice/candidate_text.h"

#include <array>
#include <charconv>
#include <optional>

namespace roam::ice {
namespace {

// The 8 mandatory fields: foundation component transport priority address port "typ" type.
constexpr std::size_t kMandatoryFields = 8;
// Mandatory fields, raddr/rport with their values, then name/value pairs. More tokens than
// this cannot be a valid line; stop splitting early instead of collecting them all.
constexpr std::size_t kMaxFields = kMandatoryFields + 4 + 2 * kMaxExtensions;

// RFC 8839 §5.1 numeric fields: component-id 1*3DIGIT, priority 1*10DIGIT; RFC 4566 port.
constexpr std::size_t kMaxComponentDigits = 3;
constexpr std::size_t kMaxPriorityDigits = 10;
constexpr std::size_t kMaxPortDigits = 5;

constexpr std::string_view kAttributePrefix = "a=";
constexpr std::string_view kCandidatePrefix = "candidate:";

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/".
bool is_ice_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '+' || c == '/';
}

// RFC 3261 §25.1 token characters (RFC 8839 §5.1 extension-att-name = token).
bool is_token_char(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  constexpr std::string_view kMarks = "-.!%*_+`'~";
  return kMarks.find(c) != std::string_view::npos;
}

// RFC 5234 VCHAR: visible ASCII.
bool is_vchar(char c) {
  return c >= 0x21 && c <= 0x7e;
}

template <class Pred>
bool all_of(std::string_view s, Pred pred) {
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

// Unsigned decimal with at most `max_digits` digits (leading zeros allowed), no sign.
std::optional<std::uint32_t> parse_number(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits || !all_of(s, is_digit)) return std::nullopt;
  std::uint64_t value = 0;  // 10 digits fit in 64 bits, never in 32: range-check after
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || value > UINT32_MAX) return std::nullopt;
  return static_cast<std::uint32_t>(value);
}

std::optional<std::uint16_t> parse_port(std::string_view s, std::uint32_t min_port) {
  auto v = parse_number(s, kMaxPortDigits);
  if (!v || *v < min_port || *v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

// A host name rather than an address literal: LDH labels with at least one letter.
bool looks_like_hostname(std::string_view s) {
  bool letter = false;
  for (char c : s) {
    if (is_alpha(c)) {
      letter = true;
    } else if (!is_digit(c) && c != '-' && c != '.') {
      return false;
    }
  }
  return letter;
}

// RFC 6762 §3: names under ".local." are resolved by multicast DNS.
bool is_mdns_name(std::string_view s) {
  if (s.ends_with('.')) s.remove_suffix(1);
  constexpr std::string_view kLocal = ".local";
  return s.size() > kLocal.size() && iequals(s.substr(s.size() - kLocal.size()), kLocal);
}

expected<IpAddress, CandidateError> parse_address(std::string_view s) {
  if (auto ip = IpAddress::parse(s)) return *ip;
  if (looks_like_hostname(s)) {
    return unexpected(is_mdns_name(s) ? CandidateError::kMdnsAddress
                                      : CandidateError::kHostnameAddress);
  }
  return unexpected(CandidateError::kBadAddress);
}

std::optional<CandidateType> parse_type(std::string_view s) {
  constexpr std::array kTypes = {CandidateType::kHost, CandidateType::kServerReflexive,
                                 CandidateType::kPeerReflexive, CandidateType::kRelayed};
  for (CandidateType t : kTypes) {
    if (iequals(s, to_string(t))) return t;
  }
  return std::nullopt;
}

bool is_reserved_name(std::string_view name) {
  return iequals(name, "typ") || iequals(name, "raddr") || iequals(name, "rport");
}

bool valid_foundation(std::string_view f) {
  return !f.empty() && f.size() <= kMaxFoundationSize && all_of(f, is_ice_char);
}

// Checks one extension and adds its text size to `total`.
expected<void, CandidateError> check_extension(std::string_view name, std::string_view value,
                                               std::size_t& total) {
  if (name.empty() || name.size() > kMaxExtensionNameSize || !all_of(name, is_token_char) ||
      is_reserved_name(name)) {
    return unexpected(CandidateError::kBadExtension);
  }
  // RFC 8839 §5.1 allows an empty value (*VCHAR), but it cannot be told apart from a missing
  // one in a space-separated line, so we neither accept nor produce it.
  if (value.empty() || value.size() > kMaxExtensionValueSize || !all_of(value, is_vchar)) {
    return unexpected(CandidateError::kBadExtension);
  }
  total += name.size() + value.size() + 2;
  if (total > kMaxExtensionsTextSize) return unexpected(CandidateError::kTooManyExtensions);
  return {};
}

// Removes one trailing line ending.
std::string_view strip_line_ending(std::string_view s) {
  if (s.ends_with("\r\n")) {
    s.remove_suffix(2);
  } else if (s.ends_with('\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string_view describe(CandidateError e) {
  switch (e) {
    case CandidateError::kTooLong:
      return "ICE candidate line is longer than 1024 bytes; the peer must send shorter "
             "candidates (fewer or shorter extension attributes)";
    case CandidateError::kNotCandidate:
      return "not an ICE candidate attribute (expected \"candidate:...\" or "
             "\"a=candidate:...\"); pass only candidate lines to the candidate parser";
    case CandidateError::kEndOfCandidates:
      return "this is the end-of-candidates marker, not a candidate; check "
             "is_end_of_candidates() before parsing";
    case CandidateError::kBadSyntax:
      return "ICE candidate contains characters other than printable ASCII separated by single "
             "spaces; the sender must follow the RFC 8839 section 5.1 grammar";
    case CandidateError::kMissingField:
      return "ICE candidate has fewer than the 8 required fields (foundation component "
             "transport priority address port typ type); the line is truncated or malformed";
    case CandidateError::kBadFoundation:
      return "ICE candidate foundation must be 1 to 32 characters from A-Z a-z 0-9 + / "
             "(RFC 8839 section 5.1)";
    case CandidateError::kBadComponent:
      return "ICE candidate component ID must be a number from 1 to 256 (RFC 8839 section 5.1)";
    case CandidateError::kUnsupportedTransport:
      return "ICE candidate transport is not UDP (e.g. a TCP candidate); Roam uses UDP "
             "candidates only, so skip this candidate";
    case CandidateError::kBadPriority:
      return "ICE candidate priority must be a number from 1 to 2147483647 "
             "(RFC 8445 section 5.1.2.1)";
    case CandidateError::kBadAddress:
      return "ICE candidate address is not an IPv4 or IPv6 literal (IPv6 without brackets or "
             "zone index)";
    case CandidateError::kHostnameAddress:
      return "ICE candidate address is a host name; Roam never resolves names sent by peers "
             "(RFC 8839 section 5.1: ignore FQDN candidates), so the peer must send IP "
             "addresses";
    case CandidateError::kMdnsAddress:
      return "ICE candidate address is an mDNS \".local\" name (a browser hiding its host "
             "address); Roam does not resolve mDNS, so skip it and rely on the peer's srflx and "
             "relay candidates, or turn off mDNS candidate obfuscation on the peer";
    case CandidateError::kBadPort:
      return "ICE candidate port must be a number from 1 to 65535";
    case CandidateError::kBadType:
      return "ICE candidate lacks \"typ <type>\" or has an unknown type; expected host, srflx, "
             "prflx or relay (RFC 8839 section 5.1)";
    case CandidateError::kBadRelatedAddress:
      return "ICE candidate raddr/rport must appear together right after the type, with an IP "
             "address and a port from 0 to 65535 (RFC 8839 section 5.1)";
    case CandidateError::kBadExtension:
      return "ICE candidate extension attributes must be name/value pairs: a token name of at "
             "most 32 characters other than typ/raddr/rport, and a value of 1 to 256 printable "
             "characters";
    case CandidateError::kTooManyExtensions:
      return "ICE candidate has more than 16 extension attributes or more than 768 bytes of "
             "them; the peer must send fewer";
  }
  return "unknown ICE candidate error";
}

bool is_end_of_candidates(std::string_view line) {
  line = strip_line_ending(line);
  if (line.starts_with(kAttributePrefix)) line.remove_prefix(kAttributePrefix.size());
  return iequals(line, kEndOfCandidates);
}

expected<Candidate, CandidateError> parse_candidate(std::string_view line) {
  if (line.size() > kMaxCandidateLineSize) return unexpected(CandidateError::kTooLong);
  if (is_end_of_candidates(line)) return unexpected(CandidateError::kEndOfCandidates);
  line = strip_line_ending(line);
  const bool attribute = line.starts_with(kAttributePrefix);
  if (attribute) line.remove_prefix(kAttributePrefix.size());
  if (istarts_with(line, kCandidatePrefix)) {
    line.remove_prefix(kCandidatePrefix.size());
  } else if (attribute) {
    return unexpected(CandidateError::kNotCandidate);
  }

  if (line.empty()) return unexpected(CandidateError::kMissingField);

  // Split on single spaces; anything but VCHAR and SP is rejected up front.
  std::array<std::string_view, kMaxFields> fields;
  std::size_t count = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size() && line[i] != ' ') {
      if (!is_vchar(line[i])) return unexpected(CandidateError::kBadSyntax);
      continue;
    }
    if (i == start) return unexpected(CandidateError::kBadSyntax);  // empty field
    if (count == kMaxFields) return unexpected(CandidateError::kTooManyExtensions);
    fields[count++] = line.substr(start, i - start);
    start = i + 1;
  }
  if (count < kMandatoryFields) return unexpected(CandidateError::kMissingField);

  Candidate c;
  if (!valid_foundation(fields[0])) return unexpected(CandidateError::kBadFoundation);
  c.foundation = std::string(fields[0]);

  auto component = parse_number(fields[1], kMaxComponentDigits);
  if (!component || *component < kMinComponent || *component > kMaxComponent) {
    return unexpected(CandidateError::kBadComponent);
  }
  c.component = static_cast<std::uint16_t>(*component);

  if (!iequals(fields[2], to_string(Transport::kUdp))) {
    return unexpected(CandidateError::kUnsupportedTransport);
  }
  c.transport = Transport::kUdp;

  auto priority = parse_number(fields[3], kMaxPriorityDigits);
  if (!priority || *priority < kMinPriority || *priority > kMaxPriority) {
    return unexpected(CandidateError::kBadPriority);
  }
  c.priority = *priority;

  auto ip = parse_address(fields[4]);
  if (!ip) return unexpected(ip.error());
  auto port = parse_port(fields[5], 1);
  if (!port) return unexpected(CandidateError::kBadPort);
  c.address = SocketAddress{*ip, *port};

  if (!iequals(fields[6], "typ")) return unexpected(CandidateError::kBadType);
  auto type = parse_type(fields[7]);
  if (!type) return unexpected(CandidateError::kBadType);
  c.type = *type;

  std::size_t next = kMandatoryFields;
  if (next < count && iequals(fields[next], "raddr")) {
    if (next + 3 >= count || !iequals(fields[next + 2], "rport")) {
      return unexpected(CandidateError::kBadRelatedAddress);
    }
    auto raddr = IpAddress::parse(fields[next + 1]);
    // RFC 8839 §5.1: a hidden related address is sent as 0.0.0.0 / :: with port 0.
    auto rport = parse_port(fields[next + 3], 0);
    if (!raddr || !rport) return unexpected(CandidateError::kBadRelatedAddress);
    c.related = SocketAddress{*raddr, *rport};
    next += 4;
  }

  if ((count - next) % 2 != 0) {
    // A lone "rport" lands here too: it would otherwise look like an extension name.
    return unexpected(iequals(fields[next], "rport") ? CandidateError::kBadRelatedAddress
                                                     : CandidateError::kBadExtension);
  }
  if ((count - next) / 2 > kMaxExtensions) return unexpected(CandidateError::kTooManyExtensions);
  std::size_t total = 0;
  for (; next < count; next += 2) {
    if (iequals(fields[next], "raddr") || iequals(fields[next], "rport")) {
      return unexpected(CandidateError::kBadRelatedAddress);  // out of place or repeated
    }
    if (auto ok = check_extension(fields[next], fields[next + 1], total); !ok) {
      return unexpected(ok.error());
    }
    c.extensions.push_back({std::string(fields[next]), std::string(fields[next + 1])});
  }
  return c;
}

expected<void, CandidateError> validate(const Candidate& c) {
  if (!valid_foundation(c.foundation)) return unexpected(CandidateError::kBadFoundation);
  if (c.component < kMinComponent || c.component > kMaxComponent) {
    return unexpected(CandidateError::kBadComponent);
  }
  if (c.priority < kMinPriority || c.priority > kMaxPriority) {
    return unexpected(CandidateError::kBadPriority);
  }
  if (c.address.port == 0) return unexpected(CandidateError::kBadPort);
  if (c.extensions.size() > kMaxExtensions) return unexpected(CandidateError::kTooManyExtensions);
  std::size_t total = 0;
  for (const auto& ext : c.extensions) {
    if (auto ok = check_extension(ext.name, ext.value, total); !ok) return unexpected(ok.error());
  }
  return {};
}

std::string to_string(const Candidate& c) {
  std::string out;
  out.reserve(128);
  out += kCandidatePrefix;
  out += c.foundation;
  out += ' ';
  out += std::to_string(c.component);
  out += ' ';
  out += to_string(c.transport);
  out += ' ';
  out += std::to_string(c.priority);
  out += ' ';
  out += c.address.ip.to_string();
  out += ' ';
  out += std::to_string(c.address.port);
  out += " typ ";
  out += to_string(c.type);
  if (c.related) {
    out += " raddr ";
    out += c.related->ip.to_string();
    out += " rport ";
    out += std::to_string(c.related->port);
  }
  for (const auto& ext : c.extensions) {
    out += ' ';
    out += ext.name;
    out += ' ';
    out += ext.value;
  }
  return out;
}

}  // namespace roam::ice
