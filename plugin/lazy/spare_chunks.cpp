#include "lazy/spare_chunks.hpp"

namespace vram {
namespace {

// Room for the spares and for a burst of chunks given back by trims that
// the thread has not released yet.
size_t capacity_for(size_t target) { return target == 0 ? 0 : 2 * target + 32; }

} // namespace

SpareChunks::SpareChunks(size_t target, Hooks hooks, std::chrono::milliseconds retry)
  : target_(target), hooks_(std::move(hooks)), retry_(retry)
{
  spares_.reserve(capacity_for(target_));
  if (target_ > 0) thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

SpareChunks::~SpareChunks()
{
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  for (const Handle h : spares_)
    hooks_.release(h);
  spares_.clear();
  count_.store(0, std::memory_order_relaxed);
}

std::optional<SpareChunks::Handle> SpareChunks::take()
{
  std::lock_guard lock(mutex_);
  if (spares_.empty()) return std::nullopt;
  const Handle h = spares_.back();
  spares_.pop_back();
  count_.fetch_sub(1, std::memory_order_relaxed);
  wake_.notify_one();
  return h;
}

bool SpareChunks::give(Handle handle)
{
  std::lock_guard lock(mutex_);
  if (spares_.size() >= spares_.capacity()) return false;
  spares_.push_back(handle);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (spares_.size() > target_) wake_.notify_one();
  return true;
}

void SpareChunks::run(std::stop_token stop)
{
  if (hooks_.thread_start) hooks_.thread_start();
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    if (spares_.size() > target_) {
      // Trims gave back more than we keep: release one (outside the lock,
      // so the I/O path never waits for the driver here).
      const Handle h = spares_.back();
      spares_.pop_back();
      lock.unlock();
      hooks_.release(h);
      count_.fetch_sub(1, std::memory_order_relaxed);
      lock.lock();
      continue;
    }
    if (spares_.size() < target_) {
      lock.unlock();
      Handle h = 0;
      const CUresult r = hooks_.create(h);
      if (r == CUDA_SUCCESS) count_.fetch_add(1, std::memory_order_relaxed);
      lock.lock();
      if (r == CUDA_SUCCESS) {
        if (spares_.size() < spares_.capacity()) {
          spares_.push_back(h);
        } else { // filled by gives meanwhile: cannot happen below target, but never leak
          lock.unlock();
          hooks_.release(h);
          count_.fetch_sub(1, std::memory_order_relaxed);
          lock.lock();
        }
        continue;
      }
      // No VRAM now (another program, or reserve=), or the GPU failed: the
      // I/O path sees the same and says so.  Try again later.
      wake_.wait_for(lock, stop, retry_, [] { return false; });
      continue;
    }
    wake_.wait(lock, stop, [&] { return spares_.size() != target_; });
  }
}

} // namespace vram
