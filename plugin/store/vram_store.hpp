// The export: one VRAM allocation on one GPU, read and written through a
// pool of I/O lanes.  Knows nothing of nbdkit; the callback file translates.
#pragma once

#include "compress/compressed_export.hpp"
#include "config/config.hpp"
#include "cuda/cuda_driver.hpp"
#include "cuda/cuda_handles.hpp"
#include "lazy/lazy_vram.hpp"
#include "log_throttle.hpp"
#include "rest/idle_rest.hpp"
#include "rest/memory_pressure.hpp"
#include "rest/wake_reserve.hpp"
#include "store/compactor.hpp"
#include "store/lane_pool.hpp"
#include "store/vram_chunks.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vram {

struct StartupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The outcome of one request: errnum 0 on success, else an errno value and
// a message for the log.
struct IoStatus {
  int errnum = 0;
  std::string message;
  bool quiet = false; // a repeat held back by a LogThrottle: set the errno, log nothing
  explicit operator bool() const { return errnum == 0; }
};

class VramStore {
public:
  struct Layout {
    unsigned device_index = 0;
    std::string gpu_label; // for messages
    bool display = false;  // the GPU drives a display (default reserve)
    unsigned lanes = 1;
  };

  // Allocates (backing off per `config`), zeroes the allocation and builds
  // the lanes.  The calling thread must not have forked since.  Throws
  // StartupError with a message for the user.
  static std::unique_ptr<VramStore> open(const CudaDriver &driver, const Config &config,
                                         const Layout &layout);

  // Zeroes the VRAM before giving it back to the driver.
  ~VramStore();

  uint64_t size() const { return size_; }
  // What the export holds on the GPU: allocation=eager, or lazy when the
  // GPU supports it (otherwise the store fell back to eager); always lazy
  // when compressed.
  Allocation allocation() const { return lazy_ ? Allocation::lazy : Allocation::eager; }
  // compress=: the codec (none when the export is stored as it is), and
  // what the pages take (zram's mm_stat, more or less).
  compress::CodecSetting codec() const { return codec_; }
  bool compressed() const { return compressed_ != nullptr; }
  compress::CompressedExport::Stats compress_stats() const
  {
    return compressed_ ? compressed_->stats() : compress::CompressedExport::Stats{};
  }
  // compress=: host memory its page table and slot maps hold.
  uint64_t compress_host_bytes() const { return compressed_ ? compressed_->host_bytes() : 0; }
  // compress=: the most VRAM the export may hold (its address range).
  uint64_t vram_limit() const { return lazy_ ? lazy_->chunks() * lazy_->chunk_size() : size_; }
  // VRAM held now: the whole size when eager; when lazy, the chunks mapped
  // and the spares (chunks created ahead of need).
  uint64_t held() const { return lazy_ ? lazy_->held() : size_; }
  uint64_t spare() const { return lazy_ ? lazy_->spare_bytes() : 0; }
  size_t spare_target() const { return lazy_ ? lazy_->spare_target() : 0; }
  uint64_t lazy_chunk() const { return lazy_ ? lazy_->chunk_size() : 0; }
  size_t lanes() const { return pool_.size(); }
  uint64_t piece_size() const { return piece_size_; }
  // share-gpu=, how often another program's GPU work has been seen, and
  // whether requests use only copy-engine shapes now.
  ShareGpu share_gpu() const { return pool_.shared().mode(); }
  uint64_t shared_gpu_detections() const { return pool_.shared().detections(); }
  bool sharing_now() const
  {
    return pool_.shared().copy_engines_only(SharedGpuDetector::Clock::now());
  }

  // idle-release=: whether the GPU rests or is awake, and its rests and
  // wakes; nullopt when idle-release= is off.
  std::optional<IdleRest::Stats> rest_stats() const;
  std::optional<std::chrono::milliseconds> idle_release() const { return idle_release_; }
  // Host memory kept, while the GPU rests, for the next wake's context.
  uint64_t wake_reserve() const { return wake_reserve_.bytes(); }

