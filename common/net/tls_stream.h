// TLS (wolfSSL's own API) straight over a TCP socket, in the shape of asio::ssl::stream so that
// Beast's websocket::stream and http::async_read run on it.
//
// Why not asio::ssl::stream: its engine keeps two 17 KiB record buffers and a 2 x 17 KB BIO pair
// per connection whether the connection is busy or idle (68 KiB of roam-signaling's 117 KiB per
// idle connection), and every byte crosses the BIO pair twice. Here wolfSSL reads from and
// writes to the socket through I/O callbacks: an idle connection holds no buffers, and while
// `set_corked(true)` a writer encrypts a burst of messages into one send().
//
// Contracts:
// - Thread model: one executor, single-threaded (one io_context run by one thread, as every
//   roam process does). Readiness is awaited with async_wait after a non-blocking recv/send saw
//   EAGAIN; with several threads running the reactor an edge could be consumed in between.
// - At most one read operation at a time, as for any Asio stream; the handshake runs alone.
//   Write operations (write, flush, shutdown) may overlap: they share one output buffer, and
//   each completes once the buffer has gone out, its own bytes with it. That lets a
//   WebSocket writer that frames its messages itself (write_buffered) flush while Beast's
//   reader sends a pong or a close frame.
// - Errors: the socket's errno as a system error; asio::error::eof after the peer's
//   close_notify; asio::ssl::error::stream_truncated when TCP ends without one; wolfSSL's own
//   failures (bad record MAC, verification, protocol) as tls_category() codes whose message is
//   wolfSSL's text. Closing the socket (next_layer().close()) ends every pending operation with
//   operation_aborted: callers bound operations that way (timers that close the socket).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/coroutine.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/error_code.hpp>
#include <wolfssl/ssl.h>

namespace roam::net {

// wolfSSL's error codes (wolfSSL_get_error), named by wolfSSL's own text.
const boost::system::error_category& tls_category();

class TlsStream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using next_layer_type = boost::asio::ip::tcp::socket;
  using lowest_layer_type = next_layer_type;
  using handshake_type = boost::asio::ssl::stream_base::handshake_type;
  using VerifyCallback =
      std::function<bool(bool preverified, boost::asio::ssl::verify_context& context)>;

  // `context` (its certificates, keys, verification settings) must outlive the stream.
  // Throws std::runtime_error when wolfSSL cannot make a session (out of memory).
  TlsStream(next_layer_type socket, boost::asio::ssl::context& context);
  TlsStream(const executor_type& executor, boost::asio::ssl::context& context);
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  ~TlsStream();

  executor_type get_executor() { return socket_.get_executor(); }
  next_layer_type& next_layer() { return socket_; }
  const next_layer_type& next_layer() const { return socket_; }
  lowest_layer_type& lowest_layer() { return socket_; }
  // The WOLFSSL session (SSL* under wolfSSL's OpenSSL compatibility layer): SNI, verify result.
  WOLFSSL* native_handle() { return ssl_.get(); }

  // As asio::ssl::stream's: per-connection verification mode and callback (host name checks).
  void set_verify_mode(boost::asio::ssl::verify_mode mode);
  void set_verify_callback(VerifyCallback callback);

  // While corked, writes only encrypt into the output buffer (flushed once it holds
  // kCorkLimit bytes); async_flush() sends what is buffered. Uncorking does not flush.
  void set_corked(bool corked) { corked_ = corked; }
  std::size_t buffered_output() const { return out_.size() - out_sent_; }
  // Received bytes not yet read through this stream: the next read needs no recv().
  bool has_buffered_input() const {
    return in_used_ < in_.size() || wolfSSL_pending(ssl_.get()) > 0;
  }
  // recv() calls so far that brought bytes: a keep-alive's sign of life from the peer that costs
  // nothing per message (no clock read, no timer).
  std::uint64_t receives() const { return receives_; }
  // Asks the kernel to stamp arriving segments (SO_TIMESTAMPNS, on the open socket). From then
  // on last_arrival_unix_ns() is when the newest segment read so far reached this host's TCP
  // stack (CLOCK_REALTIME, ns; 0 = none yet, or the last read came unstamped, as in the moment
  // after the first socket of the host asks). For a message just read that is no earlier than
  // its own arrival: one read may take later segments with it. Benchmarks use it to leave the
  // receiving client's own wait for the CPU out of a server's forward latency. False (errno
  // set) when the socket refuses.
  bool stamp_arrivals();
  std::int64_t last_arrival_unix_ns() const { return last_arrival_ns_; }

  // Encrypts `buffers` into the output buffer now and sends nothing (async_flush() sends it);
  // never waits. Pieces that fit are joined first, so a frame header and its payload make one
  // record. Returns the plaintext bytes taken; `ec` as for a write. The caller bounds what it
  // buffers (buffered_output()) and must not interleave it inside another writer's frame.
  template <class ConstBuffers>
  std::size_t write_buffered(const ConstBuffers& buffers, boost::system::error_code& ec);

