#include "store/lane_pool.hpp"

#include "status/request_board.hpp"

#include <new>
#include <stdexcept>
#include <string>

namespace vram {

LanePool::LanePool(const CudaDriver &driver, unsigned count, uint64_t piece_size, ShareGpu share)
  : driver_(driver), shared_(share)
{
  try {
    zeroes_host_ = HostBuffer(zero_source_bytes); // zeroed
  } catch (const std::bad_alloc &) {
    throw std::runtime_error("cannot allocate a buffer of zeroes (" +
                             std::to_string(zero_source_bytes) + " bytes)");
  }
  if (const std::string why = register_zeroes(); !why.empty()) throw std::runtime_error(why);
  const ZeroSource zeroes{zeroes_host_.data(), zero_source_bytes};
  lanes_.reserve(count);
  idle_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    lanes_.push_back(std::make_unique<IoLane>(driver, piece_size, zeroes, shared_));
    idle_.push_back(i);
  }
}

std::string LanePool::register_zeroes()
{
  const CudaApi &cu = driver_.api();
  if (const CUresult r = cu.MemHostRegister(zeroes_host_.data(), zeroes_host_.size(), 0);
      r != CUDA_SUCCESS)
    return "cannot pin the buffer of zeroes (" + std::to_string(zeroes_host_.size()) +
           " bytes): " + driver_.describe(r);
  zeroes_ = HostRegistration(&cu, zeroes_host_.data());
  return {};
}

std::string LanePool::attach()
{
  if (std::string why = register_zeroes(); !why.empty()) return why;
  for (auto &lane : lanes_)
    if (std::string why = lane->attach(); !why.empty()) {
      detach();
      return why;
    }
  return {};
}

void LanePool::detach()
{
  for (auto &lane : lanes_)
    lane->detach();
  zeroes_.reset();
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
