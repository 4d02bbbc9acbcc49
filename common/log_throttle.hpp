// Rate limit for messages that can repeat once per request: after a GPU
// failure every request fails, and a swap device sees thousands a second.
// The first occurrence is always let through, then at most one per
// interval, each saying how many were held back since the last.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace vram {

class LogThrottle {
public:
  using Clock = std::chrono::steady_clock;

  explicit LogThrottle(Clock::duration interval) : interval_(interval) {}

  // nullopt: stay quiet this time.  Otherwise log now; the value is how
  // many occurrences were held back since the last message.
  std::optional<uint64_t> admit(Clock::time_point now = Clock::now());

  // " (N similar messages suppressed)" for N > 0, else "".
  static std::string suppressed_note(uint64_t suppressed);

private:
  const Clock::duration interval_;
  std::mutex mutex_;
  bool logged_once_ = false;
  Clock::time_point last_{};
  uint64_t held_back_ = 0;
};

} // namespace vram
