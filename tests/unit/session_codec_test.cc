// The agent-to-agent session codecs: control stream frames (common/session/control_frame.h)
// and application stream headers (common/session/stream_header.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/session/control_frame.h"
#include "common/session/stream_header.h"

namespace roam::session {
namespace {

// ---- helpers ---------------------------------------------------------------------------------

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A raw frame: type, big-endian length, payload (which may disagree with the length when
// `length` is given).
Bytes raw_frame(std::uint8_t type, std::string_view payload,
                std::optional<std::uint16_t> length = std::nullopt) {
  // Sized up front: GCC 12 warns falsely (-Warray-bounds) about inserting into a 3-byte vector.
  Bytes out(3 + payload.size());
  out[0] = std::byte{type};
  store_be16(out.data() + 1, length.value_or(static_cast<std::uint16_t>(payload.size())));
  std::copy(payload.begin(), payload.end(), reinterpret_cast<char*>(out.data() + 3));
  return out;
}

SocketAddress addr(std::string_view text) {
  return *SocketAddress::parse(text);
}

std::vector<ControlFrame> drain(ControlFrameReader& r) {
  std::vector<ControlFrame> out;
  while (auto f = r.next())
    out.push_back(std::move(*f));
  return out;
}

// Decodes `wire` in one feed; the frames, or the error.
expected<std::vector<ControlFrame>, std::string> decode_all(ByteSpan wire) {
  ControlFrameReader r;
  if (auto fed = r.feed(wire); !fed) return unexpected(fed.error());
  return drain(r);
}

std::string decode_error(ByteSpan wire) {
  auto r = decode_all(wire);
  return r ? std::string("(no error)") : r.error();
}

const std::vector<ControlFrame>& sample_frames() {
  static const std::vector<ControlFrame> frames = {
      Candidate{"1 1 udp 2130706431 192.0.2.1 5000 typ host"},
      Candidate{"candidate:2 1 UDP 1694498815 203.0.113.7 61000 typ srflx raddr 192.0.2.1 rport "
                "5000"},
      EndOfCandidates{},
      CandidateRemoved{addr("192.0.2.1:5000")},
      CandidateRemoved{addr("[2001:db8::1]:65535")},
      SwitchRequest{"local-candidate-removed"},
      SwitchRequest{""},
      Ping{0},
      Ping{0x0123456789abcdefULL},
      Pong{std::numeric_limits<std::uint64_t>::max()},
  };
  return frames;
}

// ---- control frames: encoding ---------------------------------------------------------------

TEST(ControlFrame, EncodesTheDocumentedWireFormat) {
  EXPECT_EQ(encode(Candidate{"1 1 udp 2130706431 192.0.2.1 5000 typ host"}),
            raw_frame(1, "1 1 udp 2130706431 192.0.2.1 5000 typ host"));
  EXPECT_EQ(encode(EndOfCandidates{}), raw_frame(2, ""));
  EXPECT_EQ(encode(CandidateRemoved{addr("192.0.2.1:5000")}), raw_frame(3, "192.0.2.1 5000"));
  EXPECT_EQ(encode(CandidateRemoved{addr("[2001:db8::1]:443")}), raw_frame(3, "2001:db8::1 443"));
  EXPECT_EQ(encode(SwitchRequest{"local-candidate-removed"}),
            raw_frame(4, "local-candidate-removed"));
  const Bytes ping = encode(Ping{0x0102030405060708ULL});
  EXPECT_EQ(ping, (Bytes{std::byte{5}, std::byte{0}, std::byte{8}, std::byte{1}, std::byte{2},
                         std::byte{3}, std::byte{4}, std::byte{5}, std::byte{6}, std::byte{7},
                         std::byte{8}}));
  const Bytes pong = encode(Pong{0x0102030405060708ULL});
  ASSERT_EQ(pong.size(), 11u);
  EXPECT_EQ(pong[0], std::byte{6});
}

TEST(ControlFrame, TypesAndNames) {
  EXPECT_EQ(type_of(Candidate{"x"}), ControlFrameType::kCandidate);
  EXPECT_EQ(type_of(Pong{}), ControlFrameType::kPong);
  EXPECT_EQ(type_name(EndOfCandidates{}), "end-of-candidates");
  EXPECT_EQ(type_name(CandidateRemoved{}), "candidate-removed");
  EXPECT_EQ(type_name(SwitchRequest{}), "switch-request");
  EXPECT_EQ(type_name(Ping{}), "ping");
}

TEST(ControlFrame, EveryKindRoundTrips) {
  for (const ControlFrame& f : sample_frames()) {
    SCOPED_TRACE(std::string(type_name(f)));
    ASSERT_TRUE(validate(f));
    auto decoded = decode_all(encode(f));
    ASSERT_TRUE(decoded) << decoded.error();
    ASSERT_EQ(decoded->size(), 1u);
    EXPECT_EQ(decoded->front(), f);
  }
}

TEST(ControlFrame, BoundsAreInclusive) {
  const ControlFrame longest_candidate = Candidate{std::string(512, 'a')};
  const ControlFrame longest_reason = SwitchRequest{std::string(256, '~')};
  for (const ControlFrame& f : {longest_candidate, longest_reason}) {
    auto decoded = decode_all(encode(f));
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(decoded->front(), f);
  }
  EXPECT_EQ(validate(Candidate{std::string(513, 'a')}).error(),
            "candidate text: 513 bytes exceeds 512");
  EXPECT_EQ(validate(SwitchRequest{std::string(257, 'a')}).error(),
            "switch reason: 257 bytes exceeds 256");
}

TEST(ControlFrame, InvalidFramesEncodeToNothing) {
  EXPECT_TRUE(encode(Candidate{""}).empty());
  EXPECT_TRUE(encode(Candidate{std::string(513, 'a')}).empty());
  EXPECT_TRUE(encode(Candidate{"1 1 udp\n"}).empty());
  EXPECT_TRUE(encode(SwitchRequest{"tab\there"}).empty());
  EXPECT_TRUE(encode(CandidateRemoved{addr("192.0.2.1:0")}).empty());
  EXPECT_EQ(validate(Candidate{""}).error(),
            "candidate text: empty; expected 1..512 printable ASCII bytes");
  EXPECT_EQ(validate(Candidate{"1 1 udp\n"}).error(),
            "candidate text: byte 0x0a is not printable ASCII (offset 7)");
  EXPECT_EQ(validate(CandidateRemoved{addr("192.0.2.1:0")}).error(),
            "candidate-removed address: port 0; expected 1..65535");
}

// ---- control frames: incremental reading -----------------------------------------------------

Bytes sample_stream() {
  Bytes wire;
  for (const ControlFrame& f : sample_frames()) {
    const Bytes b = encode(f);
    wire.insert(wire.end(), b.begin(), b.end());
  }
  return wire;
}

TEST(ControlFrameReader, ReadsAStreamFedByteByByte) {
  const Bytes wire = sample_stream();
  ControlFrameReader r;
  std::vector<ControlFrame> frames;
  for (std::byte b : wire) {
    ASSERT_TRUE(r.feed(ByteSpan(&b, 1)));
    for (auto& f : drain(r))
      frames.push_back(std::move(f));
  }
  EXPECT_EQ(frames, sample_frames());
  EXPECT_EQ(r.pending_bytes(), 0u);
  EXPECT_EQ(r.skipped_unknown(), 0u);
}

TEST(ControlFrameReader, ReadsAStreamSplitAnywhere) {
  const Bytes wire = sample_stream();
  for (std::size_t cut1 = 0; cut1 <= wire.size(); cut1 += 7) {
    for (std::size_t cut2 = cut1; cut2 <= wire.size(); cut2 += 13) {
      ControlFrameReader r;
      const ByteSpan all(wire);
      ASSERT_TRUE(r.feed(all.subspan(0, cut1)));
      ASSERT_TRUE(r.feed(all.subspan(cut1, cut2 - cut1)));
      ASSERT_TRUE(r.feed(ByteSpan()));
      ASSERT_TRUE(r.feed(all.subspan(cut2)));
      EXPECT_EQ(drain(r), sample_frames()) << cut1 << " " << cut2;
    }
  }
}

TEST(ControlFrameReader, HoldsAPartialFrameUntilItCompletes) {
  const Bytes wire = encode(SwitchRequest{"local-candidate-removed"});
  ControlFrameReader r;
  ASSERT_TRUE(r.feed(ByteSpan(wire).first(2)));
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.pending_bytes(), 2u);
  ASSERT_TRUE(r.feed(ByteSpan(wire).subspan(2, 5)));
  EXPECT_FALSE(r.next());
  ASSERT_TRUE(r.feed(ByteSpan(wire).subspan(7)));
  EXPECT_EQ(r.pending_bytes(), wire.size());  // decoded, not yet taken
  EXPECT_EQ(r.next(), ControlFrame(SwitchRequest{"local-candidate-removed"}));
  EXPECT_EQ(r.pending_bytes(), 0u);
  EXPECT_FALSE(r.next());
}

TEST(ControlFrameReader, SkipsUnknownTypesAndCountsThem) {
  const Bytes wire =
      cat({raw_frame(0, "reserved"), encode(Ping{1}), raw_frame(7, ""),
           raw_frame(200, std::string(1024, '\0')), encode(Pong{1}), raw_frame(255, "\n\x01\x02")});
  ControlFrameReader r;
  for (std::byte b : wire)
    ASSERT_TRUE(r.feed(ByteSpan(&b, 1)));
  EXPECT_EQ(drain(r), (std::vector<ControlFrame>{Ping{1}, Pong{1}}));
  EXPECT_EQ(r.skipped_unknown(), 4u);
  EXPECT_EQ(r.pending_bytes(), 0u);
}

TEST(ControlFrameReader, PayloadBoundAppliesToEveryType) {
  // 1024 is allowed (here for an unknown type); a declared 1025 fails as soon as the header
  // is in, before any payload arrives.
  EXPECT_TRUE(decode_all(raw_frame(9, std::string(1024, 'x'))));
  EXPECT_EQ(decode_error(raw_frame(1, "", 2000)),
            "control frame type 1: payload 2000 bytes exceeds 1024");
  EXPECT_EQ(decode_error(raw_frame(9, "", 1025)),
            "control frame type 9: payload 1025 bytes exceeds 1024");
  EXPECT_EQ(decode_error(raw_frame(4, "", 0xffff)),
            "control frame type 4: payload 65535 bytes exceeds 1024");
}

TEST(ControlFrameReader, RejectsBadPayloadsWithClearErrors) {
  struct Case {
    Bytes wire;
    std::string error;
  };
  const std::vector<Case> cases = {
      {raw_frame(1, ""), "candidate text: empty; expected 1..512 printable ASCII bytes"},
      {raw_frame(1, std::string(513, 'a')), "candidate text: 513 bytes exceeds 512"},
      {raw_frame(1, "1 1 udp 2130706431 192.0.2.1 5000 typ host\n"),
       "candidate text: byte 0x0a is not printable ASCII (offset 42)"},
      {raw_frame(1, "caf\xc3\xa9"), "candidate text: byte 0xc3 is not printable ASCII (offset 3)"},
      {raw_frame(1, "x\x7f"), "candidate text: byte 0x7f is not printable ASCII (offset 1)"},
      {raw_frame(2, "abc"), "end-of-candidates frame: payload 3 bytes; expected none"},
      {raw_frame(3, ""), "candidate-removed address: expected \"IP PORT\""},
      {raw_frame(3, "192.0.2.1:5000"), "candidate-removed address: expected \"IP PORT\""},
      {raw_frame(3, "192.0.2.1  5000"), "candidate-removed address: expected \"IP PORT\""},
      {raw_frame(3, "192.0.2.1 5000 x"), "candidate-removed address: expected \"IP PORT\""},
      {raw_frame(3, "host.example 5000"), "candidate-removed address: not an IP address"},
      {raw_frame(3, "[2001:db8::1] 5000"), "candidate-removed address: not an IP address"},
      {raw_frame(3, "fe80::1%eth0 5000"), "candidate-removed address: not an IP address"},
      {raw_frame(3, std::string("192.0.2.1\0 5000", 15)),
       "candidate-removed address: byte 0x00 is not printable ASCII (offset 9)"},
      {raw_frame(3, "192.0.2.1 0"), "candidate-removed address: bad port; expected 1..65535"},
      {raw_frame(3, "192.0.2.1 65536"), "candidate-removed address: bad port; expected 1..65535"},
      {raw_frame(3, "192.0.2.1 +80"), "candidate-removed address: bad port; expected 1..65535"},
      {raw_frame(3, "192.0.2.1 "), "candidate-removed address: bad port; expected 1..65535"},
      {raw_frame(3, "192.0.2.1 000080"), "candidate-removed address: bad port; expected 1..65535"},
      {raw_frame(4, std::string(257, 'a')), "switch reason: 257 bytes exceeds 256"},
      {raw_frame(4, "a\tb"), "switch reason: byte 0x09 is not printable ASCII (offset 1)"},
      {raw_frame(5, "1234567"), "ping frame: payload 7 bytes; expected 8"},
      {raw_frame(5, ""), "ping frame: payload 0 bytes; expected 8"},
      {raw_frame(6, "123456789"), "pong frame: payload 9 bytes; expected 8"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(decode_error(c.wire), c.error);
  }
  // Leading zeros within five digits are fine.
  auto ok = decode_all(raw_frame(3, "192.0.2.1 00080"));
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->front(), ControlFrame(CandidateRemoved{addr("192.0.2.1:80")}));
}

TEST(ControlFrameReader, ErrorsAreStickyAndEarlierFramesStayAvailable) {
  ControlFrameReader r;
  const Bytes wire = cat({encode(Ping{7}), raw_frame(2, "x"), encode(Pong{7})});
  auto fed = r.feed(wire);
  ASSERT_FALSE(fed);
  EXPECT_EQ(fed.error(), "end-of-candidates frame: payload 1 bytes; expected none");
  EXPECT_TRUE(r.failed());
  const Bytes more = encode(EndOfCandidates{});
  auto again = r.feed(more);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), fed.error());
  EXPECT_FALSE(r.feed(ByteSpan()));
  EXPECT_EQ(drain(r), (std::vector<ControlFrame>{Ping{7}}));
}

