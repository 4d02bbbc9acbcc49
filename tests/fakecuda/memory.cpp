// Device memory (first-fit regions of the backing mapping), pinned host
// memory, and copies/memsets with their bounds checks. Copies to reserved
// (VMM) addresses are handed to vmm.cpp.
#include "driver.hpp"

#include "copy_engine.hpp"
#include "trace.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unistd.h>

namespace fakecuda {

std::uint64_t Device::free_bytes_locked(std::uint64_t free_setting) const
{
  // The free setting models memory other processes hold; ours (cuMemAlloc
  // and cuMemCreate alike) comes off it.
  const std::uint64_t base = std::min(free_setting, cfg.total);
  const std::uint64_t used = alloc.reserved_bytes();
  return used >= base ? 0 : base - used;
}

Device *Driver::device_of(CUdeviceptr dptr, std::uint64_t &offset)
{
  if (dptr < kDevicePtrBase) return nullptr;
  const std::uint64_t index = (dptr - kDevicePtrBase) / kDeviceWindow;
  if (index >= devices_.size()) return nullptr;
  Device *d = devices_[index].get();
  offset = dptr - d->ptr_base();
  return offset < d->cfg.total ? d : nullptr;
}

CUresult Driver::check_range(const Transfer &t)
{
  if (vmm_.va.in_window(t.dptr)) return check_vmm_range(t);
  const char *const api = t.api;
  const CUdeviceptr dptr = t.dptr;
  const std::size_t bytes = t.bytes;
  std::uint64_t offset = 0;
  bool ok = false;
  if (Device *d = device_of(dptr, offset)) {
    std::shared_lock lk(d->mem_mu);
    ok = d->alloc.contains(offset, bytes);
  }
  if (!ok) {
    // Loud on purpose: this is how the fake catches bugs in the code under
    // test that a real GPU would turn into corruption or a sticky fault.
    std::fprintf(stderr,
                 "fakecuda: out-of-bounds %s: device range [0x%llx, +%zu) is not inside one "
                 "live allocation\n",
                 api, static_cast<unsigned long long>(dptr), bytes);
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult Driver::mem_get_info(std::size_t *free, std::size_t *total)
{
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  const Device &d = *devices_[static_cast<std::size_t>(dev)];
  const std::uint64_t setting = free_setting(dev);
  std::shared_lock lk(d.mem_mu);
  *free = d.free_bytes_locked(setting);
  *total = d.cfg.total;
  return CUDA_SUCCESS;
}

CUresult Driver::mem_alloc(CUdeviceptr *dptr, std::size_t bytes)
{
  if (dptr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (cfg_.alloc_fail_above && bytes > *cfg_.alloc_fail_above) {
    trace_note("cuMemAlloc of %zu bytes refused: FAKECUDA_ALLOC_FAIL_ABOVE=%llu", bytes,
               static_cast<unsigned long long>(*cfg_.alloc_fail_above));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (bytes > UINT64_MAX - kAllocGranularity) return CUDA_ERROR_OUT_OF_MEMORY;
  const std::uint64_t rounded =
    (bytes + kAllocGranularity - 1) / kAllocGranularity * kAllocGranularity;

  Device &d = *devices_[static_cast<std::size_t>(dev)];
  const std::uint64_t setting = free_setting(dev);
  std::unique_lock lk(d.mem_mu);
  if (rounded > d.free_bytes_locked(setting)) return CUDA_ERROR_OUT_OF_MEMORY;
  const auto offset = d.alloc.allocate(rounded, bytes);
  if (!offset) return CUDA_ERROR_OUT_OF_MEMORY;
  *dptr = d.ptr_base() + *offset;
  map_file_.alloc(dev, *dptr, d.file_offset + *offset, bytes);
  return CUDA_SUCCESS;
}

CUresult Driver::mem_free(CUdeviceptr dptr)
{
  if (dptr == 0) return CUDA_SUCCESS; // like cudaFree(nullptr)
  std::uint64_t offset = 0;
  Device *d = device_of(dptr, offset);
  if (d != nullptr) {
    // The real cuMemFree synchronises first, so work still queued on the
    // memory completes rather than hitting freed memory.
    drain_streams(d->index);
    std::unique_lock lk(d->mem_mu);
    if (d->alloc.release(offset)) {
      map_file_.free(d->index, dptr);
      return CUDA_SUCCESS;
    }
  }
  std::fprintf(stderr, "fakecuda: cuMemFree(0x%llx): not the start of a live allocation\n",
               static_cast<unsigned long long>(dptr));
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult Driver::host_alloc(void **pp, std::size_t bytes, unsigned flags)
{
  if (pp == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  constexpr unsigned known =
    CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED;
  if ((flags & ~known) != 0) return CUDA_ERROR_INVALID_VALUE;
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes > SIZE_MAX - page) return CUDA_ERROR_OUT_OF_MEMORY;
  const std::size_t rounded = (bytes + page - 1) / page * page;
  void *p = std::aligned_alloc(page, rounded);
  if (p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  // Pinned, like the real driver's: every page resident from the start.
  // Code under test must never take a page fault on its staging buffers
  // (at zero free RAM that is a wait in reclaim), and with the real driver
  // it cannot.  (Not mlock()ed: real pinned memory does not count as the
  // process's locked memory either; under the plugin's mlockall these
  // pages are locked as they are touched here.)
  std::memset(p, 0, rounded);
  try {
    std::lock_guard lk(reg_mu_);
    host_blocks_.emplace(p, HostBlock{bytes, dev});
  } catch (...) {
    std::free(p);
    throw;
  }
  *pp = p;
  return CUDA_SUCCESS;
}

CUresult Driver::host_free(void *p)
{
  if (p == nullptr) return CUDA_SUCCESS; // like cudaFreeHost(nullptr)
  // Implicitly synchronising, like the real one: no queued copy may still
  // be about to use the buffer.
  drain_streams(-1);
  {
    std::lock_guard lk(reg_mu_);
    if (host_blocks_.erase(p) == 0) {
      std::fprintf(stderr, "fakecuda: cuMemFreeHost(%p): not a live cuMemHostAlloc buffer\n", p);
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  std::free(p);
  return CUDA_SUCCESS;
}

CUresult Driver::host_register(void *p, std::size_t bytes, unsigned flags)
{
  if (p == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  constexpr unsigned known = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP;
  if ((flags & ~known) != 0) return CUDA_ERROR_INVALID_VALUE;
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  if (bytes > UINTPTR_MAX - start) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard lk(reg_mu_);
  // Overlapping a registration (the one starting at or before p, or the
  // next one): the real driver's error.
  auto next = host_regs_.upper_bound(start);
  if (next != host_regs_.end() && next->first < start + bytes)
    return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  if (next != host_regs_.begin()) {
    const auto prev = std::prev(next);
    if (prev->first + prev->second.bytes > start) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  }
  // Registering pins the pages: each is made resident (read, so as not to
  // change what the caller keeps there).
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  for (std::uintptr_t a = start - start % page; a < start + bytes; a += page)
    (void)*reinterpret_cast<const volatile unsigned char *>(std::max(a, start));
  host_regs_.emplace(start, HostBlock{bytes, dev});
  return CUDA_SUCCESS;
}

CUresult Driver::host_unregister(void *p)
{
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int dev = 0;
  if (CUresult r = current_device(dev); r != CUDA_SUCCESS) return r;
  // Synchronising, like cuMemFreeHost: no queued copy still uses the pages.
  drain_streams(-1);
  std::lock_guard lk(reg_mu_);
  if (host_regs_.erase(reinterpret_cast<std::uintptr_t>(p)) == 0) {
    std::fprintf(stderr, "fakecuda: cuMemHostUnregister(%p): not the start of a registration\n", p);
    return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  }
  return CUDA_SUCCESS;
}

CUresult Driver::transfer(Transfer t, CUstream stream, bool async)
{
  if (t.bytes != 0 && t.host == nullptr && t.kind != TransferKind::Memset)
    return CUDA_ERROR_INVALID_VALUE;
  const bool run_inline =
    !async || stream == nullptr || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD;
  std::shared_ptr<Stream> s;
  if (run_inline) {
    if (CUresult r = current_device(t.device); r != CUDA_SUCCESS) return r;
  } else {
    s = find_stream(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    t.device = s->device();
  }
  if (t.bytes != 0)
    if (CUresult r = check_range(t); r != CUDA_SUCCESS) return r;
  t.time_sliced = time_sliced(t);
  if (t.time_sliced) timeslice_file_.note(t);
  // Counted now, in the caller's order; applied when it executes.
  if (t.kind != TransferKind::Memset) t.plan = faults_.plan_copy();
  if (run_inline) return execute(t, false);
  const auto run = [](void *self, const void *payload) {
    return static_cast<Driver *>(self)->execute(*static_cast<const Transfer *>(payload), true);
  };
  if (!s->enqueue(+run, this, t)) return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}

CUresult Driver::execute(const Transfer &t, bool on_worker)
{
  // The latency widens the window in which a caller that does not wait for
  // its copies can be caught reusing (or freeing) their host buffers.
  if (on_worker && cfg_.latency_us != 0 && faults_.sticky() == CUDA_SUCCESS)
    std::this_thread::sleep_for(std::chrono::microseconds(cfg_.latency_us));
  // Another context's time slice, when the real driver would wait for one.
  if (on_worker && t.time_sliced && cfg_.timeslice_us != 0)
    std::this_thread::sleep_for(std::chrono::microseconds(cfg_.timeslice_us));
  if (CUresult s = faults_.sticky(); s != CUDA_SUCCESS) return s;
  if (t.kind != TransferKind::Memset)
    if (CUresult r = faults_.before_copy(t.plan, t.api); r != CUDA_SUCCESS) return r;
  if (t.bytes == 0) return CUDA_SUCCESS;
  if (t.rows < 2) return move_bytes(t, on_worker);
  // One copy, one fault plan: row by row.
  for (std::size_t row = 0; row < t.rows; ++row) {
    Transfer one = t;
    one.rows = 1;
    one.dptr = t.dptr + row * t.dev_pitch;
    one.host = static_cast<std::byte *>(t.host) + row * t.host_pitch;
    one.bytes = t.width;
    if (CUresult r = move_bytes(one, on_worker); r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

CUresult Driver::move_bytes(const Transfer &t, bool on_worker)
{
  if (vmm_.va.in_window(t.dptr)) {
    const CUresult r = execute_vmm(t);
    if (on_worker)
      trace_note("worker ran %s dptr=0x%llx bytes=%zu: %s", t.api,
                 static_cast<unsigned long long>(t.dptr), t.bytes,
                 r == CUDA_SUCCESS ? "ok" : "refused");
    return r;
  }

  std::uint64_t offset = 0;
  Device *d = device_of(t.dptr, offset);
  if (d == nullptr) return CUDA_ERROR_INVALID_VALUE; // checked when issued; cannot happen
  std::shared_lock lk(d->mem_mu);
  // Checked again: the allocation may have gone between issue and now
  // (e.g. its primary context was released with the work still queued).
  if (!d->alloc.contains(offset, t.bytes)) {
    std::fprintf(stderr,
                 "fakecuda: out-of-bounds %s: device range [0x%llx, +%zu) was freed before "
                 "the queued operation ran\n",
                 t.api, static_cast<unsigned long long>(t.dptr), t.bytes);
    return CUDA_ERROR_INVALID_VALUE;
  }
  std::byte *dev_bytes = d->base + offset;
  switch (t.kind) {
  case TransferKind::HtoD:
    engine_to_device(dev_bytes, static_cast<const std::byte *>(t.host), t.bytes);
    break;
  case TransferKind::DtoH:
    engine_to_host(static_cast<std::byte *>(t.host), dev_bytes, t.bytes);
    break;
  case TransferKind::Memset: engine_fill(dev_bytes, t.value, t.bytes); break;
  }
  if (on_worker)
    trace_note("worker ran %s dptr=0x%llx bytes=%zu", t.api,
               static_cast<unsigned long long>(t.dptr), t.bytes);
  return CUDA_SUCCESS;
}

} // namespace fakecuda
