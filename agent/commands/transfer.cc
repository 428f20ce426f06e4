#include "agent/commands/transfer.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <ostream>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "agent/commands/progress.h"
#include "agent/commands/rate_credit.h"
#include "common/crypto/digest.h"
#include "common/session/stream_header.h"

namespace roam::agent {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// Bytes read, hashed and queued per turn of the event loop (pump()).
constexpr std::size_t kPumpBudget = 256 * 1024;
// File bytes read per refill of the send buffer.
constexpr std::size_t kReadChunk = 256 * 1024;
// Application error codes on a reset stream.
constexpr std::uint64_t kRefused = 2;
constexpr std::uint64_t kWriteFailed = 3;

double seconds_since(TimePoint t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// --- sender -----------------------------------------------------------------------------------

class SendApp final : public Application {
 public:
  SendApp(std::string path, std::uint64_t size, std::FILE* file, std::optional<double> rate_mbit,
          std::ostream& out, std::ostream& err)
      : path_(std::move(path)),
        size_(size),
        file_(file),
        rate_mbit_(rate_mbit),
        out_(out),
        err_(err),
        progress_(size) {}
  ~SendApp() override {
    if (file_) std::fclose(file_);
  }

  std::string name() const override { return "send"; }

  void connected(SessionContext& context) override {
    context_ = &context;
    auto id = context.quic().open_stream();
    if (!id) {
      err_ << "roam send: " << id.error() << "\n";
      context.stop(1, "cannot open a stream: " + id.error());
      return;
    }
    stream_ = *id;
    started_ = Clock::now();
    pending_ = session::encode(session::FileHeader{fs::path(path_).filename().string(), size_});
    header_size_ = pending_.size();
    if (rate_mbit_) {
      rate_timer_ = std::make_unique<boost::asio::steady_timer>(context.executor());
      rate_.emplace(*rate_mbit_, Clock::now(), static_cast<double>(header_size_));
      tick_rate();
    } else {
      pump();
    }
  }

  void stream_acked(quic::StreamId id) override {
    if (!stream_ || id != *stream_) return;
    progress_.update(acked(), note_);
    if (!rate_mbit_) pump();
  }

  void stream_data(quic::StreamId id, ByteSpan data, bool fin) override {
    if (!stream_ || id != *stream_ || done_) return;
    const auto status = reader_.feed(data);
    if (status == session::StreamHeaderReader::Status::kNeedMore) {
      if (fin) fail("the receiver closed the stream without a result");
      return;
    }
    if (status == session::StreamHeaderReader::Status::kError) {
      fail("bad result from the receiver: " + reader_.error());
      return;
    }
    const auto* result = std::get_if<session::FileResult>(&reader_.header());
    if (!result) {
      fail("the receiver answered something other than a file result");
      return;
    }
    done_ = true;
    progress_.update(size_, note_, true);
    progress_.finish();
    const double secs = seconds_since(started_);
    const bool ok = result->size == size_ && result->sha256 == sha256_hex_;
    out_ << "sent " << fs::path(path_).filename().string() << " " << size_ << " bytes sha256 "
         << sha256_hex_ << " in " << secs << " s ("
         << (secs > 0 ? static_cast<double>(size_) * 8 / secs / 1e6 : 0) << " Mbit/s); receiver "
         << (ok ? "verified"
                : "got a different file: " + std::to_string(result->size) + " bytes sha256 " +
                      result->sha256)
         << "\n";
    context_->events().write("transfer_complete",
                             {{"direction", "sent"},
                              {"name", fs::path(path_).filename().string()},
                              {"bytes", size_},
                              {"sha256", sha256_hex_},
                              {"seconds", secs},
                              {"verified", ok}},
                             Clock::now());
    context_->stop(ok ? 0 : 1, ok ? "done" : "checksum mismatch");
  }

  void stream_reset(quic::StreamId id, std::uint64_t code) override {
    if (stream_ && id == *stream_ && !done_) {
      fail("the receiver refused the file (error " + std::to_string(code) + ")");
    }
  }

  void path_switched(const PathSwitch& change) override {
    note_ = std::string(ice::to_string(change.to.kind));
  }

  int connection_closed(const std::string& reason) override {
    if (done_) return 0;
    progress_.finish();
    err_ << "roam send: the connection closed before the transfer completed: " << reason << "\n";
    return 1;
  }

  json::object status() const override {
    return {{"file", path_}, {"size", size_}, {"acked", acked()}, {"done", done_}};
  }

 private:
  std::uint64_t acked() const {
    if (!stream_ || !context_) return 0;
    const std::uint64_t unacked = context_->quic().unacked(*stream_);
    const std::uint64_t file_queued = written_ > header_size_ ? written_ - header_size_ : 0;
    return file_queued > unacked ? file_queued - unacked : 0;
  }

  // --rate: credit accrues every tick; pump() writes at most the credit.
  void tick_rate() {
    if (done_ || finished_) return;
    rate_->accrue(Clock::now());
    rate_->cap(kReadChunk);
    pump();
    rate_timer_->expires_after(kRateTick);
    rate_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) tick_rate();
    });
  }

  void pump() {
    if (!stream_ || done_ || finished_) return;
    QuicSession& quic = context_->quic();
    // Read and hash at most this much per turn: the first packets leave after the first chunk
    // instead of after a whole send buffer, and socket reads keep their turn.
    std::size_t budget = kPumpBudget;
    for (;;) {
      if (budget == 0) {
        boost::asio::post(context_->executor(), [this] { pump(); });
        break;
      }
      if (pending_offset_ == pending_.size()) {
        pending_.resize(kReadChunk);
        pending_offset_ = 0;
        const std::size_t n = std::fread(pending_.data(), 1, kReadChunk, file_);
        pending_.resize(n);
        if (n == 0) {
          if (std::ferror(file_)) {
            fail("reading " + path_ + " failed");
            return;
          }
          if (read_ != size_) {
            fail(path_ + " changed size while being sent");
            return;
          }
          sha256_hex_ = to_hex(hash_.finish());
          quic.finish(*stream_);
          finished_ = true;
          break;
        }
        read_ += n;
        hash_.update(ByteSpan(pending_.data(), n));
      }
      ByteSpan rest(pending_.data() + pending_offset_, pending_.size() - pending_offset_);
      if (rate_) rest = rest.first(std::min(rest.size(), rate_->available()));
      if (rest.empty()) break;
      const std::size_t n = quic.write(*stream_, rest);
      pending_offset_ += n;
      written_ += n;
      budget -= std::min(budget, n);
      if (rate_) rate_->spend(n);
      if (n < rest.size() || (rate_ && rate_->available() == 0)) break;  // acks / the tick resume
    }
    quic.flush();
  }

  void fail(const std::string& why) {
    if (done_) return;
    done_ = true;
    progress_.finish();
    err_ << "roam send: " << why << "\n";
    if (context_) context_->stop(1, why);
  }

  std::string path_;
  std::uint64_t size_;
  std::FILE* file_;
  std::optional<double> rate_mbit_;
  std::unique_ptr<boost::asio::steady_timer> rate_timer_;
  std::optional<RateCredit> rate_;
  std::ostream& out_;
  std::ostream& err_;
  ProgressBar progress_;
  SessionContext* context_ = nullptr;
  std::optional<quic::StreamId> stream_;
  Bytes pending_;
  std::size_t pending_offset_ = 0;
  std::size_t header_size_ = 0;
  std::uint64_t written_ = 0;  // header + file bytes accepted by the stream
  std::uint64_t read_ = 0;
  crypto::Sha256 hash_;
  std::string sha256_hex_;
  session::StreamHeaderReader reader_;
  bool finished_ = false;
  bool done_ = false;
  TimePoint started_{};
  std::string note_;
};

