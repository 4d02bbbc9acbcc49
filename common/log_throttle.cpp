#include "log_throttle.hpp"

#include "logging.hpp"

namespace vram {

std::optional<uint64_t> LogThrottle::admit(Clock::time_point now)
{
  std::lock_guard lock(mutex_);
  if (logged_once_ && now - last_ < interval_) {
    ++held_back_;
    return std::nullopt;
  }
  logged_once_ = true;
  last_ = now;
  const uint64_t held = held_back_;
  held_back_ = 0;
  return held;
}

std::string LogThrottle::suppressed_note(uint64_t suppressed)
{
  if (suppressed == 0) return {};
  return strformat(" (%llu similar message%s suppressed)",
                   static_cast<unsigned long long>(suppressed), suppressed == 1 ? "" : "s");
}

} // namespace vram