  template <class Token>
  auto async_handshake(handshake_type type, Token&& token);
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token);
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token);
  template <class Token>
  auto async_flush(Token&& token);
  // Sends close_notify (RFC 8446 §6.1) without waiting for the peer's.
  template <class Token>
  auto async_shutdown(Token&& token);

  static constexpr std::size_t kCorkLimit = 16 * 1024;

 private:
  enum class Want { kNothing, kRead, kWrite };
  template <class Op>
  struct OpBase;
  template <class Buffers>
  struct ReadOp;
  template <class Buffers>
  struct WriteOp;
  struct HandshakeOp;

  // The non-template halves of the operations (tls_stream.cc).
  Want handshake_step(handshake_type type, boost::system::error_code& ec);
  Want read_step(boost::asio::mutable_buffer buffer, std::size_t& n, boost::system::error_code& ec);
  std::size_t encrypt(boost::asio::const_buffer data, boost::system::error_code& ec);
  // Sends buffered output until done (kNothing) or the socket is full (kWrite).
  Want flush_step(boost::system::error_code& ec);
  bool must_flush() const { return !corked_ || buffered_output() >= kCorkLimit; }
  void queue_close_notify();
  Want classify(int result, boost::system::error_code& ec);
  void set_up(boost::asio::ssl::context& context);

  static int on_receive(WOLFSSL* ssl, char* buffer, int size, void* self);
  // recv(), or recvmsg() taking the arrival stamp when stamp_arrivals() is on.
  ssize_t receive_from_socket(char* buffer, std::size_t size);
  static int on_send(WOLFSSL* ssl, char* buffer, int size, void* self);
  static int on_verify(int preverified, WOLFSSL_X509_STORE_CTX* context);

  struct FreeSsl {
    void operator()(WOLFSSL* ssl) const;
  };

  next_layer_type socket_;
  std::unique_ptr<WOLFSSL, FreeSsl> ssl_;
  std::unique_ptr<VerifyCallback> verify_;
  // Received bytes wolfSSL has not asked for yet (one recv() reads ahead up to 17 KiB).
  std::string in_;
  std::size_t in_used_ = 0;
  std::uint64_t receives_ = 0;
  std::int64_t last_arrival_ns_ = 0;
  bool stamp_arrivals_ = false;
  // Encrypted records not yet handed to TCP.
  std::string out_;
  std::size_t out_sent_ = 0;
  int socket_errno_ = 0;  // the errno that failed the last recv/send, for the error code
  bool peer_ended_tcp_ = false;
  // The last recv() came back short: the socket was empty then, and with edge-triggered epoll
  // the next arrival wakes a wait. Until a wait completes, a recv() would only say EAGAIN.
  bool socket_drained_ = false;
  bool corked_ = false;
};

// ---- operations ---------------------------------------------------------------------------
// Each operation tries its step at once and waits for socket readiness only when the step
// says so. One that completes without waiting is posted, never run inside its initiation.

// What every operation shares: its result, waiting on the socket, and never completing inside
// its initiating call (one that finishes without having waited is posted, then delivered).
template <class Op>
struct TlsStream::OpBase {
  TlsStream* stream;
  bool waited = false;
  bool done = false;
  boost::system::error_code ec{};
  std::size_t n = 0;

  template <class Self>
  void wait(Self& self, Want want) {
    waited = true;
    if (want == Want::kRead) stream->socket_drained_ = false;  // asked again after the wait
    stream->socket_.async_wait(
        want == Want::kRead ? next_layer_type::wait_read : next_layer_type::wait_write,
        std::move(self));
  }

  template <class Self>
  void finish(Self& self, boost::system::error_code result) {
    ec = result;
    if (ec) n = 0;
    if (waited) return static_cast<Op*>(this)->deliver(self);
    done = true;
    boost::asio::post(std::move(self));
  }
};

template <class Buffers>
struct TlsStream::ReadOp : OpBase<ReadOp<Buffers>> {
  Buffers buffers;

  template <class Self>
  void operator()(Self& self, boost::system::error_code wait_ec = {}) {
    if (this->done) return deliver(self);
    if (wait_ec) return this->finish(self, wait_ec);
    boost::asio::mutable_buffer target;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      if (boost::asio::mutable_buffer(*it).size() > 0) {
        target = *it;
        break;
      }
    }
    if (target.size() == 0) return this->finish(self, {});
    auto want = this->stream->read_step(target, this->n, this->ec);
    if (want == Want::kRead) return this->wait(self, want);
    this->finish(self, this->ec);
  }

  template <class Self>
  void deliver(Self& self) {
    self.complete(this->ec, this->n);
  }
};

