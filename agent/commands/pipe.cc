#include "agent/commands/pipe.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ostream>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include "common/session/stream_header.h"

namespace roam::agent {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

class PipeApp final : public Application {
 public:
  PipeApp(bool listen, std::ostream& err) : listen_(listen), err_(err) {}

  std::string name() const override { return "pipe"; }

  void connected(SessionContext& context) override {
    context_ = &context;
    if (listen_) return;  // the peer opens the stream
    auto id = context.quic().open_stream();
    if (!id) {
      context.stop(1, "cannot open a stream: " + id.error());
      return;
    }
    stream_ = *id;
    header_done_ = true;
    context.quic().write(*stream_, session::encode(session::PipeHeader{}));
    start_input();
  }

  void stream_opened(quic::StreamId id) override {
    if (listen_ && !stream_) stream_ = id;
  }

  void stream_data(quic::StreamId id, ByteSpan data, bool fin) override {
    if (!stream_ || id != *stream_) return;
    if (!header_done_) {
      const auto status = reader_.feed(data);
      if (status == session::StreamHeaderReader::Status::kNeedMore) return;
      if (status == session::StreamHeaderReader::Status::kError ||
          !std::holds_alternative<session::PipeHeader>(reader_.header())) {
        err_ << "roam pipe: the peer did not open a pipe stream\n";
        context_->stop(1, "not a pipe stream");
        return;
      }
      header_done_ = true;
      data = reader_.rest();
      start_input();
    }
    if (!data.empty()) {
      if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) {
        context_->stop(1, "writing stdout failed");
        return;
      }
      std::fflush(stdout);
    }
    if (fin) {
      peer_done_ = true;
      maybe_done();
    }
  }

  void stream_acked(quic::StreamId id) override {
    if (!stream_ || id != *stream_) return;
    write_pending();
    maybe_done();
  }

  void stream_reset(quic::StreamId id, std::uint64_t code) override {
    if (stream_ && id == *stream_)
      context_->stop(1, "peer reset the pipe (" + std::to_string(code) + ")");
  }

  int connection_closed(const std::string& reason) override {
    if (input_done_ && peer_done_) return 0;
    // The peer ended cleanly once its data was acknowledged (so delivered here); its FIN may
    // not have arrived before its CONNECTION_CLOSE.
    if (input_done_ && reason.find("(application error 0)") != std::string::npos) return 0;
    err_ << "roam pipe: connection closed: " << reason << "\n";
    return 1;
  }

 private:
  void start_input() {
    struct stat st {};
    regular_ = ::fstat(0, &st) == 0 && S_ISREG(st.st_mode);
    if (!regular_) {
      input_ = std::make_unique<asio::posix::stream_descriptor>(context_->executor(), ::dup(0));
    }
    read_more();
  }

  void read_more() {
    if (input_done_ || !pending_.empty() || reading_) return;
    if (regular_) {
      pending_.resize(kChunk);
      const ssize_t n = ::read(0, pending_.data(), kChunk);
      pending_.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      if (n <= 0) {
        end_input();
        return;
      }
      write_pending();
      return;
    }
    reading_ = true;
    buffer_.resize(kChunk);
    input_->async_read_some(asio::buffer(buffer_),
                            [this](const boost::system::error_code& ec, std::size_t n) {
                              reading_ = false;
                              if (ec) {
                                end_input();
                                return;
                              }
                              pending_.assign(buffer_.begin(), buffer_.begin() + n);
                              write_pending();
                            });
  }

  void write_pending() {
    if (!stream_ || pending_.empty()) {
      if (!input_done_ && header_done_) read_more();
      return;
    }
    const std::size_t n = context_->quic().write(*stream_, pending_);
    pending_.erase(pending_.begin(), pending_.begin() + n);
    context_->quic().flush();
    if (pending_.empty()) {
      // Let the event loop breathe between regular-file reads.
      asio::post(context_->executor(), [this] { read_more(); });
    }
  }

  void end_input() {
    if (input_done_) return;
    input_done_ = true;
    context_->quic().finish(*stream_);
    context_->quic().flush();
    maybe_done();
  }

  void maybe_done() {
    if (input_done_ && peer_done_ && context_->quic().unacked(*stream_) == 0) {
      context_->stop(0, "pipe done");
    }
  }

  bool listen_;
  std::ostream& err_;
  SessionContext* context_ = nullptr;
  std::optional<quic::StreamId> stream_;
  session::StreamHeaderReader reader_;
  bool header_done_ = false;
  bool regular_ = false;
  bool reading_ = false;
  bool input_done_ = false;
  bool peer_done_ = false;
  std::unique_ptr<asio::posix::stream_descriptor> input_;
  Bytes buffer_;
  Bytes pending_;
};

}  // namespace

int run_pipe(const PipeOptions& options, std::ostream& err) {
  if (!options.listen && !options.agent.connect_peer) {
    err << "roam pipe: --to PEER or --listen is required\n";
    return 2;
  }
  if (options.listen && options.agent.connect_peer) {
    err << "roam pipe: --to and --listen exclude each other\n";
    return 2;
  }
  AgentOptions agent = options.agent;
  if (options.listen) agent.connect_timeout = Duration::zero();
  PipeApp app(options.listen, err);
  return run_agent(agent, app, err);
}

}  // namespace roam::agent