TEST(ControlFrameReader, BoundsWhatItHolds) {
  // Frames decoded but never taken: 64 KiB of 11-byte pings is the limit.
  const Bytes ping = encode(Ping{1});
  const std::size_t fit = kMaxControlPendingBytes / ping.size();
  ControlFrameReader r;
  for (std::size_t i = 0; i < fit; ++i)
    ASSERT_TRUE(r.feed(ping)) << i;
  EXPECT_LE(r.pending_bytes(), kMaxControlPendingBytes);
  auto fed = r.feed(ping);
  ASSERT_FALSE(fed);
  EXPECT_EQ(fed.error(),
            "control stream: more than 65536 bytes pending; call next() between feeds");
  EXPECT_EQ(drain(r).size(), fit);

  // One oversized feed fails as well, before decoding all of it.
  Bytes big;
  while (big.size() <= kMaxControlPendingBytes + 100)
    big.insert(big.end(), ping.begin(), ping.end());
  ControlFrameReader one_feed;
  EXPECT_FALSE(one_feed.feed(big));
  EXPECT_LE(one_feed.pending_bytes(), kMaxControlPendingBytes);

  // A reader that is drained between feeds holds one partial frame at most.
  ControlFrameReader drained;
  const Bytes candidate = encode(Candidate{std::string(512, 'c')});
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(drained.feed(ByteSpan(candidate).first(100)));
    EXPECT_TRUE(drain(drained).size() <= 1);
    ASSERT_TRUE(drained.feed(ByteSpan(candidate).subspan(100)));
    EXPECT_EQ(drain(drained).size(), 1u);
  }
  EXPECT_EQ(drained.pending_bytes(), 0u);
}

