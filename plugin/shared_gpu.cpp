#include "shared_gpu.hpp"

#include <algorithm>
#include <utility>

namespace vram {

SharedGpuDetector::SharedGpuDetector(ShareGpu mode, Settings settings)
  : mode_(mode), settings_(settings), hold_(settings.first_hold.count())
{
}

void SharedGpuDetector::observe(Clock::duration elapsed, Clock::time_point now)
{
  if (mode_ != ShareGpu::automatic)
    return;
  const int64_t t = ticks(now);
  if (elapsed <= settings_.slow) {
    // A fast try after a hold: the other program is gone.
    if (t >= shared_until_.load(std::memory_order_relaxed) &&
        hold_.load(std::memory_order_relaxed) != settings_.first_hold.count())
      hold_.store(settings_.first_hold.count(), std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(mutex_);
  // Every request in flight when the other program started sees it: one
  // detection, not one per request.
  if (t < shared_until_.load(std::memory_order_relaxed))
    return;
  const int64_t previous = std::exchange(last_slow_, t);
  if (t - previous > settings_.confirm.count())
    return;
  last_slow_ = INT64_MIN / 2; // the next detection needs two slow ones again
  const int64_t hold = hold_.load(std::memory_order_relaxed);
  shared_until_.store(t + hold, std::memory_order_relaxed);
  hold_.store(std::min<int64_t>(2 * hold, settings_.max_hold.count()), std::memory_order_relaxed);
  detections_.fetch_add(1, std::memory_order_relaxed);
}

} // namespace vram
