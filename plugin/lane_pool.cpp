#include "lane_pool.hpp"

namespace vram {

LanePool::LanePool(const CudaDriver &driver, unsigned count, uint64_t chunk_size)
{
  lanes_.reserve(count);
  idle_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    lanes_.push_back(std::make_unique<IoLane>(driver, chunk_size));
    idle_.push_back(lanes_.back().get());
  }
}

LanePool::Lease LanePool::acquire()
{
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty(); });
  IoLane *lane = idle_.back();
  idle_.pop_back();
  return Lease(*this, lane);
}

void LanePool::give_back(IoLane *lane)
{
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(lane);
  }
  available_.notify_one();
}

} // namespace vram
