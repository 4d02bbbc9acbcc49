// One I/O lane: a non-blocking CUDA stream and a pinned staging buffer of
// two slots.  A request larger than a slot is pipelined: while the GPU
// copies one slot, the CPU fills or drains the other.  Lanes are created
// before serving and reused; nothing is allocated in the I/O path.
//
// When the SharedGpuDetector says so (always with share-gpu=yes, the
// default), every operation a request issues runs on a copy engine, which
// other programs' kernels cannot delay (copy_shape.hpp): small writes go
// as two-row copies, and zeroes are copied from a pinned buffer of zeroes.
// Otherwise the faster one-row copies and memsets, with share-gpu=auto
// timed so that a program that starts computing is noticed.
#pragma once

#include "cuda/cuda_driver.hpp"
#include "cuda/cuda_handles.hpp"
#include "store/shared_gpu.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace vram {

// Pinned host memory that holds zeroes and is never written: the source of
// every zeroing copy.  Shared by the lanes of a pool.
struct ZeroSource {
  const std::byte *data = nullptr;
  uint64_t size = 0;
};

class IoLane {
public:
  // Throws std::runtime_error with a message when a resource cannot be had.
  IoLane(const CudaDriver &driver, uint64_t piece_size, ZeroSource zeroes,
         SharedGpuDetector &shared);

  IoLane(const IoLane &) = delete;
  IoLane &operator=(const IoLane &) = delete;

  // Each returns CUDA_SUCCESS once the operation has completed on the GPU,
  // or the first error.  After an error the lane has been drained and can
  // be reused (unless the error is sticky).
  CUresult write(CUdeviceptr dst, const std::byte *src, uint64_t length);
  CUresult read(std::byte *dst, CUdeviceptr src, uint64_t length);
  CUresult zero(CUdeviceptr dst, uint64_t length);
  // A memset: some 50 times faster than zero() for large ranges (64 MiB
  // in 25 us on the H200, against 1.2 ms), but it waits for other
  // programs' time slices on the GPU.  zero() uses it alone on the GPU;
  // the store, to zero a whole eager allocation at start and shutdown.
  CUresult zero_bulk(CUdeviceptr dst, uint64_t length);

  CUstream stream() const { return stream_.get(); }

  // Zeroes up to this long, done with a memset alone on the GPU, are timed
  // (10 us for 2 MiB on the H200; longer ones take long on their own).
  static constexpr uint64_t zero_probe_max = 2 * 1024 * 1024;

private:
  std::byte *slot(uint64_t i) const;
  CUresult drain(CUresult first_error);
  // Queues the copy of `length` bytes to VRAM: one row, or with
  // `engines_only` in the shape copy_shape() gives.
  CUresult enqueue_write(CUdeviceptr dst, const std::byte *src, uint64_t length, bool engines_only);

  const CudaApi &cu_;
  uint64_t piece_;
  ZeroSource zeroes_;
  SharedGpuDetector &shared_;
  PinnedMemory staging_;
  Stream stream_;
  std::array<Event, 2> done_;
};

} // namespace vram
