// The virtual memory management API: physical allocations (cuMemCreate /
// cuMemRelease) taken from the GPU's region like cuMemAlloc memory, address
// reservations (cuMemAddressReserve / cuMemAddressFree), mappings
// (cuMemMap / cuMemUnmap) with their access (cuMemSetAccess), and copies
// and memsets through them.
//
// Locking: vmm_.mu guards all of it; copies hold it shared for as long as
// they touch memory, so nothing is unmapped or freed under a running copy.
// Physical memory is allocated and freed with the device's mem_mu held
// too, always taken after vmm_.mu.
#include "driver.hpp"

#include "copy_engine.hpp"
#include "trace.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace fakecuda {
namespace {

bool granular(std::uint64_t v) { return v % kVmmGranularity == 0; }

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

std::uint64_t device_bit(int dev) { return std::uint64_t{1} << dev; } // dev < kMaxGpus = 64

// Misuse by the code under test: say what is wrong (the real driver only
// returns the code, which makes such bugs hard to find) and refuse.
__attribute__((format(printf, 1, 2))) CUresult misuse(const char *fmt, ...)
{
  char text[448];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  char line[480];
  std::snprintf(line, sizeof line, "fakecuda: %s\n", text);
  std::fputs(line, stderr);
  return CUDA_ERROR_INVALID_VALUE;
}

} // namespace

