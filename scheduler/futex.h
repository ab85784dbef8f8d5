// Thin wrappers over the Linux futex system call (process-private).
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::sched {

// Sleeps while *word == expected, until woken or `deadline_ns` (steady clock; INT64_MAX: never).
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int64_t deadline_ns);
// Wakes up to `count` threads sleeping on `word`.
void futex_wake(std::atomic<uint32_t>* word, int count);

}  // namespace weft::sched