// --- receiver ---------------------------------------------------------------------------------

class RecvApp final : public Application {
 public:
  RecvApp(const RecvOptions& options, std::ostream& out, std::ostream& err)
      : options_(options), out_(out), err_(err) {}

  std::string name() const override { return "recv"; }
  void connected(SessionContext& context) override { context_ = &context; }

  void stream_opened(quic::StreamId id) override { incoming_[id]; }

  void stream_data(quic::StreamId id, ByteSpan data, bool fin) override {
    auto it = incoming_.find(id);
    if (it == incoming_.end()) return;
    Incoming& in = it->second;
    if (in.done) return;
    if (!in.file) {
      const auto status = in.reader.feed(data);
      if (status == session::StreamHeaderReader::Status::kNeedMore) return;
      if (status == session::StreamHeaderReader::Status::kError) {
        refuse(id, "bad stream header: " + in.reader.error());
        return;
      }
      const auto* header = std::get_if<session::FileHeader>(&in.reader.header());
      if (!header) {
        refuse(id, "roam recv takes files only");
        return;
      }
      if (!open(in, *header)) {
        refuse(id, "cannot create " + in.temp_path + " in " + options_.out_dir);
        return;
      }
      data = in.reader.rest();
    }
    if (!data.empty()) {
      if (in.received + data.size() > in.size ||
          std::fwrite(data.data(), 1, data.size(), in.file) != data.size()) {
        refuse(id,
               in.received + data.size() > in.size ? "more bytes than announced"
                                                   : "writing " + in.temp_path + " failed",
               kWriteFailed);
        return;
      }
      in.hash.update(data);
      in.received += data.size();
      in.progress->update(in.received, note_);
    }
    if (fin) complete(id, in);
  }