// ---- stream headers: encoding and parsing -----------------------------------------------------

std::string line(const StreamHeader& h) {
  const Bytes b = encode(h);
  return std::string(as_chars(b));
}

std::string parse_error(std::string_view text) {
  auto r = parse_stream_header(text);
  return r ? std::string("(no error)") : r.error();
}

const std::vector<StreamHeader>& sample_headers() {
  static const std::vector<StreamHeader> headers = {
      FileHeader{"report.pdf", 123},
      FileHeader{"r\xc3\xa9sum\xc3\xa9 \"final\" (2).txt", 0},
      FileHeader{std::string(255, 'n'), std::numeric_limits<std::uint64_t>::max()},
      PipeHeader{},
      PerfHeader{10000, 50000000},
      PerfHeader{1, std::nullopt},
      PerfHeader{86400000, std::numeric_limits<std::uint64_t>::max()},
      FileResult{123, std::string(64, 'a')},
      FileResult{0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      PerfResult{62500000, 10000, 0, {}},
      PerfResult{1, 2, 123.456, {0.1, 1e-300, 5e-324, 1.7976931348623157e308, 42}},
  };
  return headers;
}

TEST(StreamHeader, EncodesCompactJsonLines) {
  EXPECT_EQ(line(FileHeader{"report.pdf", 123}),
            "{\"v\":1,\"kind\":\"file\",\"name\":\"report.pdf\",\"size\":123}\n");
  EXPECT_EQ(line(PipeHeader{}), "{\"v\":1,\"kind\":\"pipe\"}\n");
  EXPECT_EQ(line(PerfHeader{10000, 50000000}),
            "{\"v\":1,\"kind\":\"perf\",\"duration_ms\":10000,\"rate_bps\":50000000}\n");
  EXPECT_EQ(line(PerfHeader{10000, std::nullopt}),
            "{\"v\":1,\"kind\":\"perf\",\"duration_ms\":10000}\n");
  EXPECT_EQ(line(FileResult{5, std::string(64, 'f')}),
            "{\"v\":1,\"kind\":\"file_result\",\"size\":5,\"sha256\":\"" + std::string(64, 'f') +
                "\"}\n");
  const std::string result = line(PerfResult{100, 10000, 12.5, {3, 0.25}});
  EXPECT_TRUE(result.starts_with(
      "{\"v\":1,\"kind\":\"perf_result\",\"bytes\":100,\"duration_ms\":10000,\"max_gap_ms\":"))
      << result;
  EXPECT_EQ(kind_name(PerfResult{}), "perf_result");
  EXPECT_EQ(kind_name(FileHeader{}), "file");
}

TEST(StreamHeader, EveryKindRoundTrips) {
  for (const StreamHeader& h : sample_headers()) {
    SCOPED_TRACE(std::string(kind_name(h)));
    ASSERT_TRUE(validate(h)) << validate(h).error();
    const std::string text = line(h);
    ASSERT_FALSE(text.empty());
    ASSERT_LE(text.size(), kMaxStreamHeaderSize);
    ASSERT_EQ(text.back(), '\n');
    auto parsed = parse_stream_header(std::string_view(text).substr(0, text.size() - 1));
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(*parsed, h);
  }
}

TEST(StreamHeader, ReadsTheDocumentedExamplesAndOtherSpellings) {
  EXPECT_EQ(parse_stream_header(R"({"v":1,"kind":"file","name":"report.pdf","size":123})").value(),
            StreamHeader(FileHeader{"report.pdf", 123}));
  EXPECT_EQ(parse_stream_header(R"({"v":1,"kind":"pipe"})").value(), StreamHeader(PipeHeader{}));
  EXPECT_EQ(parse_stream_header(R"({"v":1,"kind":"perf","duration_ms":10000,"rate_bps":50000000})")
                .value(),
            StreamHeader(PerfHeader{10000, 50000000}));
  // Member order, white space, escapes, unknown members (of any type) and '\r' do not matter.
  EXPECT_EQ(parse_stream_header(
                " { \"size\" : 7 , \"future\":{\"a\":[1,{\"b\":null}]}, \"n\\u0061me\":\"a\\/b\","
                "\"kind\":\"file\",\"v\":1, \"x\":[true,\"s\"] }\r")
                .error(),
            "file.name: must not contain '/'");
  EXPECT_EQ(parse_stream_header(" { \"size\" : 7 , \"future\":{\"a\":[1,{\"b\":null}]}, "
                                "\"n\\u0061me\":\"\\u00e9t\\u00e9\",\"kind\":\"file\",\"v\":1 }\r")
                .value(),
            StreamHeader(FileHeader{"\xc3\xa9t\xc3\xa9", 7}));
  // Reals: integers, exponents, -0; read exactly.
  auto r = parse_stream_header(
      R"({"v":1,"kind":"perf_result","bytes":0,"duration_ms":0,"max_gap_ms":-0.0,)"
      R"("switch_gaps_ms":[7,1.3927926388013963E-143,5.409760742964738E124,1e2]})");
  ASSERT_TRUE(r) << r.error();
  const auto& pr = std::get<PerfResult>(*r);
  EXPECT_EQ(pr.max_gap_ms, 0.0);
  EXPECT_FALSE(std::signbit(pr.max_gap_ms));
  // Boost.JSON 1.81's own reading of these two is a unit in the last place off.
  EXPECT_EQ(pr.switch_gaps_ms,
            (std::vector<double>{7, 1.3927926388013963E-143, 5.409760742964738E124, 100}));
}

TEST(StreamHeader, RejectsBadJsonAndOtherVersions) {
  EXPECT_EQ(parse_error(""), "stream header: not valid JSON: incomplete JSON");
  EXPECT_EQ(parse_error("{\"v\":1,"), "stream header: not valid JSON: incomplete JSON");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"pipe\",}").rfind("stream header: not valid JSON", 0),
            0u);
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"pipe\"} x"),
            "stream header: not valid JSON: data after the object");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"pipe\"}{}"),
            "stream header: not valid JSON: data after the object");
  EXPECT_EQ(
      parse_error("{\"v\":1,\"kind\":\"pipe\"} // c").rfind("stream header: not valid JSON", 0),
      0u);
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"\xff\"}").rfind("stream header: not valid JSON", 0),
            0u);
  EXPECT_EQ(parse_error("[{\"v\":1,\"kind\":\"pipe\"}]"), "stream header: not a JSON object");
  EXPECT_EQ(parse_error("\"pipe\""), "stream header: not a JSON object");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"pipe\",\"x\":[[[[[[[[1]]]]]]]]}"),
            "stream header: JSON nested deeper than 8 levels");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"pipe\",\"kind\":\"file\"}"),
            "stream header: duplicate member name in a JSON object");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"pipe\",\"\\u006bind\":\"file\"}"),
            "stream header: duplicate member name in a JSON object");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"pipe\"}\n"),
            "stream header: contains a newline before its end");
  EXPECT_EQ(parse_error(std::string(4096, ' ')),
            "stream header: 4096 bytes exceeds 4095 (plus "
            "the newline)");

  EXPECT_EQ(parse_error("{\"kind\":\"pipe\"}"), "v: missing; expected 1");
  EXPECT_EQ(parse_error("{\"v\":\"1\",\"kind\":\"pipe\"}"),
            "v: expected an integer (the header version, 1)");
  EXPECT_EQ(parse_error("{\"v\":1.0,\"kind\":\"pipe\"}"),
            "v: expected an integer (the header version, 1)");
  for (std::string_view v : {"2", "0", "-1", "18446744073709551615"}) {
    EXPECT_EQ(parse_error("{\"v\":" + std::string(v) + ",\"kind\":\"pipe\"}"),
              "v: unsupported version (this side speaks 1)");
  }
  // The version is checked first: a later version may change everything else.
  EXPECT_EQ(parse_error("{\"v\":2,\"kind\":\"teleport\"}"),
            "v: unsupported version (this side speaks 1)");

  EXPECT_EQ(parse_error("{\"v\":1}"),
            "kind: missing; expected file, pipe, perf, file_result or perf_result");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":7}"),
            "kind: expected a string (file, pipe, perf, file_result or perf_result)");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"teleport\"}"),
            "kind: unknown; expected file, pipe, perf, file_result or perf_result");
  EXPECT_EQ(parse_error("{\"v\":1,\"kind\":\"FILE\"}"),
            "kind: unknown; expected file, pipe, perf, file_result or perf_result");
}

