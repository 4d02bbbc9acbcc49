// One I/O lane: a non-blocking CUDA stream and a staging buffer of two
// slots, pinned (registered with the context) for the GPU's copies.  A request larger than a slot
// is pipelined: while the GPU copies one slot, the CPU fills or drains the other.  Lanes are
// created before serving and reused; nothing is allocated in the I/O path.
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
#include "store/host_buffer.hpp"
#include "store/shared_gpu.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vram {

// Host memory, pinned, that holds zeroes and is never written: the source
// of every zeroing copy.  Shared by the lanes of a pool.
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

  // idle-release=: detach() gives back what the CUDA context owns (the
  // stream, its events, the staging buffer's registration) and keeps the
  // staging buffer itself; attach() takes them again with the context
  // current ("" or why not; on failure the lane stays detached).  Only
  // while no request uses the lane.
  std::string attach();
  void detach();

  // Each returns CUDA_SUCCESS once the operation has completed on the GPU,
  // or the first error.  After an error the lane has been drained and can
  // be reused (unless the error is sticky).
  CUresult write(CUdeviceptr dst, const std::byte *src, uint64_t length);
  CUresult read(std::byte *dst, CUdeviceptr src, uint64_t length);

  // Many small copies (each at most a piece) as one: `get(i)` gives the
  // i-th of `n` as {device address, host address, length}.  They go
  // through the staging buffer back to back, every copy of a batch queued
  // before one wait; in the copy shapes write() uses.  For compress=,
  // whose requests are a compressed page per 4 KiB.
  struct Copy {
    CUdeviceptr device;
    std::byte *host;
    uint64_t length;
  };
  template <typename Get> CUresult write_gather(size_t n, Get get);
  template <typename Get> CUresult read_scatter(size_t n, Get get);
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

  const CudaDriver &driver_;
  const CudaApi &cu_;
  uint64_t piece_;
  ZeroSource zeroes_;
  SharedGpuDetector &shared_;
  HostBuffer staging_host_;  // two slots of piece_ bytes; outlives the context
  HostRegistration staging_; // staging_host_ pinned for the context's DMA
  Stream stream_;
  std::array<Event, 2> done_;
};

template <typename Get> CUresult IoLane::write_gather(size_t n, Get get)
{
  const bool engines_only = shared_.copy_engines_only(SharedGpuDetector::Clock::now());
  std::byte *const staging = slot(0); // both slots, back to back
  uint64_t used = 0;
  for (size_t i = 0; i < n; ++i) {
    const Copy c = get(i);
    if (used + c.length > 2 * piece_) {
      // The staging buffer is full: its copies must be done before it is
      // filled again.
      if (const CUresult r = cu_.StreamSynchronize(stream_.get()); r != CUDA_SUCCESS)
        return drain(r);
      used = 0;
    }
    std::memcpy(staging + used, c.host, c.length);
    if (const CUresult r = enqueue_write(c.device, staging + used, c.length, engines_only);
        r != CUDA_SUCCESS)
      return drain(r);
    used += c.length;
  }
  const CUresult r = cu_.StreamSynchronize(stream_.get());
  return r == CUDA_SUCCESS ? r : drain(r);
}

template <typename Get> CUresult IoLane::read_scatter(size_t n, Get get)
{
  std::byte *const staging = slot(0);
  size_t from = 0; // the first copy of the batch in the staging buffer
  uint64_t used = 0;
  const auto land = [&](size_t to) {
    if (const CUresult r = cu_.StreamSynchronize(stream_.get()); r != CUDA_SUCCESS) return drain(r);
    uint64_t at = 0;
    for (size_t i = from; i < to; ++i) {
      const Copy c = get(i);
      std::memcpy(c.host, staging + at, c.length);
      at += c.length;
    }
    from = to;
    used = 0;
    return CUDA_SUCCESS;
  };
  for (size_t i = 0; i < n; ++i) {
    const Copy c = get(i);
    if (used + c.length > 2 * piece_)
      if (const CUresult r = land(i); r != CUDA_SUCCESS) return r;
    if (const CUresult r = cu_.MemcpyDtoHAsync(staging + used, c.device, c.length, stream_.get());
        r != CUDA_SUCCESS)
      return drain(r);
    used += c.length;
  }
  return land(n);
}

} // namespace vram