// Encrypts `buffers` (once), then flushes unless corked; a shutdown queues close_notify first.
template <class Buffers>
struct TlsStream::WriteOp : OpBase<WriteOp<Buffers>> {
  enum class Kind { kWrite, kFlush, kShutdown };
  Buffers buffers;
  Kind kind = Kind::kWrite;
  bool started = false;

  template <class Self>
  void operator()(Self& self, boost::system::error_code wait_ec = {}) {
    if (this->done) return deliver(self);
    if (wait_ec) return this->finish(self, wait_ec);
    if (!started) {
      started = true;
      if (kind == Kind::kShutdown) this->stream->queue_close_notify();
      if (kind == Kind::kWrite) encrypt_all();
      if (this->ec) return this->finish(self, this->ec);
    }
    if (kind != Kind::kWrite || this->stream->must_flush()) {
      auto want = this->stream->flush_step(this->ec);
      if (want == Want::kWrite) return this->wait(self, want);
    }
    this->finish(self, this->ec);
  }

  // Beast's frame header and payload are joined first: one record per message.
  void encrypt_all() { this->n = this->stream->write_buffered(buffers, this->ec); }

  template <class Self>
  void deliver(Self& self) {
    self.complete(this->ec, this->n);
  }
};

struct TlsStream::HandshakeOp : OpBase<HandshakeOp> {
  handshake_type type;

  template <class Self>
  void operator()(Self& self, boost::system::error_code wait_ec = {}) {
    if (done) return deliver(self);
    if (wait_ec) return finish(self, wait_ec);
    auto want = stream->handshake_step(type, ec);
    if (want == Want::kNothing) return finish(self, ec);
    wait(self, want);
  }

  template <class Self>
  void deliver(Self& self) {
    self.complete(ec);
  }
};

template <class ConstBuffers>
std::size_t TlsStream::write_buffered(const ConstBuffers& buffers, boost::system::error_code& ec) {
  thread_local std::string joined;
  joined.clear();
  std::size_t n = 0;
  for (auto it = boost::asio::buffer_sequence_begin(buffers);
       it != boost::asio::buffer_sequence_end(buffers) && !ec; ++it) {
    boost::asio::const_buffer piece(*it);
    if (joined.size() + piece.size() <= kCorkLimit) {
      joined.append(static_cast<const char*>(piece.data()), piece.size());
      continue;
    }
    n += encrypt(boost::asio::buffer(joined), ec);
    joined.clear();
    if (!ec) n += encrypt(piece, ec);
  }
  if (!ec && !joined.empty()) n += encrypt(boost::asio::buffer(joined), ec);
  if (joined.capacity() > 4 * kCorkLimit) std::string().swap(joined);
  return n;
}

template <class Token>
auto TlsStream::async_handshake(handshake_type type, Token&& token) {
  return boost::asio::async_compose<Token, void(boost::system::error_code)>(
      HandshakeOp{{this}, type}, token, socket_);
}

template <class MutableBuffers, class Token>
auto TlsStream::async_read_some(const MutableBuffers& buffers, Token&& token) {
  return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
      ReadOp<MutableBuffers>{{this}, buffers}, token, socket_);
}

template <class ConstBuffers, class Token>
auto TlsStream::async_write_some(const ConstBuffers& buffers, Token&& token) {
  return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
      WriteOp<ConstBuffers>{{this}, buffers}, token, socket_);
}

template <class Token>
auto TlsStream::async_flush(Token&& token) {
  using Op = WriteOp<boost::asio::const_buffer>;
  return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
      Op{{this}, {}, Op::Kind::kFlush}, token, socket_);
}

template <class Token>
auto TlsStream::async_shutdown(Token&& token) {
  using Op = WriteOp<boost::asio::const_buffer>;
  return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
      Op{{this}, {}, Op::Kind::kShutdown}, token, socket_);
}

// ---- Beast's WebSocket teardown (found by argument-dependent lookup) -------------------------
// close_notify, then TCP's teardown (shutdown the send side, read to the end).

void teardown(boost::beast::role_type role, TlsStream& stream, boost::system::error_code& ec);

namespace detail {
struct TlsTeardownOp : boost::asio::coroutine {
  TlsStream& stream;
  boost::beast::role_type role;
  boost::system::error_code first{};

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t = 0) {
    BOOST_ASIO_CORO_REENTER(*this) {
      BOOST_ASIO_CORO_YIELD stream.async_shutdown(std::move(self));
      first = ec;
      BOOST_ASIO_CORO_YIELD {
        using boost::beast::websocket::async_teardown;
        async_teardown(role, stream.next_layer(), std::move(self));
      }
      self.complete(first ? first : ec);
    }
  }
};
}  // namespace detail

template <class Handler>
void async_teardown(boost::beast::role_type role, TlsStream& stream, Handler&& handler) {
  boost::asio::async_compose<Handler, void(boost::system::error_code)>(
      detail::TlsTeardownOp{{}, stream, role}, handler, stream.next_layer());
}

}  // namespace roam::net
