// roam-lab-impair: delay, jitter, loss and rate for one NFQUEUE queue, in user space (the lab
// kernel has no sch_netem). The lab sends an interface's packets to the queue with an
// iptables mangle rule; this program holds each verdict until the packet's departure time.
// SIGUSR1 writes the counters to --stats; SIGTERM/SIGINT release every held packet and exit.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <queue>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "impair_model.h"
#include "nfqueue.h"

namespace {

using roam::lab::Nanos;

Nanos now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Nanos{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Held {
  Nanos departure;
  std::uint64_t order;  // arrival order breaks ties: equal departures leave FIFO
  std::uint32_t id;
  bool operator>(const Held& o) const {
    return departure != o.departure ? departure > o.departure : order > o.order;
  }
};

struct Counters {
  std::uint64_t received = 0, delivered = 0, lost = 0, over_limit = 0, bytes = 0, max_held = 0;
};

void write_stats(const std::string& path, int queue, const Counters& c, std::size_t held) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f,
                 "{\"queue\": %d, \"received\": %llu, \"delivered\": %llu, \"dropped_loss\": %llu, "
                 "\"dropped_limit\": %llu, \"bytes\": %llu, \"held\": %zu, \"max_held\": %llu}\n",
                 queue, (unsigned long long)c.received, (unsigned long long)c.delivered,
                 (unsigned long long)c.lost, (unsigned long long)c.over_limit,
                 (unsigned long long)c.bytes, held, (unsigned long long)c.max_held);
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"roam-lab-impair: user-space delay/jitter/loss/rate on an NFQUEUE queue"};
  int queue_num = 0;
  double delay_ms = 0, jitter_ms = 0, loss = 0;
  std::uint64_t rate_kbit = 0, seed = 1;
  std::size_t limit = 1000;
  bool reorder = false;
  std::string stats;
  app.add_option("--queue", queue_num, "NFQUEUE queue number")
      ->required()
      ->check(CLI::Range(0, 65535));
  app.add_option("--delay-ms", delay_ms, "one-way delay")->check(CLI::Range(0.0, 60000.0));
  app.add_option("--jitter-ms", jitter_ms, "uniform +/- jitter")->check(CLI::Range(0.0, 60000.0));
  app.add_option("--loss", loss, "loss probability")->check(CLI::Range(0.0, 0.999));
  app.add_option("--rate-kbit", rate_kbit, "serialization rate (0: unlimited)");
  app.add_option("--limit", limit, "packets queued for the rate before tail drop")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--seed", seed, "random seed (loss, jitter)");
  app.add_flag("--reorder", reorder, "let jittered packets overtake each other");
  app.add_option("--stats", stats, "JSON counters file (written on SIGUSR1 and at exit)");
  CLI11_PARSE(app, argc, argv);

  const roam::lab::ImpairConfig config{.delay = static_cast<Nanos>(delay_ms * 1e6),
                                       .jitter = static_cast<Nanos>(jitter_ms * 1e6),
                                       .loss = loss,
                                       .rate_bps = rate_kbit * 1000,
                                       .limit = limit,
                                       .reorder = reorder,
                                       .seed = seed};
  roam::lab::ImpairModel model(config);

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGUSR1})
    sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  const int sfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);

  try {
    roam::lab::NfQueue queue(static_cast<std::uint16_t>(queue_num), 1u << 16);
    std::priority_queue<Held, std::vector<Held>, std::greater<>> held;
    Counters counters;
    std::uint64_t order = 0;
    std::printf("ready\n");
    std::fflush(stdout);
    for (bool running = true; running;) {
      int timeout_ms = -1;
      timespec timeout{};
      if (!held.empty()) {
        const Nanos wait = std::max<Nanos>(0, held.top().departure - now_ns());
        timeout = {static_cast<time_t>(wait / 1'000'000'000),
                   static_cast<long>(wait % 1'000'000'000)};
        timeout_ms = 0;
      }
      pollfd fds[2] = {{queue.fd(), POLLIN, 0}, {sfd, POLLIN, 0}};
      ppoll(fds, 2, timeout_ms < 0 ? nullptr : &timeout, nullptr);
      if (fds[1].revents & POLLIN) {
        signalfd_siginfo si{};
        while (read(sfd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGUSR1)
            write_stats(stats, queue_num, counters, held.size());
          else
            running = false;
        }
      }
      if (fds[0].revents & POLLIN) {
        queue.drain([&](const roam::lab::QueuedPacket& p) {
          ++counters.received;
          counters.bytes += p.length;
          const auto d = model.on_packet(now_ns(), p.length);
          if (d.fate == roam::lab::Fate::kDeliver) {
            held.push({d.departure, order++, p.id});
            counters.max_held = std::max<std::uint64_t>(counters.max_held, held.size());
          } else {
            ++(d.fate == roam::lab::Fate::kLost ? counters.lost : counters.over_limit);
            queue.verdict(p.id, false);
          }
        });
      }
      const Nanos now = now_ns();
      while (!held.empty() && (held.top().departure <= now || !running)) {
        queue.verdict(held.top().id, true);
        held.pop();
        ++counters.delivered;
      }
      queue.flush();
    }
    write_stats(stats, queue_num, counters, 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "roam-lab-impair: %s\n", e.what());
    return 1;
  }
  return 0;
}