  void stream_acked(quic::StreamId id) override {
    auto it = incoming_.find(id);
    if (it == incoming_.end() || !it->second.done || !context_) return;
    if (options_.once && context_->quic().unacked(id) == 0 && completed_ > 0) {
      context_->stop(0, "received one file");
    }
  }

  void stream_reset(quic::StreamId id, std::uint64_t) override {
    auto it = incoming_.find(id);
    if (it == incoming_.end() || it->second.done) return;
    discard(it->second);
    err_ << "roam recv: the sender abandoned " << it->second.name << "\n";
    incoming_.erase(it);
  }

  void path_switched(const PathSwitch& change) override {
    note_ = std::string(ice::to_string(change.to.kind));
  }

  int connection_closed(const std::string& reason) override {
    bool partial = false;
    for (auto& [id, in] : incoming_) {
      if (in.file && !in.done) {
        discard(in);
        partial = true;
        err_ << "roam recv: " << in.name << " incomplete (" << in.received << " of " << in.size
             << " bytes): " << reason << "\n";
      }
    }
    incoming_.clear();
    return partial ? 1 : 0;
  }

  json::object status() const override {
    json::array files;
    for (const auto& [id, in] : incoming_) {
      files.push_back({{"stream", id},
                       {"name", in.name},
                       {"size", in.size},
                       {"received", in.received},
                       {"done", in.done}});
    }
    return {{"out", options_.out_dir}, {"completed", completed_}, {"files", std::move(files)}};
  }

  int completed() const { return completed_; }

 private:
  struct Incoming {
    session::StreamHeaderReader reader;
    std::FILE* file = nullptr;
    std::string name;
    std::string temp_path;
    std::uint64_t size = 0;
    std::uint64_t received = 0;
    crypto::Sha256 hash;
    std::unique_ptr<ProgressBar> progress;
    TimePoint started = Clock::now();
    bool done = false;
  };

  bool open(Incoming& in, const session::FileHeader& header) {
    in.name = header.name;
    in.size = header.size;
    in.temp_path = (fs::path(options_.out_dir) /
                    ("." + header.name + ".roam-partial-" + std::to_string(::getpid())))
                       .string();
    in.file = std::fopen(in.temp_path.c_str(), "wb");
    in.progress = std::make_unique<ProgressBar>(header.size);
    in.started = Clock::now();
    return in.file != nullptr;
  }

  // A free name in the output directory: NAME, else NAME.1, NAME.2, ...
  fs::path destination(const std::string& name) const {
    fs::path p = fs::path(options_.out_dir) / name;
    for (int i = 1; fs::exists(p); ++i)
      p = fs::path(options_.out_dir) / (name + "." + std::to_string(i));
    return p;
  }