TEST(StreamHeader, RejectsBadMembersNamingThem) {
  struct Case {
    std::string json;
    std::string error;
  };
  const std::string sha(64, '0');
  const std::vector<Case> cases = {
      // file
      {R"({"v":1,"kind":"file","size":1})",
       "file.name: missing; expected a string (the file name)"},
      {R"({"v":1,"kind":"file","name":5,"size":1})",
       "file.name: expected a string (the file name)"},
      {R"({"v":1,"kind":"file","name":"a"})",
       "file.size: missing; expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file","name":"a","size":-1})",
       "file.size: expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file","name":"a","size":1.5})",
       "file.size: expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file","name":"a","size":1e3})",
       "file.size: expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file","name":"a","size":18446744073709551616})",
       "file.size: expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file","name":"a","size":"1"})",
       "file.size: expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file","name":"a","size":null})",
       "file.size: expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file","name":"","size":1})",
       "file.name: empty; expected 1..255 bytes of UTF-8"},
      {R"({"v":1,"kind":"file","name":")" + std::string(256, 'a') + R"(","size":1})",
       "file.name: 256 bytes exceeds 255"},
      {R"({"v":1,"kind":"file","name":"a/b","size":1})", "file.name: must not contain '/'"},
      {R"({"v":1,"kind":"file","name":"a\\b","size":1})", "file.name: must not contain '\\'"},
      {R"({"v":1,"kind":"file","name":"..","size":1})",
       "file.name: must not start with '.' (hidden and relative names are refused)"},
      {R"({"v":1,"kind":"file","name":".","size":1})",
       "file.name: must not start with '.' (hidden and relative names are refused)"},
      {R"({"v":1,"kind":"file","name":".bashrc","size":1})",
       "file.name: must not start with '.' (hidden and relative names are refused)"},
      {R"({"v":1,"kind":"file","name":"a\u0000b","size":1})",
       "file.name: must not contain control characters"},
      {R"({"v":1,"kind":"file","name":"a\nb","size":1})",
       "file.name: must not contain control characters"},
      {R"({"v":1,"kind":"file","name":"a\u007f","size":1})",
       "file.name: must not contain control characters"},
      {R"({"v":1,"kind":"file","name":"a\u009b","size":1})",
       "file.name: must not contain control characters"},
      // perf
      {R"({"v":1,"kind":"perf"})", "perf.duration_ms: missing; expected an integer in 1..86400000"},
      {R"({"v":1,"kind":"perf","duration_ms":0})",
       "perf.duration_ms: expected an integer in 1..86400000"},
      {R"({"v":1,"kind":"perf","duration_ms":86400001})",
       "perf.duration_ms: expected an integer in 1..86400000"},
      {R"({"v":1,"kind":"perf","duration_ms":1000,"rate_bps":0})",
       "perf.rate_bps: expected an integer in 1..18446744073709551615 (omit it for bulk)"},
      {R"({"v":1,"kind":"perf","duration_ms":1000,"rate_bps":null})",
       "perf.rate_bps: expected an integer in 1..18446744073709551615 (omit it for bulk)"},
      {R"({"v":1,"kind":"perf","duration_ms":1000,"rate_bps":1.5e6})",
       "perf.rate_bps: expected an integer in 1..18446744073709551615 (omit it for bulk)"},
      // file_result
      {R"({"v":1,"kind":"file_result","sha256":")" + sha + "\"}",
       "file_result.size: missing; expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"file_result","size":1})",
       "file_result.sha256: missing; expected 64 lower-case hex digits"},
      {R"({"v":1,"kind":"file_result","size":1,"sha256":")" + std::string(64, 'A') + "\"}",
       "file_result.sha256: expected 64 lower-case hex digits"},
      {R"({"v":1,"kind":"file_result","size":1,"sha256":")" + std::string(63, 'a') + "\"}",
       "file_result.sha256: expected 64 lower-case hex digits"},
      {R"({"v":1,"kind":"file_result","size":1,"sha256":[]})",
       "file_result.sha256: expected 64 lower-case hex digits"},
      // perf_result
      {R"({"v":1,"kind":"perf_result","duration_ms":1,"max_gap_ms":0,"switch_gaps_ms":[]})",
       "perf_result.bytes: missing; expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"max_gap_ms":0,"switch_gaps_ms":[]})",
       "perf_result.duration_ms: missing; expected an integer in 0..18446744073709551615"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"switch_gaps_ms":[]})",
       "perf_result.max_gap_ms: missing; expected a finite number >= 0"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":-1,)"
       R"("switch_gaps_ms":[]})",
       "perf_result.max_gap_ms: expected a finite number >= 0"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":1e400,)"
       R"("switch_gaps_ms":[]})",
       "perf_result.max_gap_ms: expected a finite number >= 0"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":"5",)"
       R"("switch_gaps_ms":[]})",
       "perf_result.max_gap_ms: expected a finite number >= 0"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":0})",
       "perf_result.switch_gaps_ms: missing; expected an array of at most 128 numbers"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":0,)"
       R"("switch_gaps_ms":5})",
       "perf_result.switch_gaps_ms: expected an array of at most 128 numbers"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":0,)"
       R"("switch_gaps_ms":[1,2,-3]})",
       "perf_result.switch_gaps_ms[2]: expected a finite number >= 0"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":0,)"
       R"("switch_gaps_ms":[1,[2]]})",
       "perf_result.switch_gaps_ms[1]: expected a finite number >= 0"},
      {R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":0,)"
       R"("switch_gaps_ms":[null]})",
       "perf_result.switch_gaps_ms[0]: expected a finite number >= 0"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(parse_error(c.json), c.error) << c.json;
  }
  std::string gaps = "0";
  for (std::size_t i = 1; i < 129; ++i)
    gaps += ",0";
  EXPECT_EQ(parse_error(R"({"v":1,"kind":"perf_result","bytes":1,"duration_ms":1,"max_gap_ms":0,)"
                        R"("switch_gaps_ms":[)" +
                        gaps + "]}"),
            "perf_result.switch_gaps_ms: 129 entries exceeds 128");
}