  IoStatus read(void *buf, uint64_t count, uint64_t offset);
  IoStatus write(const void *buf, uint64_t count, uint64_t offset);
  IoStatus zero(uint64_t count, uint64_t offset);
  IoStatus flush();

  bool failed() const { return failed_.load(std::memory_order_acquire); }

  VramStore(const VramStore &) = delete;
  VramStore &operator=(const VramStore &) = delete;

private:
  VramStore(const CudaDriver &driver, PrimaryContext context, DeviceMemory memory,
            std::unique_ptr<LazyVram> lazy, uint64_t size, const Config &config,
            const Layout &layout);

  // A request: through the idle-release= gate when there is one.
  template <typename Fn> IoStatus gated(const char *op, uint64_t count, uint64_t offset, Fn fn);
  IoStatus read_awake(void *buf, uint64_t count, uint64_t offset);
  IoStatus write_awake(const void *buf, uint64_t count, uint64_t offset);
  IoStatus zero_awake(uint64_t count, uint64_t offset);
  IoStatus read_lazy(std::byte *buf, uint64_t count, uint64_t offset);
  IoStatus write_lazy(const std::byte *buf, uint64_t count, uint64_t offset);
  IoStatus zero_lazy(uint64_t count, uint64_t offset);
  IoStatus no_space(uint64_t count, uint64_t offset, const std::string &why);

  // compress=: runs `fn(worker, message)` (0 or an errno value) with a
  // lane and its worker, and turns what it returns into an IoStatus.
  template <typename Fn>
  IoStatus compressed_request(const char *op, uint64_t count, uint64_t offset, Fn fn);
  // compress=: `fn(worker, lane)` with a lane borrowed from the pool, its
  // worker, and its ChunkLane cleared (what the GPU calls report there).
  template <typename Fn> auto with_worker(Fn fn);
  // The compactor's: whether it would give VRAM back, and one step of it.
  bool compaction_wanted() const;
  bool compact_step();

  // idle-release=: the gate and its hooks ("" or why not).
  void start_idle_release(std::chrono::milliseconds idle);
  std::string go_to_rest();
  std::string wake_up();

  CUresult bind_context();
  IoStatus check(const char *op, uint64_t count, uint64_t offset);
  IoStatus fail_request(const char *op, CUresult r, uint64_t count, uint64_t offset);
  IoStatus failed_status();
  void enter_failed_state(const std::string &why);

  const CudaDriver &driver_;
  const CudaApi &cu_;
  CUdevice device_;
  PrimaryContext context_;         // none while the GPU rests (idle-release=)
  DeviceMemory memory_;            // eager
  std::unique_ptr<LazyVram> lazy_; // lazy
  CUdeviceptr base_;               // byte 0 of the export; may change at a wake
  uint64_t size_;
  uint64_t piece_size_;
  std::string gpu_label_;
  LanePool pool_;
  uint64_t generation_ = 0;

  // compress=: the pages, their chunks of lazy_'s VRAM, and per lane what
  // a request needs (made here, so the I/O path allocates nothing).
  compress::CodecSetting codec_;
  std::unique_ptr<VramChunks> chunks_;
  std::unique_ptr<compress::CompressedExport> compressed_;
  std::vector<std::unique_ptr<compress::Worker>> workers_;
  std::vector<ChunkLane> chunk_lanes_;
  std::unique_ptr<Compactor> compactor_; // stopped first, in the destructor

  // idle-release=: stopped next, in the destructor (the watch wakes
  // through the gate).
  std::optional<std::chrono::milliseconds> idle_release_;
  std::unique_ptr<MemoryProbe> memory_probe_;
  std::unique_ptr<IdleRest> rest_;
  std::unique_ptr<PressureWatch> pressure_watch_;
  WakeReserve wake_reserve_; // held while the GPU rests
  LogThrottle wake_log_{std::chrono::seconds(10)};

  std::atomic<bool> failed_{false};
  std::once_flag failure_logged_;
  std::string failure_reason_; // written once, before failed_ is set
  LogThrottle out_of_service_log_{std::chrono::seconds(10)};
  LogThrottle no_space_log_{std::chrono::seconds(10)};
};

} // namespace vram
