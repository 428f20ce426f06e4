#include "common/net/tls_stream.h"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <vector>

#include <boost/asio/ssl/error.hpp>

namespace roam::net {
namespace {

// A TLS record is at most 2^14 bytes of plaintext plus 256 of expansion (RFC 8446 §5.2) and a
// 5-byte header: one recv() of this size takes a whole record, usually several.
constexpr std::size_t kReadAhead = 16 * 1024 + 256 + 5;
// Buffers above this are given back once drained, so a burst does not pin memory on an idle
// connection.
constexpr std::size_t kKeepCapacity = 4 * 1024;

class TlsCategory : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int code) const override {
    std::array<char, WOLFSSL_MAX_ERROR_SZ> text{};
    wolfSSL_ERR_error_string_n(static_cast<unsigned long>(code), text.data(), text.size());
    return text.data();
  }
};

void release_if_large(std::string& buffer) {
  if (buffer.capacity() > kKeepCapacity) std::string().swap(buffer);
}

// Hands the all-zero pages inside a live malloc() block back to the kernel. Heap memory is
// private anonymous memory: a page dropped with MADV_DONTNEED reads as zeros again, so the
// block's contents do not change; a later write simply faults in a fresh page.
//
// Why: Debian's wolfSSL 5.5.4 (SESSION_CERTS + WOLFSSL_ALT_CERT_CHAINS) gives every connection a
// 37,512-byte WOLFSSL_SESSION, zeroed at wolfSSL_new(), most of it two certificate-chain arrays
// that stay zero on a server that asks for no client certificate: about 32 KiB of roam-
// signaling's per-connection memory, resident for the life of every idle connection.
// Requires wolfSSL's default allocator (glibc malloc, for malloc_usable_size); roam never
// installs another (wolfSSL_SetAllocators).
std::size_t release_zero_pages(void* block) {
  if (block == nullptr) return 0;
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(block);
  const auto end = begin + ::malloc_usable_size(block);
  std::size_t released = 0;
  for (auto at = (begin + page - 1) / page * page; at + page <= end; at += page) {
    const auto* words = reinterpret_cast<const std::uint64_t*>(at);
    bool zero = true;
    for (std::size_t i = 0; i < page / sizeof(std::uint64_t) && zero; ++i)
      zero = words[i] == 0;
    if (zero && ::madvise(reinterpret_cast<void*>(at), page, MADV_DONTNEED) == 0) {
      released += page;
    }
  }
  return released;
}

}  // namespace

const boost::system::error_category& tls_category() {
  static const TlsCategory category;
  return category;
}

void TlsStream::FreeSsl::operator()(WOLFSSL* ssl) const {
  wolfSSL_free(ssl);
}

TlsStream::TlsStream(next_layer_type socket, boost::asio::ssl::context& context)
    : socket_(std::move(socket)) {
  set_up(context);
}

TlsStream::TlsStream(const executor_type& executor, boost::asio::ssl::context& context)
    : socket_(executor) {
  set_up(context);
}

TlsStream::~TlsStream() = default;

void TlsStream::set_up(boost::asio::ssl::context& context) {
  ssl_.reset(wolfSSL_new(context.native_handle()));
  if (!ssl_) throw std::runtime_error("wolfSSL_new failed (out of memory?)");
  wolfSSL_SSLSetIORecv(ssl_.get(), &TlsStream::on_receive);
  wolfSSL_SSLSetIOSend(ssl_.get(), &TlsStream::on_send);
  wolfSSL_SetIOReadCtx(ssl_.get(), this);
  wolfSSL_SetIOWriteCtx(ssl_.get(), this);
  wolfSSL_set_ex_data(ssl_.get(), 0, this);
}

void TlsStream::set_verify_mode(boost::asio::ssl::verify_mode mode) {
  wolfSSL_set_verify(ssl_.get(), mode, verify_ ? &TlsStream::on_verify : nullptr);
}

void TlsStream::set_verify_callback(VerifyCallback callback) {
  verify_ = std::make_unique<VerifyCallback>(std::move(callback));
  wolfSSL_set_verify(ssl_.get(), wolfSSL_get_verify_mode(ssl_.get()), &TlsStream::on_verify);
}

