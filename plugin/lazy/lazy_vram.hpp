// allocation=lazy: the export's whole address range is reserved at start
// (CUDA virtual memory management: address space only, no VRAM), and
// physical VRAM is mapped into it a chunk at a time, on the first write
// into the chunk, and given back once the chunk holds no data.
// ChunkResidency decides when; this file does the CUDA calls.
#pragma once

#include "cuda/cuda_driver.hpp"
#include "lazy/chunk_residency.hpp"
#include "lazy/spare_chunks.hpp"
#include "store/io_lane.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vram {

class LazyVram {
public:
  struct Settings {
    uint64_t size = 0;     // the export
    uint64_t chunk = 0;    // lazy-chunk=; rounded up to the driver's granularity
    uint64_t headroom = 0; // VRAM left free for other programs when mapping
    // Chunks of VRAM kept created ahead of need (lazy-spare=); unset: the
    // default for the chunk size (default_spares).
    std::optional<size_t> spares;
    CUcontext context = nullptr; // made current on the spares' thread
  };

  // lazy-spare='s default: 8 MiB worth of chunks, at least 1, at most 4.
  static size_t default_spares(uint64_t chunk);

  // The calling thread has `device`'s context current.  Returns nullptr
  // and sets `why_not` when the driver or GPU lacks virtual memory
  // management (the caller falls back to eager).  Throws
  // std::runtime_error for other failures.
  static std::unique_ptr<LazyVram> open(const CudaDriver &driver, CUdevice device,
                                        const Settings &settings, std::string &why_not);

  // Unmaps and releases what is still mapped and every spare, then frees
  // the address range.  The owner zeroes mapped chunks first (release_all).
  ~LazyVram();

  LazyVram(const LazyVram &) = delete;
  LazyVram &operator=(const LazyVram &) = delete;

  CUdeviceptr base() const { return base_; }
  uint64_t chunk_size() const { return residency_.chunk_size(); }
  // VRAM held: the chunks with VRAM under them (mapped into the export,
  // or left by a map() that could not be undone), and the spares.
  uint64_t held() const
  {
    return (holding_.load(std::memory_order_relaxed) + spares_->count()) * chunk_size();
  }
  uint64_t spare_bytes() const { return spares_->count() * chunk_size(); }
  size_t spare_target() const { return spares_->target(); }
  ChunkResidency &residency() { return residency_; }
  size_t chunks() const { return handles_.size(); }
  // Whether `chunk` has VRAM under it (with the caller's hold on the chunk).
  bool holds(size_t chunk) const { return handles_[chunk] != 0; }

  // Maps VRAM under `chunk` (a spare if one is ready, else new) and zeroes
  // it through `lane`.  CUDA_ERROR_OUT_OF_MEMORY when there is no spare and
  // the GPU has no VRAM for a new chunk, or would be left with less than
  // the headroom; then `shortage` says how much is free.
  CUresult map(size_t chunk, IoLane &lane, std::string &shortage);
  // Unmaps `chunk`; its VRAM becomes a spare or goes back to the driver.
  // `gone`: the chunk is no longer mapped (even when releasing its VRAM
  // failed, which is then the error returned); false when cuMemUnmap
  // failed, and the chunk is as it was.
  CUresult unmap(size_t chunk, bool &gone);
  // Teardown: unmaps `chunk` and releases its VRAM, whatever the driver
  // answers (no spare is kept).
  void drop(size_t chunk);

  // idle-release=: suspend() unmaps every chunk, keeping its VRAM, and
  // frees the address range, so that the context can go; resume() takes
  // a range again (base() may change) and maps the same VRAM back, with
  // `context` the one the spares' thread then uses.  Only while nothing
  // else maps, unmaps or copies.  On failure each leaves things as they
  // were, except when suspend() could not put back what it had unmapped:
  // then `intact` is false.
  CUresult suspend(bool &intact);
  CUresult resume(CUcontext context);

private:
  LazyVram(const CudaDriver &driver, CUdevice device, const Settings &settings, uint64_t chunk,
           CUdeviceptr base, uint64_t reserved);

  // One chunk of physical VRAM, if the headroom allows.
  CUresult create(CUmemGenericAllocationHandle &handle, std::string &shortage);
  // Maps `handle` (one chunk) at `at`, read-write for the GPU.
  CUresult map_at(CUdeviceptr at, CUmemGenericAllocationHandle handle);
  // handles_[chunk] = handle, counting the chunks that hold VRAM; returns
  // the old handle.
  CUmemGenericAllocationHandle set_handle(size_t chunk, CUmemGenericAllocationHandle handle);

  const CudaApi &cu_;
  CUdevice device_;
  uint64_t headroom_;
  CUdeviceptr base_;
  uint64_t reserved_;      // bytes of address space
  bool suspended_ = false; // no address range (suspend())
  std::atomic<CUcontext> context_;
  ChunkResidency residency_;
  std::vector<CUmemGenericAllocationHandle> handles_; // per chunk; guarded by its lock
  std::atomic<size_t> holding_{0};                    // non-zero handles_
  std::unique_ptr<SpareChunks> spares_;               // last: its thread uses the rest
};

} // namespace vram
