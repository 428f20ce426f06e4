// Fuzzes what roam-signaling reads back from Redis: route envelopes (another instance's
// publications) and the peer info stored in the registry. Properties: never crashes; a decoded
// delivery re-encodes to an envelope that decodes equal; decoded peer info round-trips.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/signaling/peer_info.h"
#include "common/signaling/route_envelope.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace roam::signaling;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto envelope = decode_envelope(text);
  if (envelope) {
    if (envelope->kind == Envelope::Kind::kDeliver) {
      auto again = decode_envelope(encode_delivery(envelope->peer, envelope->message));
      FUZZ_CHECK(again);
      FUZZ_CHECK(again->kind == Envelope::Kind::kDeliver);
      FUZZ_CHECK(again->peer == envelope->peer);
      FUZZ_CHECK(again->message == envelope->message);
    } else {
      FUZZ_CHECK(envelope->generation > 0);
    }
  } else {
    FUZZ_CHECK(!envelope.error().empty());
  }
  auto info = decode_peer_info(text);
  if (info) {
    auto again = decode_peer_info(encode_peer_info(*info));
    FUZZ_CHECK(again);
    FUZZ_CHECK(*again == *info);
  }
  return 0;
}
