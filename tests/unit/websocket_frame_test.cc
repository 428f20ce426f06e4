// The server frame header against RFC 6455 §5.2 byte by byte, and against an independent
// decoder: Beast's WebSocket client reads the frames after a real opening handshake.
#include "common/net/websocket_frame.h"

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <gtest/gtest.h>

namespace roam::net {
namespace {

std::vector<std::uint8_t> header_of(WebSocketOpcode opcode, std::uint64_t size) {
  ServerFrameHeader header(opcode, size);
  return {header.view().begin(), header.view().end()};
}

TEST(WebSocketFrame, LengthEncodingsAtTheirBoundaries) {
  using V = std::vector<std::uint8_t>;
  EXPECT_EQ(header_of(WebSocketOpcode::kText, 0), (V{0x81, 0x00}));
  EXPECT_EQ(header_of(WebSocketOpcode::kText, 125), (V{0x81, 125}));
  EXPECT_EQ(header_of(WebSocketOpcode::kText, 126), (V{0x81, 126, 0x00, 126}));
  EXPECT_EQ(header_of(WebSocketOpcode::kBinary, 0xFFFF), (V{0x82, 126, 0xFF, 0xFF}));
  EXPECT_EQ(header_of(WebSocketOpcode::kText, 0x10000),
            (V{0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));
  EXPECT_EQ(header_of(WebSocketOpcode::kPing, 3), (V{0x89, 3}));
  // No mask bit: a server never masks (§5.1).
  for (std::uint64_t size : {0ULL, 125ULL, 126ULL, 70000ULL}) {
    EXPECT_EQ(header_of(WebSocketOpcode::kText, size)[1] & 0x80, 0) << size;
  }
}

TEST(WebSocketFrame, BeastClientReadsTheFramesWhole) {
  namespace websocket = boost::beast::websocket;
  boost::asio::io_context io;
  boost::beast::test::stream client_end(io);
  boost::beast::test::stream server_end(io);
  client_end.connect(server_end);
  websocket::stream<boost::beast::test::stream&> client(client_end);
  websocket::stream<boost::beast::test::stream&> server(server_end);
  boost::system::error_code accept_ec, handshake_ec;
  server.async_accept([&](boost::system::error_code ec) { accept_ec = ec; });
  client.async_handshake("localhost", "/",
                         [&](boost::system::error_code ec) { handshake_ec = ec; });
  io.run();
  ASSERT_FALSE(accept_ec) << accept_ec.message();
  ASSERT_FALSE(handshake_ec) << handshake_ec.message();

  // Sizes on each side of the 7-bit and 16-bit length boundaries.
  const std::vector<std::size_t> sizes = {0, 1, 125, 126, 127, 65535, 65536, 70000};
  for (std::size_t size : sizes) {
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    ServerFrameHeader header(WebSocketOpcode::kText, size);
    boost::asio::write(server_end, boost::asio::buffer(header.view().data(), header.size));
    boost::asio::write(server_end, boost::asio::buffer(payload));
    boost::beast::flat_buffer buffer;
    client.read_message_max(1 << 20);
    boost::system::error_code ec;
    client.read(buffer, ec);
    ASSERT_FALSE(ec) << size << ": " << ec.message();
    EXPECT_TRUE(client.got_text());
    EXPECT_EQ(boost::beast::buffers_to_string(buffer.data()), payload) << size;
  }
}

}  // namespace
}  // namespace roam::net