TEST(StreamHeader, ValidateAndEncodeRefuseWhatTheParserRefuses) {
  const std::vector<std::pair<StreamHeader, std::string>> cases = {
      {FileHeader{"", 1}, "file.name: empty; expected 1..255 bytes of UTF-8"},
      {FileHeader{"../etc/passwd", 1},
       "file.name: must not start with '.' (hidden and relative names are refused)"},
      {FileHeader{"a/b", 1}, "file.name: must not contain '/'"},
      {FileHeader{"caf\xe9", 1}, "file.name: not valid UTF-8"},
      {FileHeader{"\xc0\xaf", 1}, "file.name: not valid UTF-8"},          // overlong '/'
      {FileHeader{"\xed\xa0\x80", 1}, "file.name: not valid UTF-8"},      // a surrogate
      {FileHeader{"\xf4\x90\x80\x80", 1}, "file.name: not valid UTF-8"},  // above U+10FFFF
      {FileHeader{"a\xe2\x82", 1}, "file.name: not valid UTF-8"},         // truncated
      {FileHeader{std::string("a\0b", 3), 1}, "file.name: must not contain control characters"},
      {PerfHeader{0, std::nullopt}, "perf.duration_ms: expected an integer in 1..86400000"},
      {PerfHeader{86400001, std::nullopt}, "perf.duration_ms: expected an integer in 1..86400000"},
      {PerfHeader{1, 0},
       "perf.rate_bps: expected an integer in 1..18446744073709551615 (omit it for bulk)"},
      {FileResult{1, "xyz"}, "file_result.sha256: expected 64 lower-case hex digits"},
      {PerfResult{1, 1, -0.5, {}}, "perf_result.max_gap_ms: expected a finite number >= 0"},
      {PerfResult{1, 1, std::nan(""), {}}, "perf_result.max_gap_ms: expected a finite number >= 0"},
      {PerfResult{1, 1, 0, {1, std::numeric_limits<double>::infinity()}},
       "perf_result.switch_gaps_ms[1]: expected a finite number >= 0"},
      {PerfResult{1, 1, 0, std::vector<double>(129, 1.0)},
       "perf_result.switch_gaps_ms: 129 entries exceeds 128"},
  };
  for (const auto& [header, error] : cases) {
    auto v = validate(header);
    ASSERT_FALSE(v) << error;
    EXPECT_EQ(v.error(), error);
    EXPECT_TRUE(encode(header).empty()) << error;
  }
  // Four-byte UTF-8 and the longest name are fine.
  EXPECT_TRUE(validate(FileHeader{"\xf0\x9f\x93\x84 notes.txt", 1}));
}

