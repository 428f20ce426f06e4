// What waking a sleeping thread costs on this machine: a reference for the benchmarks' CPU per
// message, which under a paced load is mostly wake-ups (one when a message arrives at a server
// thread that was waiting in epoll, one for each thread it wakes in turn).
//
// Two threads ping-pong one byte over two pipes; each blocks in read() until the other writes.
// Across two CPUs every hop is a wake-up of an idle CPU (an inter-processor interrupt, and on a
// virtual machine an exit to the hypervisor unless the guest polls before halting); on one CPU
// it is a plain context switch. The difference between the two is what the machine charges for
// crossing CPUs.
#pragma once

#include <optional>
#include <string>

namespace roam::test {

struct WakeupCost {
  // CPU time (user + system, both threads) per hop, that is per one-byte write that wakes the
  // other thread plus the read it was blocked in; and the median time per hop.
  double cpu_us = 0;
  double latency_us = 0;
};

struct WakeupReference {
  WakeupCost across_cpus;
  WakeupCost same_cpu;
  std::string cpus;  // the two CPUs used, "0,1"
};

// Runs `round_trips` round trips (two hops each) across the first and last CPU this process may
// use, then as many on the first CPU alone. nullopt (with *why) when there is only one CPU or a
// pipe or thread cannot be made.
std::optional<WakeupReference> measure_wakeup_cost(int round_trips, std::string* why);

}  // namespace roam::test