int TlsStream::on_verify(int preverified, WOLFSSL_X509_STORE_CTX* context) {
  auto* ssl = static_cast<WOLFSSL*>(
      wolfSSL_X509_STORE_CTX_get_ex_data(context, wolfSSL_get_ex_data_X509_STORE_CTX_idx()));
  if (!ssl) return 0;
  auto* self = static_cast<TlsStream*>(wolfSSL_get_ex_data(ssl, 0));
  if (!self || !self->verify_) return preverified;
  boost::asio::ssl::verify_context verify_context(context);
  return (*self->verify_)(preverified != 0, verify_context) ? 1 : 0;
}

bool TlsStream::stamp_arrivals() {
  const int on = 1;
  if (::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
    return false;
  }
  stamp_arrivals_ = true;
  return true;
}

ssize_t TlsStream::receive_from_socket(char* buffer, std::size_t size) {
  if (!stamp_arrivals_) return ::recv(socket_.native_handle(), buffer, size, 0);
  iovec data{buffer, size};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control.data();
  message.msg_controllen = control.size();
  const ssize_t got = ::recvmsg(socket_.native_handle(), &message, 0);
  if (got <= 0) return got;
  // No stamp (the kernel turns stamping on for everyone a moment after the first socket asks)
  // must not leave an older one standing for these bytes.
  last_arrival_ns_ = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec at{};
      std::memcpy(&at, CMSG_DATA(c), sizeof at);
      last_arrival_ns_ = std::int64_t{at.tv_sec} * 1'000'000'000 + at.tv_nsec;
    }
  }
  return got;
}

int TlsStream::on_receive(WOLFSSL*, char* buffer, int size, void* opaque) {
  auto* self = static_cast<TlsStream*>(opaque);
  const auto wanted = static_cast<std::size_t>(size);
  if (self->in_used_ < self->in_.size()) {
    const auto n = std::min(wanted, self->in_.size() - self->in_used_);
    std::memcpy(buffer, self->in_.data() + self->in_used_, n);
    self->in_used_ += n;
    if (self->in_used_ == self->in_.size()) {
      self->in_.clear();
      self->in_used_ = 0;
      release_if_large(self->in_);
    }
    return static_cast<int>(n);
  }
  if (self->socket_drained_) return WOLFSSL_CBIO_ERR_WANT_READ;
  // On the heap: a 17 KiB thread_local array would come out of every thread's stack (static
  // TLS), and libcivetweb's small-stack workers overflow with it.
  thread_local std::vector<char> ahead;
  if (ahead.empty()) ahead.resize(kReadAhead);
  const bool direct = wanted >= ahead.size();
  const ssize_t got =
      self->receive_from_socket(direct ? buffer : ahead.data(), direct ? wanted : ahead.size());
  if (got > 0) {
    ++self->receives_;
    self->socket_drained_ = static_cast<std::size_t>(got) < (direct ? wanted : ahead.size());
    if (direct) return static_cast<int>(got);
    const auto n = std::min(wanted, static_cast<std::size_t>(got));
    std::memcpy(buffer, ahead.data(), n);
    self->in_.assign(ahead.data() + n, static_cast<std::size_t>(got) - n);
    return static_cast<int>(n);
  }
  if (got == 0) {
    self->peer_ended_tcp_ = true;
    return WOLFSSL_CBIO_ERR_CONN_CLOSE;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return WOLFSSL_CBIO_ERR_WANT_READ;
  if (errno == EINTR) return WOLFSSL_CBIO_ERR_ISR;
  self->socket_errno_ = errno;
  return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

// Records only collect here; flush_step() hands them to TCP.
int TlsStream::on_send(WOLFSSL*, char* buffer, int size, void* opaque) {
  auto* self = static_cast<TlsStream*>(opaque);
  self->out_.append(buffer, static_cast<std::size_t>(size));
  return size;
}

TlsStream::Want TlsStream::classify(int result, boost::system::error_code& ec) {
  const int error = wolfSSL_get_error(ssl_.get(), result);
  if (error == WOLFSSL_ERROR_WANT_READ) return Want::kRead;
  if (error == WOLFSSL_ERROR_WANT_WRITE) return Want::kWrite;
  if (error == WOLFSSL_ERROR_ZERO_RETURN) {
    ec = boost::asio::error::eof;
  } else if (socket_errno_ != 0) {
    ec = boost::system::error_code(socket_errno_, boost::system::system_category());
  } else if (peer_ended_tcp_) {
    ec = boost::asio::ssl::error::stream_truncated;
  } else {
    ec = boost::system::error_code(error, tls_category());
  }
  return Want::kNothing;
}

TlsStream::Want TlsStream::handshake_step(handshake_type type, boost::system::error_code& ec) {
  if (!socket_.native_non_blocking()) socket_.native_non_blocking(true, ec);
  if (ec) return Want::kNothing;
  const int result =
      type == handshake_type::client ? wolfSSL_connect(ssl_.get()) : wolfSSL_accept(ssl_.get());
  // Whatever the step produced goes out first: the peer cannot answer what it has not seen.
  if (flush_step(ec) == Want::kWrite) return Want::kWrite;
  if (ec) return Want::kNothing;
  if (result == WOLFSSL_SUCCESS) {
    // The session and connection objects are at their final size now; an idle connection
    // keeps only their non-zero pages. Server side only: there wolfSSL_get_session() is the
    // connection's own malloc()ed session; a client's may point into wolfSSL's session cache.
    if (type == handshake_type::server) {
      release_zero_pages(wolfSSL_get_session(ssl_.get()));
      release_zero_pages(ssl_.get());
    }
    return Want::kNothing;
  }
  auto want = classify(result, ec);
  return want == Want::kWrite ? Want::kRead : want;  // output is flushed: only input can be due
}

TlsStream::Want TlsStream::read_step(boost::asio::mutable_buffer buffer, std::size_t& n,
                                     boost::system::error_code& ec) {
  if (!socket_.native_non_blocking()) socket_.native_non_blocking(true, ec);
  if (ec) return Want::kNothing;
  const int size = static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX));
  const int result = wolfSSL_read(ssl_.get(), buffer.data(), size);
  // A read can produce output (an alert, a TLS 1.3 KeyUpdate answer): send it when the socket
  // takes it now; otherwise the next write flushes it.
  if (buffered_output() > 0 && !corked_) {
    boost::system::error_code ignored;
    flush_step(ignored);
  }
  if (result > 0) {
    n = static_cast<std::size_t>(result);
    return Want::kNothing;
  }
  auto want = classify(result, ec);
  return want == Want::kWrite ? Want::kRead : want;
}