TEST(StreamHeader, TheLongestHeadersFitTheLine) {
  // The longest double texts, the largest integers, the most gaps.
  const double longest = 1.2345678901234567E-300;
  const PerfResult result{std::numeric_limits<std::uint64_t>::max(),
                          std::numeric_limits<std::uint64_t>::max(), longest,
                          std::vector<double>(kMaxSwitchGaps, longest)};
  const std::string text = line(result);
  ASSERT_FALSE(text.empty());
  EXPECT_LE(text.size(), kMaxStreamHeaderSize);
  EXPECT_EQ(parse_stream_header(std::string_view(text).substr(0, text.size() - 1)).value(),
            StreamHeader(result));

  const FileHeader quotes{std::string(255, '"'), std::numeric_limits<std::uint64_t>::max()};
  const std::string file = line(quotes);
  ASSERT_FALSE(file.empty());
  EXPECT_LE(file.size(), kMaxStreamHeaderSize);
  EXPECT_EQ(parse_stream_header(std::string_view(file).substr(0, file.size() - 1)).value(),
            StreamHeader(quotes));
}

// ---- stream headers: the incremental reader -------------------------------------------------

TEST(StreamHeaderReader, CompletesOnTheNewlineAndKeepsTheRest) {
  const std::string wire = line(FileHeader{"report.pdf", 3}) + "abc";
  StreamHeaderReader r;
  EXPECT_EQ(r.status(), StreamHeaderReader::Status::kNeedMore);
  EXPECT_EQ(r.feed(as_bytes(wire)), StreamHeaderReader::Status::kDone);
  EXPECT_EQ(r.header(), StreamHeader(FileHeader{"report.pdf", 3}));
  EXPECT_EQ(as_chars(r.rest()), "abc");
  EXPECT_TRUE(r.error().empty());
  // Later feeds consume nothing: those bytes belong to the caller.
  EXPECT_EQ(r.feed(as_bytes("more")), StreamHeaderReader::Status::kDone);
  EXPECT_EQ(as_chars(r.rest()), "abc");
}

