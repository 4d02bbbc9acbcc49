#include "lazy/lazy_vram.hpp"

#include "byte_size.hpp"
#include "safety/swap_safety.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace vram {
namespace {

CUmemAllocationProp allocation_prop(CUdevice device)
{
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

} // namespace

size_t LazyVram::default_spares(uint64_t chunk)
{
  return static_cast<size_t>(std::clamp<uint64_t>(8 * MiB / chunk, 1, 4));
}

std::unique_ptr<LazyVram> LazyVram::open(const CudaDriver &driver, CUdevice device,
                                         const Settings &settings, std::string &why_not)
{
  const CudaApi &cu = driver.api();
  if (!cu.has_vmm()) {
    why_not = "the NVIDIA driver lacks the virtual memory management calls (cuMemCreate, "
              "cuMemMap, ...)";
    return nullptr;
  }
  int supported = 0;
  CUresult r = cu.DeviceGetAttribute(
    &supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error("cuDeviceGetAttribute(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED) "
                             "failed: " +
                             driver.describe(r));
  if (!supported) {
    why_not = "the GPU or driver does not support CUDA virtual memory management";
    return nullptr;
  }
  const CUmemAllocationProp prop = allocation_prop(device);
  size_t granularity = 0;
  r = cu.MemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
  if (r == CUDA_ERROR_NOT_SUPPORTED) {
    why_not = "the driver does not support CUDA virtual memory management on this GPU";
    return nullptr;
  }
  if (r != CUDA_SUCCESS || granularity == 0)
    throw std::runtime_error("cuMemGetAllocationGranularity failed: " + driver.describe(r));

  // A multiple of the driver's granularity and of 256 KiB (the block
  // bitmap's words).
  const uint64_t unit = round_up(granularity, 256 * KiB);
  const uint64_t chunk = round_up(settings.chunk, unit);
  const uint64_t reserved = round_up(settings.size, chunk);
  CUdeviceptr base = 0;
  if ((r = cu.MemAddressReserve(&base, reserved, 0, 0, 0)) != CUDA_SUCCESS)
    throw std::runtime_error("reserving " + format_byte_size(reserved) +
                             " of GPU address space failed: " + driver.describe(r));
  try {
    return std::unique_ptr<LazyVram>(new LazyVram(driver, device, settings, chunk, base, reserved));
  } catch (...) {
    (void)cu.MemAddressFree(base, reserved);
    throw;
  }
}

LazyVram::LazyVram(const CudaDriver &driver, CUdevice device, const Settings &settings,
                   uint64_t chunk, CUdeviceptr base, uint64_t reserved)
  : cu_(driver.api()), device_(device), headroom_(settings.headroom), base_(base),
    reserved_(reserved), context_(settings.context), residency_(settings.size, chunk),
    handles_(residency_.chunks(), 0)
{
  SpareChunks::Hooks hooks;
  hooks.thread_start = [this] {
    // Like an I/O thread: the stack locked in while memory is free.
    prefault_stack(io_stack_prefault_bytes);
  };
  hooks.create = [this](CUmemGenericAllocationHandle &handle) {
    // The context current (for the headroom's cuMemGetInfo): the one of
    // the latest resume(), if the export has rested since.
    (void)cu_.CtxSetCurrent(context_.load(std::memory_order_acquire));
    std::string shortage;
    return create(handle, shortage);
  };
  hooks.release = [this](CUmemGenericAllocationHandle handle) { (void)cu_.MemRelease(handle); };
  spares_ = std::make_unique<SpareChunks>(settings.spares.value_or(default_spares(chunk)),
                                          std::move(hooks));
}

LazyVram::~LazyVram()
{
  residency_.release_all([&](size_t chunk) { drop(chunk); });
  // And chunks left mapped by a map() that failed half way and could not
  // undo it (see map()).
  for (size_t chunk = 0; chunk < handles_.size(); ++chunk)
    if (handles_[chunk] != 0) drop(chunk);
  spares_.reset();
  if (!suspended_) (void)cu_.MemAddressFree(base_, reserved_);
}

CUresult LazyVram::map_at(CUdeviceptr at, CUmemGenericAllocationHandle handle)
{
  const uint64_t size = residency_.chunk_size();
  if (const CUresult r = cu_.MemMap(at, size, 0, handle, 0); r != CUDA_SUCCESS) return r;
  CUmemAccessDesc access{};
  access.location = allocation_prop(device_).location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  if (const CUresult r = cu_.MemSetAccess(at, size, &access, 1); r != CUDA_SUCCESS) {
    (void)cu_.MemUnmap(at, size);
    return r;
  }
  return CUDA_SUCCESS;
}

CUresult LazyVram::suspend(bool &intact)
{
  intact = true;
  const uint64_t size = residency_.chunk_size();
  // Puts back the chunks below `upto` that hold VRAM; false if one would not map.
  const auto remap = [&](size_t upto) {
    bool ok = true;
    for (size_t c = 0; c < upto; ++c)
      if (handles_[c] != 0 && map_at(base_ + c * size, handles_[c]) != CUDA_SUCCESS) ok = false;
    return ok;
  };
  for (size_t c = 0; c < handles_.size(); ++c) {
    if (handles_[c] == 0) continue;
    if (const CUresult r = cu_.MemUnmap(base_ + c * size, size); r != CUDA_SUCCESS) {
      intact = remap(c);
      return r;
    }
  }
  if (const CUresult r = cu_.MemAddressFree(base_, reserved_); r != CUDA_SUCCESS) {
    intact = remap(handles_.size());
    return r;
  }
  suspended_ = true;
  return CUDA_SUCCESS;
}

CUresult LazyVram::resume(CUcontext context)
{
  context_.store(context, std::memory_order_release);
  const uint64_t size = residency_.chunk_size();
  CUdeviceptr base = 0;
  if (const CUresult r = cu_.MemAddressReserve(&base, reserved_, 0, 0, 0); r != CUDA_SUCCESS)
    return r;
  for (size_t c = 0; c < handles_.size(); ++c) {
    if (handles_[c] == 0) continue;
    if (const CUresult r = map_at(base + c * size, handles_[c]); r != CUDA_SUCCESS) {
      for (size_t u = 0; u < c; ++u)
        if (handles_[u] != 0) (void)cu_.MemUnmap(base + u * size, size);
      (void)cu_.MemAddressFree(base, reserved_);
      return r;
    }
  }
  base_ = base;
  suspended_ = false;
  return CUDA_SUCCESS;
}

CUresult LazyVram::create(CUmemGenericAllocationHandle &handle, std::string &shortage)
{
  const uint64_t size = residency_.chunk_size();
  if (headroom_ > 0) {
    size_t free = 0, total = 0;
    if (const CUresult r = cu_.MemGetInfo(&free, &total); r != CUDA_SUCCESS) return r;
    if (free < size + headroom_) {
      shortage = format_byte_size(free) + " of VRAM free, and reserve= keeps " +
                 format_byte_size(headroom_) + " of it for other programs";
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
  }
  const CUmemAllocationProp prop = allocation_prop(device_);
  const CUresult r = cu_.MemCreate(&handle, size, &prop, 0);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) {
    size_t free = 0, total = 0;
    shortage = cu_.MemGetInfo(&free, &total) == CUDA_SUCCESS
                 ? format_byte_size(free) + " of VRAM free"
                 : "the GPU is out of memory";
  }
  return r;
}

CUmemGenericAllocationHandle LazyVram::set_handle(size_t chunk, CUmemGenericAllocationHandle handle)
{
  const CUmemGenericAllocationHandle old = std::exchange(handles_[chunk], handle);
  if (old == 0 && handle != 0) holding_.fetch_add(1, std::memory_order_relaxed);
  if (old != 0 && handle == 0) holding_.fetch_sub(1, std::memory_order_relaxed);
  return old;
}

CUresult LazyVram::map(size_t chunk, IoLane &lane, std::string &shortage)
{
  const uint64_t size = residency_.chunk_size();
  const CUdeviceptr at = base_ + chunk * size;
  // An earlier map() of this chunk failed after mapping and could not
  // unmap: its VRAM is still there, unzeroed, and the range must be free
  // before anything else is mapped on it.
  if (handles_[chunk] != 0) {
    if (const CUresult r = cu_.MemUnmap(at, size); r != CUDA_SUCCESS) return r;
    (void)cu_.MemRelease(set_handle(chunk, 0));
  }
  CUmemGenericAllocationHandle handle = 0;
  if (const auto spare = spares_->take()) handle = *spare;
  else if (const CUresult r = create(handle, shortage); r != CUDA_SUCCESS) return r;
  // On failure the VRAM goes back where it came from.
  const auto give_back = [&] {
    if (!spares_->give(handle)) (void)cu_.MemRelease(handle);
  };
  CUresult r = cu_.MemMap(at, size, 0, handle, 0);
  if (r != CUDA_SUCCESS) {
    give_back();
    return r;
  }
  CUmemAccessDesc access{};
  access.location = allocation_prop(device_).location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  r = cu_.MemSetAccess(at, size, &access, 1);
  // Privacy and the zeroes a never-written block must read as: VRAM may
  // still hold another program's data.
  if (r == CUDA_SUCCESS) r = lane.zero(at, size);
  if (r != CUDA_SUCCESS) {
    // A handle still mapped here is neither a spare nor free to release:
    // keep it with the chunk (not in the export) for the next map() or the
    // destructor to unmap.
    if (cu_.MemUnmap(at, size) == CUDA_SUCCESS) give_back();
    else set_handle(chunk, handle);
    return r;
  }
  set_handle(chunk, handle);
  return CUDA_SUCCESS;
}

void LazyVram::drop(size_t chunk)
{
  const uint64_t size = residency_.chunk_size();
  // Whatever the driver answers: after a sticky error its calls fail, but
  // still unmap and release.
  (void)cu_.MemUnmap(base_ + chunk * size, size);
  if (const CUmemGenericAllocationHandle handle = set_handle(chunk, 0))
    (void)cu_.MemRelease(handle);
}

CUresult LazyVram::unmap(size_t chunk, bool &gone)
{
  const uint64_t size = residency_.chunk_size();
  gone = false;
  // Still mapped: the chunk stays in the export, handle and all, and the
  // next trim or zero of it tries again.
  if (const CUresult r = cu_.MemUnmap(base_ + chunk * size, size); r != CUDA_SUCCESS) return r;
  // Gone from the export, whatever becomes of its VRAM: zeroed by the
  // caller, it becomes a spare (zeroed again before it is used) or goes
  // back to the driver.  A failed release costs that one chunk of VRAM
  // until exit, and is reported; the export is unaffected.
  gone = true;
  const CUmemGenericAllocationHandle handle = set_handle(chunk, 0);
  if (spares_->give(handle)) return CUDA_SUCCESS;
  return cu_.MemRelease(handle);
}

} // namespace vram