std::size_t TlsStream::encrypt(boost::asio::const_buffer data, boost::system::error_code& ec) {
  std::size_t done = 0;
  while (done < data.size()) {
    const int size = static_cast<int>(std::min<std::size_t>(data.size() - done, INT_MAX));
    const int result =
        wolfSSL_write(ssl_.get(), static_cast<const char*>(data.data()) + done, size);
    if (result <= 0) {
      // on_send never refuses, so wanting I/O here means a renegotiation-like state we do not
      // drive from a write; report it rather than spin.
      if (classify(result, ec) != Want::kNothing || !ec) {
        ec = boost::system::error_code(wolfSSL_get_error(ssl_.get(), result), tls_category());
      }
      return done;
    }
    done += static_cast<std::size_t>(result);
  }
  return done;
}

TlsStream::Want TlsStream::flush_step(boost::system::error_code& ec) {
  while (out_sent_ < out_.size()) {
    const ssize_t sent = ::send(socket_.native_handle(), out_.data() + out_sent_,
                                out_.size() - out_sent_, MSG_NOSIGNAL);
    if (sent > 0) {
      out_sent_ += static_cast<std::size_t>(sent);
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Want::kWrite;
    if (sent < 0 && errno == EINTR) continue;
    socket_errno_ = sent < 0 ? errno : EPIPE;
    ec = boost::system::error_code(socket_errno_, boost::system::system_category());
    return Want::kNothing;
  }
  out_.clear();
  out_sent_ = 0;
  release_if_large(out_);
  return Want::kNothing;
}

void TlsStream::queue_close_notify() {
  // Puts close_notify into the output buffer (wolfSSL_shutdown returns "not done" while the
  // peer's close_notify is outstanding; we do not wait for it).
  (void)wolfSSL_shutdown(ssl_.get());
}

void teardown(boost::beast::role_type role, TlsStream& stream, boost::system::error_code& ec) {
  // Beast calls this only for a synchronous close(), which roam never does: TCP's teardown
  // without close_notify (the peer sees stream_truncated, as after any abrupt close).
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

}  // namespace roam::net