TEST(StreamHeaderReader, ReadsAHeaderFedByteByByte) {
  for (const StreamHeader& h : sample_headers()) {
    const std::string wire = line(h);
    StreamHeaderReader r;
    for (std::size_t i = 0; i + 1 < wire.size(); ++i) {
      ASSERT_EQ(r.feed(as_bytes(std::string_view(wire).substr(i, 1))),
                StreamHeaderReader::Status::kNeedMore);
    }
    ASSERT_EQ(r.feed(as_bytes("\n")), StreamHeaderReader::Status::kDone) << r.error();
    EXPECT_EQ(r.header(), h);
    EXPECT_TRUE(r.rest().empty());
  }
}

TEST(StreamHeaderReader, RestIsFromTheCompletingFeedOnly) {
  const std::string wire = line(PipeHeader{}) + "payload";
  const std::size_t newline = wire.find('\n');
  StreamHeaderReader r;
  EXPECT_EQ(r.feed(as_bytes(std::string_view(wire).substr(0, 5))),
            StreamHeaderReader::Status::kNeedMore);
  EXPECT_TRUE(r.rest().empty());
  EXPECT_EQ(r.feed(as_bytes(std::string_view(wire).substr(5, newline - 5 + 1 + 4))),
            StreamHeaderReader::Status::kDone);
  EXPECT_EQ(as_chars(r.rest()), "payl");
}