CUresult Driver::check_prop(const char *api, const CUmemAllocationProp *prop, int &dev) const
{
  if (prop == nullptr) return misuse("%s: prop is NULL", api);
  if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
    return misuse("%s: prop->type is %d, not CU_MEM_ALLOCATION_TYPE_PINNED", api,
                  static_cast<int>(prop->type));
  if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return misuse("%s: prop->location.type is %d, not CU_MEM_LOCATION_TYPE_DEVICE", api,
                  static_cast<int>(prop->location.type));
  if (device(prop->location.id) == nullptr) {
    std::fprintf(stderr, "fakecuda: %s: prop->location.id %d is not a device\n", api,
                 prop->location.id);
    return CUDA_ERROR_INVALID_DEVICE;
  }
  dev = prop->location.id;
  if (!devices_[static_cast<std::size_t>(dev)]->cfg.vmm) {
    trace_note("%s: GPU %d has vmm=0", api, dev);
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  return CUDA_SUCCESS;
}

CUresult Driver::vmm_granularity(std::size_t *granularity, const CUmemAllocationProp *prop,
                                 CUmemAllocationGranularity_flags option)
{
  if (granularity == nullptr) return misuse("cuMemGetAllocationGranularity: granularity is NULL");
  if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
    return misuse("cuMemGetAllocationGranularity: unknown option %d", static_cast<int>(option));
  int dev = 0;
  if (CUresult r = check_prop("cuMemGetAllocationGranularity", prop, dev); r != CUDA_SUCCESS)
    return r;
  *granularity = kVmmGranularity;
  return CUDA_SUCCESS;
}

CUresult Driver::vmm_create(CUmemGenericAllocationHandle *handle, std::size_t size,
                            const CUmemAllocationProp *prop, unsigned long long flags)
{
  if (handle == nullptr) return misuse("cuMemCreate: handle is NULL");
  if (flags != 0) return misuse("cuMemCreate: flags 0x%llx, must be 0", flags);
  int dev = 0;
  if (CUresult r = check_prop("cuMemCreate", prop, dev); r != CUDA_SUCCESS) return r;
  if (prop->requestedHandleTypes != CU_MEM_HANDLE_TYPE_NONE) {
    std::fprintf(
      stderr,
      "fakecuda: cuMemCreate: requestedHandleTypes 0x%x: shareable handles are not modelled\n",
      static_cast<unsigned>(prop->requestedHandleTypes));
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (size == 0 || !granular(size))
    return misuse("cuMemCreate: size %zu is not a nonzero multiple of the granularity (%llu)", size,
                  ull(kVmmGranularity));

  Device &d = *devices_[static_cast<std::size_t>(dev)];
  const std::uint64_t setting = free_setting(dev);
  std::unique_lock vl(vmm_.mu);
  std::unique_lock ml(d.mem_mu);
  if (size > d.free_bytes_locked(setting)) return CUDA_ERROR_OUT_OF_MEMORY;
  const auto offset = d.alloc.allocate(size, size, BlockOwner::MemCreate);
  if (!offset) return CUDA_ERROR_OUT_OF_MEMORY;
  const VmmHandle h = vmm_.next_handle;
  try {
    vmm_.allocations.emplace(h, PhysicalAllocation{dev, *offset, size});
  } catch (...) {
    d.alloc.release(*offset, BlockOwner::MemCreate);
    throw;
  }
  ++vmm_.next_handle;
  map_file_.create(dev, h, d.file_offset + *offset, size);
  *handle = h;
  return CUDA_SUCCESS;
}

void Driver::free_physical_locked(const PhysicalAllocation &a)
{
  Device &d = *devices_[static_cast<std::size_t>(a.device)];
  std::unique_lock ml(d.mem_mu);
  d.alloc.release(a.region_offset, BlockOwner::MemCreate);
}

CUresult Driver::vmm_release(CUmemGenericAllocationHandle handle)
{
  std::unique_lock vl(vmm_.mu);
  auto it = vmm_.allocations.find(handle);
  if (it == vmm_.allocations.end())
    return misuse("cuMemRelease(0x%llx): not a cuMemCreate handle", handle);
  PhysicalAllocation &a = it->second;
  if (a.released)
    return misuse(
      "cuMemRelease(0x%llx): already released (its memory stays until its last cuMemUnmap)",
      handle);
  a.released = true;
  // Like the real driver: the memory goes when its last mapping does.
  map_file_.release(handle, a.mappings != 0);
  if (a.mappings == 0) {
    free_physical_locked(a);
    vmm_.allocations.erase(it);
  }
  return CUDA_SUCCESS;
}

CUresult Driver::vmm_reserve(CUdeviceptr *ptr, std::size_t size, std::size_t alignment,
                             CUdeviceptr addr, unsigned long long flags)
{
  (void)addr; // only a hint, to the real driver as well; always ignored here
  if (ptr == nullptr) return misuse("cuMemAddressReserve: ptr is NULL");
  if (flags != 0) return misuse("cuMemAddressReserve: flags 0x%llx, must be 0", flags);
  if (std::none_of(devices_.begin(), devices_.end(), [](const auto &d) { return d->cfg.vmm; })) {
    trace_note("cuMemAddressReserve: every GPU has vmm=0");
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (size == 0 || !granular(size))
    return misuse(
      "cuMemAddressReserve: size %zu is not a nonzero multiple of the granularity (%llu)", size,
      ull(kVmmGranularity));
  if ((alignment & (alignment - 1)) != 0)
    return misuse("cuMemAddressReserve: alignment %zu is neither 0 nor a power of two", alignment);
  std::unique_lock vl(vmm_.mu);
  const auto p = vmm_.va.reserve(size, std::max<std::uint64_t>(alignment, kVmmGranularity));
  if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
  *ptr = *p;
  return CUDA_SUCCESS;
}

CUresult Driver::vmm_address_free(CUdeviceptr ptr, std::size_t size)
{
  std::unique_lock vl(vmm_.mu);
  std::size_t inside = 0;
  if (const char *why = vmm_.va.unreserve(ptr, size, inside)) {
    if (inside != 0)
      return misuse("cuMemAddressFree(0x%llx, %zu): %zu mapping(s) remain inside the reservation "
                    "(cuMemUnmap them first; a leak?)",
                    ull(ptr), size, inside);
    return misuse("cuMemAddressFree(0x%llx, %zu): %s", ull(ptr), size, why);
  }
  return CUDA_SUCCESS;
}

CUresult Driver::vmm_map(CUdeviceptr ptr, std::size_t size, std::size_t offset,
                         CUmemGenericAllocationHandle handle, unsigned long long flags)
{
  if (flags != 0) return misuse("cuMemMap: flags 0x%llx, must be 0", flags);
  if (size == 0 || !granular(ptr) || !granular(size) || !granular(offset))
    return misuse(
      "cuMemMap(0x%llx, %zu, offset %zu): ptr, size and offset must be multiples of the "
      "granularity (%llu), size nonzero",
      ull(ptr), size, offset, ull(kVmmGranularity));
  std::unique_lock vl(vmm_.mu);
  auto it = vmm_.allocations.find(handle);
  if (it == vmm_.allocations.end() || it->second.released)
    return misuse("cuMemMap(0x%llx, %zu): handle 0x%llx is not a live cuMemCreate handle", ull(ptr),
                  size, handle);
  PhysicalAllocation &a = it->second;
  if (offset > a.size || size > a.size - offset)
    return misuse("cuMemMap(0x%llx, %zu, offset %zu): beyond the %llu bytes of handle 0x%llx",
                  ull(ptr), size, offset, ull(a.size), handle);
  if (const char *why = vmm_.va.check_new_mapping(ptr, size))
    return misuse("cuMemMap(0x%llx, %zu): %s", ull(ptr), size, why);
  // No access yet: the real driver needs cuMemSetAccess before any use.
  const Mapping m{size, handle, offset, a.device, a.region_offset + offset};
  vmm_.va.add_mapping(ptr, m);
  ++a.mappings;
  map_file_.map(ptr, size, handle, offset,
                devices_[static_cast<std::size_t>(a.device)]->file_offset + m.region_offset);
  return CUDA_SUCCESS;
}

CUresult Driver::vmm_unmap(CUdeviceptr ptr, std::size_t size)
{
  // Synchronising, like cuMemFree: work queued on the memory completes
  // first rather than finding it gone. (What is queued after this point
  // and reaches the range is refused when it runs.)
  drain_streams(-1);
  std::unique_lock vl(vmm_.mu);
  std::vector<CUdeviceptr> starts;
  if (const char *why = vmm_.va.whole_mappings(ptr, size, starts))
    return misuse("cuMemUnmap(0x%llx, %zu): the range %s", ull(ptr), size, why);
  for (CUdeviceptr start : starts) {
    const Mapping m = vmm_.va.remove_mapping(start);
    map_file_.unmap(start, m.size);
    auto it = vmm_.allocations.find(m.handle);
    PhysicalAllocation &a = it->second;
    if (--a.mappings == 0 && a.released) {
      free_physical_locked(a); // released earlier, deferred until now
      vmm_.allocations.erase(it);
    }
  }
  return CUDA_SUCCESS;
}

CUresult Driver::vmm_set_access(CUdeviceptr ptr, std::size_t size, const CUmemAccessDesc *desc,
                                std::size_t count)
{
  if (desc == nullptr || count == 0) return misuse("cuMemSetAccess: no access descriptors");
  for (std::size_t i = 0; i < count; ++i) {
    const CUmemAccessDesc &a = desc[i];
    if (a.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
      return misuse(
        "cuMemSetAccess: desc[%zu].location.type is %d, not CU_MEM_LOCATION_TYPE_DEVICE", i,
        static_cast<int>(a.location.type));
    if (device(a.location.id) == nullptr) {
      std::fprintf(stderr, "fakecuda: cuMemSetAccess: desc[%zu].location.id %d is not a device\n",
                   i, a.location.id);
      return CUDA_ERROR_INVALID_DEVICE;
    }
    if (a.flags != CU_MEM_ACCESS_FLAGS_PROT_NONE && a.flags != CU_MEM_ACCESS_FLAGS_PROT_READ &&
        a.flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
      return misuse(
        "cuMemSetAccess: desc[%zu].flags 0x%x is not a CU_MEM_ACCESS_FLAGS_PROT_* value", i,
        static_cast<unsigned>(a.flags));
    if (!devices_[static_cast<std::size_t>(a.location.id)]->cfg.vmm)
      return CUDA_ERROR_NOT_SUPPORTED;
  }
  std::unique_lock vl(vmm_.mu);
  std::vector<CUdeviceptr> starts;
  if (const char *why = vmm_.va.whole_mappings(ptr, size, starts))
    return misuse("cuMemSetAccess(0x%llx, %zu): the range %s; it must consist of whole mappings",
                  ull(ptr), size, why);
  for (CUdeviceptr start : starts) {
    Mapping &m = vmm_.va.mapping_at(start);
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t bit = device_bit(desc[i].location.id);
      const bool read = (desc[i].flags & CU_MEM_ACCESS_FLAGS_PROT_READ) != 0;
      const bool write = desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
      m.readable = read ? m.readable | bit : m.readable & ~bit;
      m.writable = write ? m.writable | bit : m.writable & ~bit;
    }
  }
  return CUDA_SUCCESS;
}

// ---- Copies and memsets through mappings -------------------------------------

CUresult Driver::check_vmm_range_locked(const Transfer &t, bool issued) const
{
  const bool write = t.kind != TransferKind::DtoH;
  const std::uint64_t bit = t.device >= 0 ? device_bit(t.device) : 0;
  enum class Why { Unmapped, NoAccess, ReadOnly } why = Why::Unmapped;
  const auto stop = vmm_.va.for_each_piece(
    t.dptr, t.bytes, [&](const Mapping &m, std::uint64_t, std::uint64_t, CUdeviceptr) {
      if (((write ? m.writable : m.readable) & bit) != 0) return true;
      why = ((m.readable | m.writable) & bit) == 0 ? Why::NoAccess : Why::ReadOnly;
      return false;
    });
  if (!stop) return CUDA_SUCCESS;
  char reason[128];
  switch (why) {
  case Why::Unmapped:
    std::snprintf(reason, sizeof reason, "%s",
                  vmm_.va.in_reservation(*stop) ? "is reserved but not mapped"
                                                : "is not in a reservation");
    break;
  case Why::NoAccess:
    std::snprintf(reason, sizeof reason, "is mapped but GPU %d has no access (cuMemSetAccess)",
                  t.device);
    break;
  case Why::ReadOnly:
    std::snprintf(reason, sizeof reason, "is read-only for GPU %d", t.device);
    break;
  }
  // Loud on purpose, as for cuMemAlloc memory: a real GPU would fault.
  std::fprintf(stderr,
               "fakecuda: out-of-bounds %s: device range [0x%llx, +%zu): byte 0x%llx %s%s\n", t.api,
               ull(t.dptr), t.bytes, ull(*stop), reason,
               issued ? "" : " (changed between issue and when the queued operation ran)");
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult Driver::check_vmm_range(const Transfer &t) const
{
  std::shared_lock vl(vmm_.mu);
  return check_vmm_range_locked(t, true);
}

CUresult Driver::execute_vmm(const Transfer &t)
{
  // Held across the copy: no cuMemUnmap / cuMemRelease frees memory under it.
  std::shared_lock vl(vmm_.mu);
  if (CUresult r = check_vmm_range_locked(t, false); r != CUDA_SUCCESS) return r;
  auto *host = static_cast<std::byte *>(t.host);
  // Piece by piece: consecutive addresses may be backed by memory anywhere
  // in the region (or on another GPU).
  vmm_.va.for_each_piece(
    t.dptr, t.bytes,
    [&](const Mapping &m, std::uint64_t offset, std::uint64_t length, CUdeviceptr va) {
      std::byte *dev =
        devices_[static_cast<std::size_t>(m.device)]->base + m.region_offset + offset;
      const std::uint64_t done = va - t.dptr;
      switch (t.kind) {
      case TransferKind::HtoD: engine_to_device(dev, host + done, length); break;
      case TransferKind::DtoH: engine_to_host(host + done, dev, length); break;
      case TransferKind::Memset: engine_fill(dev, t.value, length); break;
      }
      return true;
    });
  return CUDA_SUCCESS;
}

} // namespace fakecuda
