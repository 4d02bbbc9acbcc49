// allocation=lazy: the export's whole address range is reserved at start
// (CUDA virtual memory management: address space only, no VRAM), and
// physical VRAM is mapped into it a chunk at a time, on the first write
// into the chunk, and given back once the chunk holds no data.
// ChunkResidency decides when; this file does the CUDA calls.
#pragma once

#include "chunk_residency.hpp"
#include "cuda_driver.hpp"
#include "io_lane.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vram {

class LazyVram {
public:
  struct Settings {
    uint64_t size = 0;      // the export
    uint64_t chunk = 0;     // lazy-chunk=; rounded up to the driver's granularity
    uint64_t headroom = 0;  // VRAM left free for other programs when mapping
  };

  // The calling thread has `device`'s context current.  Returns nullptr
  // and sets `why_not` when the driver or GPU lacks virtual memory
  // management (the caller falls back to eager).  Throws
  // std::runtime_error for other failures.
  static std::unique_ptr<LazyVram> open(const CudaDriver &driver, CUdevice device,
                                        const Settings &settings, std::string &why_not);

  // Unmaps and releases what is still mapped, then frees the address
  // range.  The owner zeroes mapped chunks first (release_all).
  ~LazyVram();

  LazyVram(const LazyVram &) = delete;
  LazyVram &operator=(const LazyVram &) = delete;

  CUdeviceptr base() const { return base_; }
  uint64_t chunk_size() const { return residency_.chunk_size(); }
  uint64_t held() const { return residency_.mapped_chunks() * residency_.chunk_size(); }
  ChunkResidency &residency() { return residency_; }

  // Maps VRAM under `chunk` and zeroes it through `lane`.
  // CUDA_ERROR_OUT_OF_MEMORY when the GPU has no VRAM for it, or would be
  // left with less than the headroom; then `shortage` says how much is free.
  CUresult map(size_t chunk, IoLane &lane, std::string &shortage);
  // Unmaps `chunk` and releases its VRAM.
  CUresult unmap(size_t chunk);

private:
  LazyVram(const CudaDriver &driver, CUdevice device, const Settings &settings, uint64_t chunk,
           CUdeviceptr base, uint64_t reserved);

  const CudaApi &cu_;
  CUdevice device_;
  uint64_t headroom_;
  CUdeviceptr base_;
  uint64_t reserved_; // bytes of address space
  ChunkResidency residency_;
  std::vector<CUmemGenericAllocationHandle> handles_; // per chunk; guarded by its lock
};

} // namespace vram