TEST(StreamHeaderReader, BoundsTheLine) {
  // 4095 bytes and the newline: the longest accepted line.
  std::string longest = "{\"v\":1,\"kind\":\"pipe\",\"pad\":\"";
  longest += std::string(4095 - longest.size() - 2, 'p') + "\"}";
  ASSERT_EQ(longest.size(), 4095u);
  StreamHeaderReader ok;
  EXPECT_EQ(ok.feed(as_bytes(longest)), StreamHeaderReader::Status::kNeedMore);
  EXPECT_EQ(ok.feed(as_bytes("\n")), StreamHeaderReader::Status::kDone) << ok.error();

  // One byte more: the error comes at the 4096th byte, without waiting for a newline.
  StreamHeaderReader too_long;
  const std::string over = "{\"v\":1,\"kind\":\"pipe\",\"pad\":\"" + std::string(5000, 'p');
  EXPECT_EQ(too_long.feed(as_bytes(std::string_view(over).substr(0, 4095))),
            StreamHeaderReader::Status::kNeedMore);
  EXPECT_EQ(too_long.feed(as_bytes(std::string_view(over).substr(4095, 1))),
            StreamHeaderReader::Status::kError);
  EXPECT_EQ(too_long.error(), "stream header: no newline within 4096 bytes");
  EXPECT_EQ(too_long.feed(as_bytes("\"}\n")), StreamHeaderReader::Status::kError);

  StreamHeaderReader one_feed;
  EXPECT_EQ(one_feed.feed(as_bytes(longest + "x\n")), StreamHeaderReader::Status::kError);
  EXPECT_EQ(one_feed.error(), "stream header: no newline within 4096 bytes");
}

TEST(StreamHeaderReader, ReportsParseErrorsAndStaysFailed) {
  StreamHeaderReader r;
  EXPECT_EQ(r.feed(as_bytes("[1,2]\n{\"v\":1,\"kind\":\"pipe\"}\n")),
            StreamHeaderReader::Status::kError);
  EXPECT_EQ(r.error(), "stream header: not a JSON object");
  EXPECT_TRUE(r.rest().empty());
  EXPECT_EQ(r.feed(as_bytes("{\"v\":1,\"kind\":\"pipe\"}\n")), StreamHeaderReader::Status::kError);
  EXPECT_EQ(r.status(), StreamHeaderReader::Status::kError);

  StreamHeaderReader empty;
  EXPECT_EQ(empty.feed(ByteSpan()), StreamHeaderReader::Status::kNeedMore);
  EXPECT_EQ(empty.feed(as_bytes("\n")), StreamHeaderReader::Status::kError);
  EXPECT_EQ(empty.error(), "stream header: not valid JSON: incomplete JSON");

  StreamHeaderReader version;
  EXPECT_EQ(version.feed(as_bytes("{\"v\":2,\"kind\":\"pipe\"}\r\n")),
            StreamHeaderReader::Status::kError);
  EXPECT_EQ(version.error(), "v: unsupported version (this side speaks 1)");
}

}  // namespace
}  // namespace roam::session
