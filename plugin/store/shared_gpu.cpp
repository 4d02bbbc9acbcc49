#include "store/shared_gpu.hpp"

#include <algorithm>

namespace vram {

SharedGpuDetector::SharedGpuDetector(ShareGpu mode, Settings settings)
  : mode_(mode), settings_(settings), hold_(settings.first_hold.count())
{
}

void SharedGpuDetector::observe(Clock::duration elapsed, Clock::time_point now)
{
  if (mode_ != ShareGpu::automatic) return;
  const int64_t t = ticks(now);
  if (elapsed <= settings_.slow) {
    if (in_run_.load(std::memory_order_relaxed)) in_run_.store(false, std::memory_order_relaxed);
    // A fast try after a hold: the other program is gone.
    if (t >= shared_until_.load(std::memory_order_relaxed) &&
        hold_.load(std::memory_order_relaxed) != settings_.first_hold.count())
      hold_.store(settings_.first_hold.count(), std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(mutex_);
  // Requests still in flight when the hold began: already counted.
  if (t < shared_until_.load(std::memory_order_relaxed)) return;
  const int64_t issued = t - elapsed.count();
  if (!in_run_.load(std::memory_order_relaxed)) {
    in_run_.store(true, std::memory_order_relaxed);
    run_start_ = issued;
    run_count_ = 1;
    return;
  }
  run_start_ = std::min(run_start_, issued);
  if (++run_count_ < settings_.count || t - run_start_ < settings_.span.count()) return;
  in_run_.store(false, std::memory_order_relaxed);
  const int64_t hold = hold_.load(std::memory_order_relaxed);
  shared_until_.store(t + hold, std::memory_order_relaxed);
  hold_.store(std::min<int64_t>(2 * hold, settings_.max_hold.count()), std::memory_order_relaxed);
  detections_.fetch_add(1, std::memory_order_relaxed);
}

} // namespace vram
