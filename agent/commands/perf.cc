#include "agent/commands/perf.h"

#include <cstdio>
#include <ostream>

#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "agent/commands/rate_credit.h"
#include "agent/paths/path_events.h"
#include "common/session/stream_header.h"

namespace roam::agent {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::size_t kChunk = 64 * 1024;
constexpr Duration kInterval = seconds(1);
// A switch's blackout is measured only if data resumes within this time (else the run ended).
constexpr Duration kMaxBlackout = seconds(30);

double ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
double secs(Duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string describe_path(const std::optional<ice::PairInfo>& pair, const std::string& ifname) {
  if (!pair) return "-";
  return std::string(ice::to_string(pair->kind)) + " " + (ifname.empty() ? "?" : ifname) + " " +
         pair->local_address.to_string() + " -> " + pair->remote.to_string();
}

class PerfApp final : public Application {
 public:
  PerfApp(const PerfOptions& options, std::ostream& out, std::ostream& err)
      : options_(options), out_(out), err_(err), chunk_(kChunk) {
    for (std::size_t i = 0; i < chunk_.size(); ++i)
      chunk_[i] = static_cast<std::byte>(i * 131 + 7);
  }

  std::string name() const override { return "perf"; }

  void connected(SessionContext& context) override {
    context_ = &context;
    interval_timer_ = std::make_unique<asio::steady_timer>(context.executor());
    if (options_.listen) return;
    auto id = context.quic().open_stream();
    if (!id) {
      context.stop(1, "cannot open a stream: " + id.error());
      return;
    }
    stream_ = *id;
    session::PerfHeader header;
    header.duration_ms = static_cast<std::uint32_t>(options_.duration_s * 1000);
    if (options_.rate_mbit) header.rate_bps = static_cast<std::uint64_t>(*options_.rate_mbit * 1e6);
    context.quic().write(*stream_, session::encode(header));
    start_ = Clock::now();
    end_timer_ = std::make_unique<asio::steady_timer>(context.executor());
    end_timer_->expires_after(
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(options_.duration_s)));
    end_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (ec || sending_done_) return;
      sending_done_ = true;
      context_->quic().finish(*stream_);
      context_->quic().flush();
    });
    if (options_.rate_mbit) {
      rate_.emplace(*options_.rate_mbit, start_);
      rate_timer_ = std::make_unique<asio::steady_timer>(context.executor());
      tick_rate();
    } else {
      pump();
    }
    tick_interval();
  }

  void stream_opened(quic::StreamId id) override {
    if (options_.listen && !stream_) stream_ = id;
  }

  void stream_data(quic::StreamId id, ByteSpan data, bool fin) override {
    if (!stream_ || id != *stream_) return;
    if (options_.listen) {
      receive(data, fin);
      return;
    }
    // Sender: the receiver's result.
    const auto status = reader_.feed(data);
    if (status == session::StreamHeaderReader::Status::kNeedMore) return;
    if (status == session::StreamHeaderReader::Status::kError ||
        !std::holds_alternative<session::PerfResult>(reader_.header())) {
      err_ << "roam perf: bad result from the receiver\n";
      context_->stop(1, "bad perf result");
      return;
    }
    summary(std::get<session::PerfResult>(reader_.header()));
    done_ = true;
    context_->stop(0, "perf done");
  }

  void stream_acked(quic::StreamId id) override {
    if (!stream_ || id != *stream_) return;
    if (!options_.listen && !options_.rate_mbit) pump();
    // The receiver ends once the sender has its result (closing earlier would lose it).
    if (options_.listen && result_sent_ && context_->quic().unacked(id) == 0) {
      context_->stop(0, "perf done");
    }
  }

  void path_switched(const PathSwitch& change) override {
    switches_.push_back({change, last_data_, std::nullopt, false});
  }

  int connection_closed(const std::string& reason) override {
    if (done_ || result_sent_) return 0;
    err_ << "roam perf: connection closed: " << reason << "\n";
    return 1;
  }

  json::object status() const override {
    return {{"role", options_.listen ? "receiver" : "sender"}, {"bytes", total_bytes()}};
  }

 private:
  struct Switch {
    PathSwitch change;
    TimePoint last_before;
    std::optional<Duration> blackout;
    bool resolved = false;
  };

  std::uint64_t total_bytes() const {
    if (options_.listen) return received_;
    const std::uint64_t unacked = stream_ && context_ ? context_->quic().unacked(*stream_) : 0;
    return written_ > unacked ? written_ - unacked : 0;
  }

  void pump() {
    if (sending_done_) return;
    for (int i = 0; i < 64; ++i) {
      const std::size_t n = context_->quic().write(*stream_, chunk_);
      written_ += n;
      if (n < chunk_.size()) break;
    }
    context_->quic().flush();
  }

  void tick_rate() {
    if (sending_done_) return;
    rate_->accrue(Clock::now());
    while (const std::size_t available = rate_->available()) {
      const std::size_t want = std::min(chunk_.size(), available);
      const std::size_t n = context_->quic().write(*stream_, ByteSpan(chunk_.data(), want));
      written_ += n;
      rate_->spend(n);
      if (n < want) {
        rate_->cap(kChunk);
        break;
      }
    }
    context_->quic().flush();
    rate_timer_->expires_after(kRateTick);
    rate_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) tick_rate();
    });
  }

  void receive(ByteSpan data, bool fin) {
    const TimePoint now = Clock::now();
    if (!header_) {
      const auto status = reader_.feed(data);
      if (status == session::StreamHeaderReader::Status::kNeedMore) return;
      if (status == session::StreamHeaderReader::Status::kError ||
          !std::holds_alternative<session::PerfHeader>(reader_.header())) {
        err_ << "roam perf: the peer did not open a perf stream\n";
        context_->stop(1, "not a perf stream");
        return;
      }
      header_ = std::get<session::PerfHeader>(reader_.header());
      data = reader_.rest();
      start_ = now;
      last_data_ = now;
      tick_interval();
    }
    if (!data.empty()) {
      if (received_ > 0) max_gap_ = std::max(max_gap_, now - last_data_);
      // One blackout per silence: a burst of switches without data between them shares it, and
      // is reported once (on its first switch).
      bool first = true;
      for (auto& s : switches_) {
        if (s.resolved) continue;
        s.resolved = true;
        if (!first || s.last_before == TimePoint{} || now - s.last_before >= kMaxBlackout) continue;
        first = false;
        s.blackout = now - s.last_before;
        line("switch", s);
      }
      received_ += data.size();
      last_data_ = now;
    }
    if (fin && !result_sent_) {
      session::PerfResult result;
      result.bytes = received_;
      result.duration_ms = static_cast<std::uint64_t>(ms(now - start_));
      result.max_gap_ms = ms(max_gap_);
      for (const auto& s : switches_) {
        if (s.blackout && result.switch_gaps_ms.size() < session::kMaxSwitchGaps) {
          result.switch_gaps_ms.push_back(ms(*s.blackout));
        }
      }
      context_->quic().write(*stream_, session::encode(result));
      context_->quic().finish(*stream_);
      context_->quic().flush();
      result_sent_ = true;
      interval_timer_->cancel();
      summary(result);
      done_ = true;
    }
  }

  void line(const char* what, const Switch& s) {
    const auto& c = s.change;
    if (options_.json) {
      json::object o{
          {"event", what},
          {"t_s", secs(c.at - start_)},
          {"reason", c.reason},
          {"from", c.from.id ? describe_path(c.from, context_->quic().interface_of(c.from)) : "-"},
          {"to", describe_path(c.to, context_->quic().interface_of(c.to))},
          {"blackout_ms", s.blackout ? ms(*s.blackout) : -1.0}};
      out_ << json::serialize(o) << "\n";
    } else {
      char text[64];
      std::snprintf(text, sizeof text, "%7.2f s  path switch (", secs(c.at - start_));
      out_ << text << c.reason << "): "
           << (c.from.id ? describe_path(c.from, context_->quic().interface_of(c.from)) : "-")
           << "  =>  " << describe_path(c.to, context_->quic().interface_of(c.to)) << "  blackout "
           << (s.blackout ? std::to_string(ms(*s.blackout)) + " ms" : std::string("?")) << "\n";
    }
    out_.flush();
  }

  void tick_interval() {
    interval_timer_->expires_after(kInterval);
    interval_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (ec || done_) return;
      const TimePoint now = Clock::now();
      const std::uint64_t total = total_bytes();
      const double mbit = static_cast<double>(total - last_total_) * 8 / secs(kInterval) / 1e6;
      last_total_ = total;
      auto stats = context_->quic().stats();
      auto pair = context_->quic().active_pair();
      const double rtt = stats ? ms(stats->smoothed_rtt) : 0;
      if (options_.json) {
        out_ << json::serialize(json::object{
                    {"event", "interval"},
                    {"t_s", secs(now - start_)},
                    {"mbit_s", mbit},
                    {"rtt_ms", rtt},
                    {"path",
                     describe_path(pair, pair ? context_->quic().interface_of(*pair) : "")}})
             << "\n";
      } else {
        char text[96];
        std::snprintf(text, sizeof text, "%7.2f s  %9.2f Mbit/s  rtt %6.1f ms  ",
                      secs(now - start_), mbit, rtt);
        out_ << text << describe_path(pair, pair ? context_->quic().interface_of(*pair) : "")
             << "\n";
      }
      out_.flush();
      context_->events().write(
          "perf_interval",
          {{"mbit_s", mbit}, {"rtt_ms", rtt}, {"kind", pair ? ice::to_string(pair->kind) : "none"}},
          now);
      tick_interval();
    });
  }

  void summary(const session::PerfResult& r) {
    const double seconds = static_cast<double>(r.duration_ms) / 1000;
    const double mbit = seconds > 0 ? static_cast<double>(r.bytes) * 8 / seconds / 1e6 : 0;
    if (options_.json) {
      json::array gaps;
      for (double g : r.switch_gaps_ms)
        gaps.push_back(g);
      out_ << json::serialize(json::object{{"event", "summary"},
                                           {"bytes", r.bytes},
                                           {"seconds", seconds},
                                           {"mbit_s", mbit},
                                           {"max_gap_ms", r.max_gap_ms},
                                           {"switch_gaps_ms", std::move(gaps)}})
           << "\n";
    } else {
      out_ << "total " << r.bytes << " bytes in " << seconds << " s: " << mbit
           << " Mbit/s; longest receive gap " << r.max_gap_ms << " ms; blackouts around "
           << r.switch_gaps_ms.size() << " path switches:";
      for (double g : r.switch_gaps_ms)
        out_ << " " << g << " ms";
      out_ << "\n";
    }
    out_.flush();
  }

  const PerfOptions& options_;
  std::ostream& out_;
  std::ostream& err_;
  Bytes chunk_;
  SessionContext* context_ = nullptr;
  std::optional<quic::StreamId> stream_;
  session::StreamHeaderReader reader_;
  std::optional<session::PerfHeader> header_;
  std::unique_ptr<asio::steady_timer> interval_timer_, end_timer_, rate_timer_;
  TimePoint start_{}, last_data_{};
  Duration max_gap_{};
  std::optional<RateCredit> rate_;
  std::uint64_t written_ = 0, received_ = 0, last_total_ = 0;
  std::vector<Switch> switches_;
  bool sending_done_ = false;
  bool result_sent_ = false;
  bool done_ = false;
};

}  // namespace

int run_perf(const PerfOptions& options, std::ostream& out, std::ostream& err) {
  if (options.listen == options.agent.connect_peer.has_value()) {
    err << "roam perf: give either --to PEER or --listen\n";
    return 2;
  }
  if (options.rate_mbit && *options.rate_mbit <= 0) {
    err << "roam perf: --rate must be positive\n";
    return 2;
  }
  AgentOptions agent = options.agent;
  if (options.listen) agent.connect_timeout = Duration::zero();
  for (;;) {
    PerfApp app(options, out, err);
    const int status = run_agent(agent, app, err);
    if (!options.listen || options.once || status != 0) return status;
  }
}

}  // namespace roam::agent
