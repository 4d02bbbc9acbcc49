#include "store/io_lane.hpp"

#include "cuda/cuda_error.hpp"
#include "store/copy_shape.hpp"
#include "store/piece_plan.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace vram {

IoLane::IoLane(const CudaDriver &driver, uint64_t piece_size, ZeroSource zeroes,
               SharedGpuDetector &shared)
  : driver_(driver), cu_(driver.api()), piece_(piece_size), zeroes_(zeroes), shared_(shared)
{
  if (!zeroes_.data || zeroes_.size < copy_engine_min_1d)
    throw std::runtime_error("the lane's source of zeroes is missing or too small");
  try {
    staging_host_ = HostBuffer(2 * piece_);
  } catch (const std::bad_alloc &) {
    throw std::runtime_error("cannot allocate a staging buffer of " + std::to_string(2 * piece_) +
                             " bytes");
  }
  if (const std::string why = attach(); !why.empty()) throw std::runtime_error(why);
}

std::string IoLane::attach()
{
  CUresult r = cu_.MemHostRegister(staging_host_.data(), staging_host_.size(), 0);
  if (r != CUDA_SUCCESS)
    return "cannot pin a staging buffer of " + std::to_string(staging_host_.size()) +
           " bytes: " + driver_.describe(r);
  staging_ = HostRegistration(&cu_, staging_host_.data());
  CUstream s = nullptr;
  if ((r = cu_.StreamCreate(&s, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS) {
    detach();
    return "cannot create a CUDA stream: " + driver_.describe(r);
  }
  stream_ = Stream(&cu_, s);
  for (Event &e : done_) {
    CUevent ev = nullptr;
    if ((r = cu_.EventCreate(&ev, CU_EVENT_DISABLE_TIMING)) != CUDA_SUCCESS) {
      detach();
      return "cannot create a CUDA event: " + driver_.describe(r);
    }
    e = Event(&cu_, ev);
  }
  return {};
}

void IoLane::detach()
{
  for (Event &e : done_)
    e.reset();
  stream_.reset();
  staging_.reset();
}

std::byte *IoLane::slot(uint64_t i) const { return staging_host_.data() + (i % 2) * piece_; }

// Waits for everything queued on the stream, so that no copy is still
// reading or writing a staging slot when the lane is handed to the next
// request.  A sticky error seen while draining wins over the first one.
CUresult IoLane::drain(CUresult first_error)
{
  const CUresult r = cu_.StreamSynchronize(stream_.get());
  if (r != CUDA_SUCCESS && is_sticky(r) && !is_sticky(first_error)) return r;
  return first_error;
}

CUresult IoLane::enqueue_write(CUdeviceptr dst, const std::byte *src, uint64_t length,
                               bool engines_only)
{
  if (!engines_only) return cu_.MemcpyHtoDAsync(dst, src, length, stream_.get());
  for (const CopyStep &step : copy_shape(length)) {
    CUresult r;
    if (step.rows == 1) {
      r = cu_.MemcpyHtoDAsync(dst + step.offset, src + step.offset, step.length(), stream_.get());
    } else {
      CUDA_MEMCPY2D copy{};
      copy.srcMemoryType = CU_MEMORYTYPE_HOST;
      copy.srcHost = src + step.offset;
      copy.srcPitch = step.width;
      copy.dstMemoryType = CU_MEMORYTYPE_DEVICE;
      copy.dstDevice = dst + step.offset;
      copy.dstPitch = step.width;
      copy.WidthInBytes = step.width;
      copy.Height = step.rows;
      r = cu_.Memcpy2DAsync(&copy, stream_.get());
    }
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

CUresult IoLane::write(CUdeviceptr dst, const std::byte *src, uint64_t length)
{
  const auto issued = SharedGpuDetector::Clock::now();
  const bool engines_only = shared_.copy_engines_only(issued);
  const PiecePlan plan(length, piece_);
  const uint64_t n = plan.count();
  CUresult r;
  for (uint64_t i = 0; i < n; ++i) {
    Piece c = plan[i];
    // A last piece of one byte has no copy-engine shape: it takes the byte
    // before it along, written again with the same value after the piece
    // that wrote it (one stream: in order).
    if (c.length == 1 && c.offset > 0) {
      c.offset -= 1;
      c.length = 2;
    }
    // Slot i%2 was last used by piece i-2: wait until the GPU has read it.
    if (i >= 2 && (r = cu_.EventSynchronize(done_[i % 2].get())) != CUDA_SUCCESS) return drain(r);
    std::memcpy(slot(i), src + c.offset, c.length);
    if ((r = enqueue_write(dst + c.offset, slot(i), c.length, engines_only)) != CUDA_SUCCESS)
      return drain(r);
    if (n > 2 && (r = cu_.EventRecord(done_[i % 2].get(), stream_.get())) != CUDA_SUCCESS)
      return drain(r);
  }
  // The write is acknowledged only once it is in VRAM.
  if ((r = cu_.StreamSynchronize(stream_.get())) != CUDA_SUCCESS) return drain(r);
  // A small write on the fast path is the probe: one that waited tells of
  // another program's time slice.
  if (!engines_only && length < copy_engine_min_1d) {
    const auto done = SharedGpuDetector::Clock::now();
    shared_.observe(done - issued, done);
  }
  return CUDA_SUCCESS;
}

CUresult IoLane::read(std::byte *dst, CUdeviceptr src, uint64_t length)
{
  const PiecePlan plan(length, piece_);
  const uint64_t n = plan.count();
  CUresult r;
  auto enqueue = [&](uint64_t i) {
    const Piece c = plan[i];
    CUresult e = cu_.MemcpyDtoHAsync(slot(i), src + c.offset, c.length, stream_.get());
    if (e == CUDA_SUCCESS) e = cu_.EventRecord(done_[i % 2].get(), stream_.get());
    return e;
  };

  if (n == 1) {
    if ((r = cu_.MemcpyDtoHAsync(slot(0), src, length, stream_.get())) != CUDA_SUCCESS ||
        (r = cu_.StreamSynchronize(stream_.get())) != CUDA_SUCCESS)
      return drain(r);
    std::memcpy(dst, slot(0), length);
    return CUDA_SUCCESS;
  }

  // Keep both slots in flight: the GPU fills one while we drain the other.
  for (uint64_t i = 0; i < n && i < 2; ++i)
    if ((r = enqueue(i)) != CUDA_SUCCESS) return drain(r);
  for (uint64_t i = 0; i < n; ++i) {
    if ((r = cu_.EventSynchronize(done_[i % 2].get())) != CUDA_SUCCESS) return drain(r);
    const Piece c = plan[i];
    std::memcpy(dst + c.offset, slot(i), c.length);
    if (i + 2 < n && (r = enqueue(i + 2)) != CUDA_SUCCESS) return drain(r);
  }
  // Costs nothing when all went well, and catches an error the driver
  // reports only at stream level: never hand out data we cannot vouch for.
  if ((r = cu_.StreamSynchronize(stream_.get())) != CUDA_SUCCESS) return drain(r);
  return CUDA_SUCCESS;
}

// Copy engines only (share-gpu=yes, or auto beside another program):
// copies from the pinned zeroes, all queued at once (the source never
// changes), one synchronisation.  Otherwise a memset, timed like a small
// write up to a lazy chunk's size (one that waited tells of another
// program too).
CUresult IoLane::zero(CUdeviceptr dst, uint64_t length)
{
  const auto issued = SharedGpuDetector::Clock::now();
  if (!shared_.copy_engines_only(issued)) {
    const CUresult r = zero_bulk(dst, length);
    if (r == CUDA_SUCCESS && length <= zero_probe_max) {
      const auto done = SharedGpuDetector::Clock::now();
      shared_.observe(done - issued, done);
    }
    return r;
  }
  for (uint64_t done = 0; done < length;) {
    const uint64_t n = std::min(zeroes_.size, length - done);
    if (const CUresult r = enqueue_write(dst + done, zeroes_.data, n, true); r != CUDA_SUCCESS)
      return drain(r);
    done += n;
  }
  const CUresult r = cu_.StreamSynchronize(stream_.get());
  return r == CUDA_SUCCESS ? r : drain(r);
}

CUresult IoLane::zero_bulk(CUdeviceptr dst, uint64_t length)
{
  CUresult r = cu_.MemsetD8Async(dst, 0, length, stream_.get());
  if (r == CUDA_SUCCESS) r = cu_.StreamSynchronize(stream_.get());
  return r == CUDA_SUCCESS ? r : drain(r);
}

} // namespace vram
