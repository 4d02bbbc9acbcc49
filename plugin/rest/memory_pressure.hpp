// Whether memory is calm enough for the GPU to rest (idle-release=), and
// a watch that says at once when it stops being so.  Resting is safe only
// while nothing swaps: a swap-in that finds the GPU resting waits for it
// to wake, and waking takes host memory (the CUDA context's).
//
// Sources: the kernel's pressure stall information for memory
// (/proc/pressure/memory: the share of time some task waited for memory)
// and MemAvailable in /proc/meminfo.  Both are read into a buffer on the
// stack from files opened once, so a look allocates nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace vram {

struct MemorySnapshot {
  std::optional<double> some_avg10; // % of the last 10 s some task stalled on memory
  std::optional<uint64_t> available_kb;
  std::optional<uint64_t> total_kb;
};

// "some avg10=0.00 avg60=..." -> 0.00; nullopt when the text has none.
std::optional<double> parse_psi_some_avg10(std::string_view text);
// The value of "KEY:   123 kB" in /proc/meminfo text.
std::optional<uint64_t> parse_meminfo_kb(std::string_view text, std::string_view key);

// Calm: no stall on memory to speak of in the last 10 s, and at least a
// tenth of RAM available.  What cannot be read does not count against it
// (a kernel without PSI), but a snapshot with nothing at all is not calm.
bool is_calm(const MemorySnapshot &m);
constexpr double calm_some_avg10 = 0.10;
constexpr uint64_t calm_available_share = 10; // percent of MemTotal

class MemoryProbe {
public:
  explicit MemoryProbe(std::string psi_path = "/proc/pressure/memory",
                       std::string meminfo_path = "/proc/meminfo");
  ~MemoryProbe();
  MemoryProbe(const MemoryProbe &) = delete;
  MemoryProbe &operator=(const MemoryProbe &) = delete;

  MemorySnapshot read() const;
  bool calm() const { return is_calm(read()); }

private:
  int psi_fd_ = -1;
  int meminfo_fd_ = -1;
};

// A PSI trigger on memory: `on_pressure` runs (on the watch's thread)
// each time some task has stalled on memory for `stall_us` within a
// window of `window_us` (without CAP_SYS_RESOURCE, the kernel's rule,
// within the next whole 2 s and for as large a share of it).  Where the
// kernel offers no trigger (no PSI, or not permitted), armed() is false
// and why_not() says why; the caller then relies on polling MemoryProbe.
class PressureWatch {
public:
  PressureWatch(std::function<void()> on_pressure, uint64_t stall_us = 50000,
                uint64_t window_us = 1000000, std::string psi_path = "/proc/pressure/memory");
  ~PressureWatch();
  PressureWatch(const PressureWatch &) = delete;
  PressureWatch &operator=(const PressureWatch &) = delete;

  bool armed() const { return trigger_fd_ >= 0; }
  const std::string &why_not() const { return why_not_; }
  // The trigger written ("some 50000 1000000"), armed or not.
  const std::string &trigger() const { return trigger_; }

private:
  void run(std::stop_token stop);

  std::function<void()> on_pressure_;
  int trigger_fd_ = -1;
  int stop_fd_ = -1; // an eventfd the destructor writes
  std::string why_not_;
  std::string trigger_;
  std::jthread thread_; // last
};

} // namespace vram
