#include "store/lane_pool.hpp"

#include "status/request_board.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace vram {

LanePool::LanePool(const CudaDriver &driver, unsigned count, uint64_t piece_size, ShareGpu share)
  : shared_(share)
{
  const CudaApi &cu = driver.api();
  void *host = nullptr;
  if (const CUresult r = cu.MemHostAlloc(&host, zero_source_bytes, 0); r != CUDA_SUCCESS)
    throw std::runtime_error("cannot allocate a pinned buffer of zeroes (" +
                             std::to_string(zero_source_bytes) + " bytes): " + driver.describe(r));
  zeroes_ = PinnedMemory(&cu, host);
  std::memset(host, 0, zero_source_bytes);
  const ZeroSource zeroes{static_cast<const std::byte *>(host), zero_source_bytes};
  lanes_.reserve(count);
  idle_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    lanes_.push_back(std::make_unique<IoLane>(driver, piece_size, zeroes, shared_));
    idle_.push_back(i);
  }
}

LanePool::Lease LanePool::acquire()
{
  std::unique_lock lock(mutex_);
  if (idle_.empty()) {
    request_trace::phase(RequestPhase::lane_wait);
    available_.wait(lock, [this] { return !idle_.empty(); });
  }
  const unsigned index = idle_.back();
  idle_.pop_back();
  lock.unlock();
  request_trace::phase(RequestPhase::lane, index);
  return Lease(*this, index);
}

void LanePool::give_back(unsigned index)
{
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(index);
  }
  available_.notify_one();
}

} // namespace vram
