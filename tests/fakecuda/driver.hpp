// The fake driver's state, created by cuInit and torn down by
// fakecuda_reset(): devices with their memory regions and primary contexts,
// and registries of the handles given out (streams, events, pinned host
// buffers), plus the virtual memory management state (vmm.hpp) and the
// adjustable free-memory budget (free_budget.hpp). Handles are always looked up in a registry
// before use, so a stale or double-freed handle from the code under test is reported as
// CUDA_ERROR_INVALID_HANDLE / INVALID_VALUE instead of crashing the fake.
#pragma once

#include "allocator.hpp"
#include "backing.hpp"
#include "config.hpp"
#include "faults.hpp"
#include "free_budget.hpp"
#include "layout.hpp"
#include "map_file.hpp"
#include "stream.hpp"
#include "timeslice.hpp"
#include "vmm.hpp"

#include "cuda_abi.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace fakecuda {

// What a CUcontext handle points at. Only primary contexts exist.
struct PrimaryContext {
  explicit PrimaryContext(int dev) : device(dev) {}
  const int device;
  std::atomic<int> refcount{0}; // active while > 0
  std::atomic<unsigned> flags{0};
  // The host memory the live context holds (FAKECUDA_CTX_HOST_BYTES);
  // guarded by Driver::ctx_mu_.
  void *host_memory = nullptr;
  std::uint64_t host_bytes = 0;
  std::uint64_t creations = 0; // times a retain created it
};

struct Device {
  Device(int idx, GpuConfig config, std::uint64_t region_offset, std::byte *region)
    : index(idx), cfg(std::move(config)), file_offset(region_offset), base(region),
      alloc(cfg.total), ctx(idx)
  {
  }

  CUdeviceptr ptr_base() const
  {
    return kDevicePtrBase + static_cast<std::uint64_t>(index) * kDeviceWindow;
  }
  // What cuMemGetInfo reports, given what other programs leave us
  // (`free_setting`: the `free` key or FAKECUDA_FREE_FILE); needs mem_mu held.
  std::uint64_t free_bytes_locked(std::uint64_t free_setting) const;

  const int index;
  const GpuConfig cfg;
  const std::uint64_t file_offset; // where the region starts in the backing file
  std::byte *const base;           // the region in our mapping

  // Shared while a copy touches the region through a cuMemAlloc pointer,
  // exclusive to allocate/free (cuMemAlloc and cuMemCreate alike): a free
  // never pulls memory out from under a running copy. Copies through VMM
  // mappings are protected by VmmState::mu instead.
  mutable std::shared_mutex mem_mu;
  RegionAllocator alloc;
  PrimaryContext ctx;
};

enum class TransferKind { HtoD, DtoH, Memset };

struct Transfer {
  TransferKind kind;
  CUdeviceptr dptr;
  void *host; // source (HtoD) or destination (DtoH); unused for memsets
  std::size_t bytes;
  unsigned char value; // memsets
  const char *api;     // for messages
  FaultPlan plan{};    // filled in when the copy is issued
  int device = -1;     // the issuing context's / stream's GPU (VMM access checks)
  // Two-dimensional copies (cuMemcpy2DAsync): `rows` rows of `width`
  // bytes, `host_pitch` and `dev_pitch` apart; `bytes` is then the device
  // span, (rows - 1) * dev_pitch + width.  rows == 1: a plain copy.
  std::size_t rows = 1;
  std::size_t width = 0;
  std::size_t host_pitch = 0;
  std::size_t dev_pitch = 0;
  bool time_sliced = false; // see timeslice.hpp; set when issued
};

class Driver {
public:
  // Global lifecycle. init() reads the environment; reset() (test-only, the
  // caller guarantees no other thread is inside the fake) destroys it all.
  static CUresult init(unsigned flags);
  static Driver *instance() noexcept { return current_.load(std::memory_order_acquire); }
  static void reset() noexcept;

  Driver(Config config, std::uint64_t generation); // throws ConfigError
  ~Driver();
  Driver(const Driver &) = delete;
  Driver &operator=(const Driver &) = delete;

  const Config &config() const { return cfg_; }
  FaultInjector &faults() { return faults_; }

  int device_count() const { return static_cast<int>(devices_.size()); }
  // nullptr for a bad ordinal.
  const Device *device(CUdevice ordinal) const;

  // Primary contexts and the calling thread's current context.
  CUresult ctx_retain(CUcontext *pctx, CUdevice dev);
  static void free_context_memory(PrimaryContext &ctx); // FAKECUDA_CTX_HOST_BYTES
  CUresult ctx_release(CUdevice dev);
  CUresult ctx_set_flags(CUdevice dev, unsigned flags);
  CUresult ctx_get_state(CUdevice dev, unsigned *flags, int *active);
  CUresult ctx_set_current(CUcontext ctx);
  CUresult ctx_get_current(CUcontext *pctx);
  CUresult ctx_synchronize();

