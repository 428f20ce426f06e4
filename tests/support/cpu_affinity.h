// Which CPUs the benchmarks run on: the process's allowed set, and pinning the calling thread.
#pragma once

#include <vector>

namespace roam::test {

// The CPUs this process may run on (sched_getaffinity), in ascending order; empty when the set
// cannot be read.
std::vector<int> allowed_cpus();

// Restricts the calling thread to `cpus` (threads it starts later inherit that); false, with
// errno set, when the kernel refuses.
bool pin_calling_thread(const std::vector<int>& cpus);

}  // namespace roam::test
