// idle-release=: host memory kept for the next wake.  Creating a CUDA
// context allocates host memory (the driver's), and a wake may come with
// RAM running out, when an allocation waits in reclaim for swap that only
// the woken GPU can serve.  So what the context held is taken over at
// rest, as memory of our own, written (resident) and locked by the
// plugin's mlockall, and given back just before the context is created
// again: the driver's allocations then find free pages (first the ones
// this CPU just freed).  The process holds about as much RAM resting as
// awake, never more.
#pragma once

#include "store/host_buffer.hpp"

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vram {

class WakeReserve {
public:
  // The most kept, whatever the context held.
  static constexpr uint64_t max_bytes = uint64_t{1} << 30;

  // Keeps `bytes` (at most max_bytes, rounded down to pages); false, and
  // none kept, when the memory cannot be had.
  bool keep(uint64_t bytes);
  // Gives it back to the kernel.
  void release()
  {
    bytes_.store(0, std::memory_order_relaxed);
    buffer_.reset();
  }
  // What is kept now (read from any thread).
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  // This process's resident memory (/proc/self/statm), or nullopt.
  static std::optional<uint64_t> resident_bytes();
  // The resident pages in statm's text ("size resident shared ..."), in bytes.
  static std::optional<uint64_t> parse_statm_resident(std::string_view text, uint64_t page_size);

private:
  HostBuffer buffer_;
  std::atomic<uint64_t> bytes_{0};
};

} // namespace vram