  // Device and pinned host memory.
  CUresult mem_get_info(std::size_t *free, std::size_t *total);
  CUresult mem_alloc(CUdeviceptr *dptr, std::size_t bytes);
  CUresult mem_free(CUdeviceptr dptr);
  CUresult host_alloc(void **pp, std::size_t bytes, unsigned flags);
  CUresult host_free(void *p);
  CUresult host_register(void *p, std::size_t bytes, unsigned flags);
  CUresult host_unregister(void *p);

  // Virtual memory management (vmm.cpp).
  CUresult vmm_granularity(std::size_t *granularity, const CUmemAllocationProp *prop,
                           CUmemAllocationGranularity_flags option);
  CUresult vmm_create(CUmemGenericAllocationHandle *handle, std::size_t size,
                      const CUmemAllocationProp *prop, unsigned long long flags);
  CUresult vmm_release(CUmemGenericAllocationHandle handle);
  CUresult vmm_reserve(CUdeviceptr *ptr, std::size_t size, std::size_t alignment, CUdeviceptr addr,
                       unsigned long long flags);
  CUresult vmm_address_free(CUdeviceptr ptr, std::size_t size);
  CUresult vmm_map(CUdeviceptr ptr, std::size_t size, std::size_t offset,
                   CUmemGenericAllocationHandle handle, unsigned long long flags);
  CUresult vmm_unmap(CUdeviceptr ptr, std::size_t size);
  CUresult vmm_set_access(CUdeviceptr ptr, std::size_t size, const CUmemAccessDesc *desc,
                          std::size_t count);

  // Copies and memsets; `async` ones go to `stream` unless it is a default
  // stream handle, which runs inline.
  CUresult transfer(Transfer t, CUstream stream, bool async);

  CUresult stream_create(CUstream *ph, unsigned flags);
  CUresult stream_destroy(CUstream h);
  CUresult stream_synchronize(CUstream h);
  CUresult event_create(CUevent *ph, unsigned flags);
  CUresult event_destroy(CUevent h);
  CUresult event_record(CUevent ev, CUstream stream);
  CUresult event_synchronize(CUevent ev);

private:
  static std::atomic<Driver *> current_;

  // The calling thread's current context's device, if it has an active one.
  CUresult current_device(int &dev) const;
  Device *device_of(CUdeviceptr dptr, std::uint64_t &offset);
  // What other programs leave us on GPU `dev` now (re-reads FAKECUDA_FREE_FILE).
  std::uint64_t free_setting(int dev) { return budget_.current(dev); }
  CUresult check_range(const Transfer &t);
  CUresult execute(const Transfer &t, bool on_worker);
  // The bytes of one row (or of a whole one-dimensional transfer).
  CUresult move_bytes(const Transfer &t, bool on_worker);
  // Copies and memsets to a reserved (VMM) address: every byte must be
  // mapped with access for t.device. `issued`: checking at issue time (as
  // opposed to when it runs), for the message.
  CUresult check_vmm_range_locked(const Transfer &t, bool issued) const; // vmm_.mu held
  CUresult check_vmm_range(const Transfer &t) const;                     // takes vmm_.mu
  CUresult execute_vmm(const Transfer &t);
  // Validates a CUmemAllocationProp (pinned memory on a valid device).
  CUresult check_prop(const char *api, const CUmemAllocationProp *prop, int &dev) const;
  // Frees a physical allocation's memory; needs vmm_.mu held exclusively.
  void free_physical_locked(const PhysicalAllocation &a);
  std::shared_ptr<Stream> find_stream(CUstream h);
  // Waits until everything queued so far on the matching streams ran
  // (device < 0: all devices), without consuming their errors. Models the
  // implicit synchronisation of cuMemFree, cuMemFreeHost, cuCtxSynchronize.
  void drain_streams(int device);
  // Last release of a primary context: like the real driver, destroy what
  // was created in it.
  void destroy_context_resources(int device);

  const Config cfg_;
  const std::uint64_t generation_;
  FaultInjector faults_;
  MapFile map_file_;
  TimesliceFile timeslice_file_;
  std::unique_ptr<Backing> backing_;
  std::vector<std::unique_ptr<Device>> devices_;
  FreeBudget budget_;
  VmmState vmm_;

  std::mutex ctx_mu_; // serialises retain/release (and the teardown they may do)

  struct HostBlock {
    std::size_t bytes;
    int device;
  };
  std::mutex reg_mu_; // guards the three registries
  std::unordered_map<CUstream, std::shared_ptr<Stream>> streams_;
  std::unordered_map<CUevent, std::shared_ptr<Event>> events_;
  std::unordered_map<void *, HostBlock> host_blocks_;
  std::map<std::uintptr_t, HostBlock> host_regs_; // cuMemHostRegister, by start
};

} // namespace fakecuda
