// Fuzz target for TURN ChannelData framing and the STUN/ChannelData/QUIC demultiplexer:
// parse + encode must round-trip, and classify() must agree with the individual parsers.
// Any violated invariant aborts so libFuzzer records the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "common/stun/channel_data.h"
#include "common/stun/demux.h"
#include "common/stun/message.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace roam;
using namespace roam::stun;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(reinterpret_cast<const std::byte*>(data), size);

  auto v = parse_channel_data(in);
  if (v) {
    FUZZ_CHECK(v->channel >= kMinChannel && v->channel <= kMaxChannel);
    FUZZ_CHECK(v->data.data() == in.data() + kChannelDataHeaderSize);
    FUZZ_CHECK(v->data.size() <= size - kChannelDataHeaderSize);
    const std::size_t trailing = size - kChannelDataHeaderSize - v->data.size();
    FUZZ_CHECK(trailing <= 3);
    // Re-encoding gives back the datagram minus its padding, which parses to the same view.
    Bytes out;
    encode_channel_data(v->channel, v->data, out);
    FUZZ_CHECK(out.size() == size - trailing);
    FUZZ_CHECK(std::equal(out.begin(), out.end(), in.begin()));
    auto again = parse_channel_data(out);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->channel == v->channel);
    FUZZ_CHECK(std::equal(again->data.begin(), again->data.end(), v->data.begin(), v->data.end()));
  } else {
    FUZZ_CHECK(!describe(v.error()).empty());
  }

  // Demultiplexing: STUN first from any source; ChannelData only from the TURN server;
  // everything else non-empty is QUIC from peers and invalid from the TURN server.
  const bool stun = looks_like_stun(in);
  const PacketKind from_turn = classify(in, true);
  const PacketKind from_peer = classify(in, false);
  if (size == 0) {
    FUZZ_CHECK(from_turn == PacketKind::kInvalid && from_peer == PacketKind::kInvalid);
    return 0;
  }
  if (stun) {
    FUZZ_CHECK(from_turn == PacketKind::kStun && from_peer == PacketKind::kStun);
    // ChannelData channels start 0x40-0x4F, STUN 0x00-0x3F: never both.
    FUZZ_CHECK(!v);
  } else {
    FUZZ_CHECK(from_peer == PacketKind::kQuic);
    FUZZ_CHECK(from_turn == (v ? PacketKind::kChannelData : PacketKind::kInvalid));
    FUZZ_CHECK(!Message::parse(in));
  }
  return 0;
}
