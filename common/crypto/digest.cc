#include "common/crypto/digest.h"

#include <stdexcept>

#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/md5.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>

namespace roam::crypto {
namespace {

const byte* in(ByteSpan s) {
  return reinterpret_cast<const byte*>(s.data());
}
word32 len(ByteSpan s) {
  return static_cast<word32>(s.size());
}
byte* out(std::span<std::byte> s) {
  return reinterpret_cast<byte*>(s.data());
}

// wolfCrypt only fails here on programming errors (bad type, null pointers): treat as fatal.
void check(int rc, const char* what) {
  if (rc != 0)
    throw std::logic_error(std::string("wolfCrypt ") + what + " failed: " + std::to_string(rc));
}

template <std::size_t N>
std::array<std::byte, N> hmac(int type, ByteSpan key, ByteSpan data) {
  Hmac ctx;
  std::array<std::byte, N> digest{};
  check(wc_HmacInit(&ctx, nullptr, INVALID_DEVID), "HmacInit");
  int rc = wc_HmacSetKey(&ctx, type, in(key), len(key));
  if (rc == 0) rc = wc_HmacUpdate(&ctx, in(data), len(data));
  if (rc == 0) rc = wc_HmacFinal(&ctx, out(digest));
  wc_HmacFree(&ctx);
  check(rc, "HMAC");
  return digest;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(ByteSpan data, const char* alphabet, bool pad) {
  std::string outs;
  outs.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    unsigned v = std::to_integer<unsigned>(data[i]) << 16 |
                 std::to_integer<unsigned>(data[i + 1]) << 8 |
                 std::to_integer<unsigned>(data[i + 2]);
    for (int shift : {18, 12, 6, 0})
      outs.push_back(alphabet[(v >> shift) & 63]);
  }
  std::size_t rest = data.size() - i;
  if (rest > 0) {
    unsigned v = std::to_integer<unsigned>(data[i]) << 16;
    if (rest == 2) v |= std::to_integer<unsigned>(data[i + 1]) << 8;
    outs.push_back(alphabet[(v >> 18) & 63]);
    outs.push_back(alphabet[(v >> 12) & 63]);
    if (rest == 2) outs.push_back(alphabet[(v >> 6) & 63]);
    if (pad) outs.append(rest == 1 ? "==" : "=");
  }
  return outs;
}

std::optional<Bytes> decode(std::string_view text, const char* alphabet, bool padded) {
  int value_of[256];
  std::fill(std::begin(value_of), std::end(value_of), -1);
  for (int i = 0; i < 64; ++i)
    value_of[static_cast<unsigned char>(alphabet[i])] = i;
  if (padded) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t pads = 0;
    while (pads < 2 && pads < text.size() && text[text.size() - 1 - pads] == '=')
      ++pads;
    text.remove_suffix(pads);
  }
  if (text.size() % 4 == 1) return std::nullopt;
  Bytes result;
  result.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value_of[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      result.push_back(std::byte((acc >> bits) & 0xff));
    }
  }
  // Non-canonical encodings (leftover bits set) are rejected so a value has one spelling.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return result;
}

}  // namespace

Md5Digest md5(ByteSpan data) {
  Md5Digest d{};
  check(wc_Md5Hash(in(data), len(data), out(d)), "MD5");
  return d;
}

Sha1Digest sha1(ByteSpan data) {
  Sha1Digest d{};
  check(wc_ShaHash(in(data), len(data), out(d)), "SHA-1");
  return d;
}

Sha256Digest sha256(ByteSpan data) {
  Sha256Digest d{};
  check(wc_Sha256Hash(in(data), len(data), out(d)), "SHA-256");
  return d;
}

Sha1Digest hmac_sha1(ByteSpan key, ByteSpan data) {
  return hmac<20>(WC_SHA, key, data);
}
Sha256Digest hmac_sha256(ByteSpan key, ByteSpan data) {
  return hmac<32>(WC_SHA256, key, data);
}

struct Sha256::State {
  wc_Sha256 ctx;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  check(wc_InitSha256(&state_->ctx), "InitSha256");
}
Sha256::~Sha256() {
  wc_Sha256Free(&state_->ctx);
}
void Sha256::update(ByteSpan data) {
  check(wc_Sha256Update(&state_->ctx, in(data), len(data)), "Sha256Update");
}
Sha256Digest Sha256::finish() {
  Sha256Digest d{};
  check(wc_Sha256Final(&state_->ctx, out(d)), "Sha256Final");
  return d;
}

std::uint32_t crc32(ByteSpan data) {
  static const auto kTable = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::byte b : data)
    c = kTable[(c ^ std::to_integer<std::uint32_t>(b)) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool constant_time_equal(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  volatile unsigned diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff = diff | std::to_integer<unsigned>(a[i] ^ b[i]);
  return diff == 0;
}

std::string base64_encode(ByteSpan data) {
  return encode(data, kBase64, true);
}
std::string base64url_encode(ByteSpan data) {
  return encode(data, kBase64Url, false);
}
std::optional<Bytes> base64_decode(std::string_view text) {
  return decode(text, kBase64, true);
}
std::optional<Bytes> base64url_decode(std::string_view text) {
  return decode(text, kBase64Url, false);
}

}  // namespace roam::crypto