  void complete(quic::StreamId id, Incoming& in) {
    in.done = true;
    in.progress->update(in.received, note_, true);
    in.progress->finish();
    std::fclose(in.file);
    in.file = nullptr;
    if (in.received != in.size) {
      std::remove(in.temp_path.c_str());
      err_ << "roam recv: " << in.name << " ended after " << in.received << " of " << in.size
           << " bytes\n";
      context_->quic().reset(id, kWriteFailed);
      return;
    }
    const fs::path final_path = destination(in.name);
    std::error_code ec;
    fs::rename(in.temp_path, final_path, ec);
    if (ec) {
      err_ << "roam recv: cannot rename " << in.temp_path << ": " << ec.message() << "\n";
      context_->quic().reset(id, kWriteFailed);
      return;
    }
    const std::string sha = to_hex(in.hash.finish());
    context_->quic().write(id, session::encode(session::FileResult{in.received, sha}));
    context_->quic().finish(id);
    context_->quic().flush();
    ++completed_;
    const double secs = seconds_since(in.started);
    out_ << "received " << in.name << " " << in.received << " bytes sha256 " << sha << " in "
         << secs << " s -> " << final_path.string() << "\n";
    out_.flush();
    context_->events().write("transfer_complete",
                             {{"direction", "received"},
                              {"name", in.name},
                              {"path", final_path.string()},
                              {"bytes", in.received},
                              {"sha256", sha},
                              {"seconds", secs}},
                             Clock::now());
  }

  void discard(Incoming& in) {
    if (in.file) {
      std::fclose(in.file);
      in.file = nullptr;
      std::remove(in.temp_path.c_str());
    }
  }

  void refuse(quic::StreamId id, const std::string& why, std::uint64_t code = kRefused) {
    err_ << "roam recv: stream " << id << ": " << why << "\n";
    auto it = incoming_.find(id);
    if (it != incoming_.end()) {
      discard(it->second);
      it->second.done = true;
    }
    if (context_) {
      context_->quic().reset(id, code);
      context_->quic().flush();
    }
  }

  const RecvOptions& options_;
  std::ostream& out_;
  std::ostream& err_;
  SessionContext* context_ = nullptr;
  std::map<quic::StreamId, Incoming> incoming_;
  int completed_ = 0;
  std::string note_;
};

}  // namespace

int run_send(const SendOptions& options, std::ostream& out, std::ostream& err) {
  if (!options.agent.connect_peer) {
    err << "roam send: --to PEER is required\n";
    return 2;
  }
  std::error_code ec;
  const auto size = fs::file_size(options.file, ec);
  if (ec || !fs::is_regular_file(options.file)) {
    err << "roam send: " << options.file << ": "
        << (ec ? ec.message() : std::string("not a regular file")) << "\n";
    return 2;
  }
  const session::FileHeader header{fs::path(options.file).filename().string(), size};
  if (auto valid = session::validate(session::StreamHeader{header}); !valid) {
    err << "roam send: " << options.file << ": " << valid.error()
        << " (rename it, or put it in an archive)\n";
    return 2;
  }
  std::FILE* file = std::fopen(options.file.c_str(), "rb");
  if (!file) {
    err << "roam send: " << options.file << ": cannot open it\n";
    return 2;
  }
  SendApp app(options.file, size, file, options.rate_mbit, out, err);
  return run_agent(options.agent, app, err);
}

int run_recv(const RecvOptions& options, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (!fs::is_directory(options.out_dir, ec)) {
    err << "roam recv: --out " << options.out_dir << ": not a directory\n";
    return 2;
  }
  // Without --once, session after session: each run serves one peer session.
  AgentOptions agent = options.agent;
  agent.connect_timeout = Duration::zero();
  for (;;) {
    RecvApp app(options, out, err);
    const int status = run_agent(agent, app, err);
    if (options.once || status == 2 || status >= 128) return status;
    if (status != 0 && app.completed() == 0) return status;
  }
}

}  // namespace roam::agent
