// The exported CUDA Driver API entry points: thin wrappers that check the
// driver is initialised, apply the sticky-error rule, keep exceptions from
// escaping into C callers, and trace. The work is done in Driver.
//
// Symbol names: each definition spells out the exported name, the variant
// a driver hands out for the plain name (cuMemAlloc -> cuMemAlloc_v2), and
// must match its declaration in entry_points.hpp, which takes its type
// from common/cuda_abi.hpp. The older variants still exported
// (cuDeviceGetUuid here, cuGetProcAddress in proc_address.cpp) are
// defined next to the current ones.
#include "entry_points.hpp"

#include "device_queries.hpp"
#include "driver.hpp"
#include "errors.hpp"
#include "trace.hpp"

#include <cstdio>
#include <new>

using fakecuda::Driver;
using fakecuda::trace_call;

namespace {

// How a call behaves once a sticky fault has corrupted the "context".
enum class Gate {
  // Fails fast with the sticky code.
  Device,
  // Runs anyway (destructors must still free, syncs must still wait so no
  // worker touches caller memory afterwards), then reports the sticky code.
  Always,
};

// A call FAKECUDA_FAIL_CALL fails returns its code and does nothing.
template <class Body> CUresult injected(Driver &d, const char *name, Body &&body)
{
  if (const CUresult f = d.faults().before_call(name); f != CUDA_SUCCESS) return f;
  return body();
}

template <class Body> CUresult guarded(Gate gate, Body &&body) noexcept
{
  try {
    Driver *d = Driver::instance();
    if (d == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
    if (gate == Gate::Device) {
      // Checked on entry only: an async copy that a worker turns sticky
      // right after it was queued was still queued successfully.
      if (CUresult s = d->faults().sticky(); s != CUDA_SUCCESS) return s;
      return body(*d);
    }
    const CUresult r = body(*d);
    const CUresult s = d->faults().sticky();
    return s != CUDA_SUCCESS ? s : r;
  } catch (const std::bad_alloc &) {
    return CUDA_ERROR_OUT_OF_MEMORY;
  } catch (...) {
    return CUDA_ERROR_UNKNOWN;
  }
}

unsigned long long ull(CUdeviceptr p) { return static_cast<unsigned long long>(p); }

} // namespace

// ---- Initialisation, version, errors --------------------------------------

FC_API CUresult cuInit(unsigned int Flags)
{
  CUresult r;
  try {
    r = Driver::init(Flags);
  } catch (const std::bad_alloc &) {
    r = CUDA_ERROR_OUT_OF_MEMORY;
  } catch (...) {
    r = CUDA_ERROR_UNKNOWN;
  }
  trace_call(__func__, r, "Flags=%u", Flags);
  return r;
}

FC_API CUresult cuDriverGetVersion(int *driverVersion)
{
  if (driverVersion == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (Driver *d = Driver::instance()) {
    *driverVersion = d->config().driver_version;
    return CUDA_SUCCESS;
  }
  // Works before cuInit, as the real one does: read the setting directly.
  try {
    *driverVersion = fakecuda::driver_version_from_env();
    return CUDA_SUCCESS;
  } catch (const fakecuda::ConfigError &e) {
    std::fprintf(stderr, "fakecuda: cuDriverGetVersion: %s\n", e.what());
    return CUDA_ERROR_INVALID_VALUE;
  } catch (...) {
    return CUDA_ERROR_UNKNOWN;
  }
}

FC_API CUresult cuGetErrorName(CUresult error, const char **pStr)
{
  if (pStr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const fakecuda::ErrorInfo *e = fakecuda::find_error(error);
  *pStr = e != nullptr ? e->name : nullptr;
  return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FC_API CUresult cuGetErrorString(CUresult error, const char **pStr)
{
  if (pStr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const fakecuda::ErrorInfo *e = fakecuda::find_error(error);
  *pStr = e != nullptr ? e->description : nullptr;
  return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// ---- Devices ----------------------------------------------------------------

FC_API CUresult cuDeviceGetCount(int *count)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return fakecuda::device_get_count(d, count); });
  trace_call(__func__, r, "-> %d", r == CUDA_SUCCESS ? *count : -1);
  return r;
}

FC_API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return fakecuda::device_get(d, device, ordinal); });
  trace_call(__func__, r, "ordinal=%d", ordinal);
  return r;
}

FC_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return fakecuda::device_get_name(d, name, len, dev); });
  trace_call(__func__, r, "len=%d dev=%d", len, dev);
  return r;
}

FC_API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return fakecuda::device_get_uuid(d, uuid, dev); });
  trace_call(__func__, r, "dev=%d", dev);
  return r;
}

// The v1 entry point: same bytes (the versions differ only in how MIG
// instances are reported, which the fake does not model).
FC_API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return fakecuda::device_get_uuid(d, uuid, dev); });
  trace_call(__func__, r, "dev=%d", dev);
  return r;
}

FC_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return fakecuda::device_total_mem(d, bytes, dev); });
  trace_call(__func__, r, "dev=%d", dev);
  return r;
}

FC_API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
  const CUresult r = guarded(
    Gate::Device, [&](Driver &d) { return fakecuda::device_get_attribute(d, pi, attrib, dev); });
  trace_call(__func__, r, "attrib=%d dev=%d -> %d", static_cast<int>(attrib), dev,
             r == CUDA_SUCCESS ? *pi : -1);
  return r;
}

FC_API CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return fakecuda::device_get_pci_bus_id(d, pciBusId, len, dev);
  });
  trace_call(__func__, r, "len=%d dev=%d", len, dev);
  return r;
}

FC_API CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
  const CUresult r = guarded(
    Gate::Device, [&](Driver &d) { return fakecuda::device_get_by_pci_bus_id(d, dev, pciBusId); });
  trace_call(__func__, r, "pciBusId=%s", pciBusId != nullptr ? pciBusId : "(null)");
  return r;
}

// ---- Contexts -----------------------------------------------------------------

FC_API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) { return d.ctx_retain(pctx, dev); });
  trace_call(__func__, r, "dev=%d", dev);
  return r;
}

FC_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.ctx_release(dev); });
  trace_call(__func__, r, "dev=%d", dev);
  return r;
}

FC_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) { return d.ctx_set_flags(dev, flags); });
  trace_call(__func__, r, "dev=%d flags=0x%x", dev, flags);
  return r;
}

FC_API CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return d.ctx_get_state(dev, flags, active); });
  trace_call(__func__, r, "dev=%d", dev);
  return r;
}

FC_API CUresult cuCtxSetCurrent(CUcontext ctx)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.ctx_set_current(ctx); });
  trace_call(__func__, r, "ctx=%p", static_cast<void *>(ctx));
  return r;
}

FC_API CUresult cuCtxGetCurrent(CUcontext *pctx)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.ctx_get_current(pctx); });
  trace_call(__func__, r, "%s", "");
  return r;
}

FC_API CUresult cuCtxSynchronize(void)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.ctx_synchronize(); });
  trace_call(__func__, r, "%s", "");
  return r;
}

// ---- Memory -------------------------------------------------------------------

FC_API CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) { return d.mem_get_info(free, total); });
  trace_call(__func__, r, "-> free=%zu total=%zu", r == CUDA_SUCCESS ? *free : 0,
             r == CUDA_SUCCESS ? *total : 0);
  return r;
}

FC_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) { return d.mem_alloc(dptr, bytesize); });
  trace_call(__func__, r, "bytesize=%zu -> 0x%llx", bytesize,
             r == CUDA_SUCCESS ? ull(*dptr) : 0ULL);
  return r;
}

FC_API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.mem_free(dptr); });
  trace_call(__func__, r, "dptr=0x%llx", ull(dptr));
  return r;
}

FC_API CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return d.host_alloc(pp, bytesize, Flags); });
  trace_call(__func__, r, "bytesize=%zu Flags=0x%x -> %p", bytesize, Flags,
             r == CUDA_SUCCESS ? *pp : nullptr);
  return r;
}

FC_API CUresult cuMemFreeHost(void *p)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.host_free(p); });
  trace_call(__func__, r, "p=%p", p);
  return r;
}

FC_API CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return d.host_register(p, bytesize, Flags); });
  trace_call(__func__, r, "p=%p bytesize=%zu Flags=0x%x", p, bytesize, Flags);
  return r;
}

FC_API CUresult cuMemHostUnregister(void *p)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.host_unregister(p); });
  trace_call(__func__, r, "p=%p", p);
  return r;
}

// ---- Virtual memory management ------------------------------------------------
// None needs a current context (the real ones do not either). Those that
// undo something run even after a sticky fault, so cleanup still releases.

FC_API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                              CUmemAllocationGranularity_flags option)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return d.vmm_granularity(granularity, prop, option); });
  trace_call(__func__, r, "option=%d -> %zu", static_cast<int>(option),
             r == CUDA_SUCCESS ? *granularity : 0);
  return r;
}

FC_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                            const CUmemAllocationProp *prop, unsigned long long flags)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return injected(d, "cuMemCreate", [&] { return d.vmm_create(handle, size, prop, flags); });
  });
  trace_call(__func__, r, "size=%zu gpu=%d flags=0x%llx -> 0x%llx", size,
             prop != nullptr ? prop->location.id : -1, flags, r == CUDA_SUCCESS ? *handle : 0ULL);
  return r;
}

FC_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) {
    return injected(d, "cuMemRelease", [&] { return d.vmm_release(handle); });
  });
  trace_call(__func__, r, "handle=0x%llx", handle);
  return r;
}

FC_API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                    CUdeviceptr addr, unsigned long long flags)
{
  const CUresult r = guarded(
    Gate::Device, [&](Driver &d) { return d.vmm_reserve(ptr, size, alignment, addr, flags); });
  trace_call(__func__, r, "size=%zu alignment=%zu addr=0x%llx flags=0x%llx -> 0x%llx", size,
             alignment, ull(addr), flags, r == CUDA_SUCCESS ? ull(*ptr) : 0ULL);
  return r;
}

FC_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
  const CUresult r =
    guarded(Gate::Always, [&](Driver &d) { return d.vmm_address_free(ptr, size); });
  trace_call(__func__, r, "ptr=0x%llx size=%zu", ull(ptr), size);
  return r;
}

FC_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                         CUmemGenericAllocationHandle handle, unsigned long long flags)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return injected(d, "cuMemMap", [&] { return d.vmm_map(ptr, size, offset, handle, flags); });
  });
  trace_call(__func__, r, "ptr=0x%llx size=%zu offset=%zu handle=0x%llx flags=0x%llx", ull(ptr),
             size, offset, handle, flags);
  return r;
}

FC_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) {
    return injected(d, "cuMemUnmap", [&] { return d.vmm_unmap(ptr, size); });
  });
  trace_call(__func__, r, "ptr=0x%llx size=%zu", ull(ptr), size);
  return r;
}

FC_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                               size_t count)
{
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return injected(d, "cuMemSetAccess", [&] { return d.vmm_set_access(ptr, size, desc, count); });
  });
  trace_call(__func__, r, "ptr=0x%llx size=%zu count=%zu gpu=%d flags=0x%x", ull(ptr), size, count,
             desc != nullptr && count != 0 ? desc[0].location.id : -1,
             desc != nullptr && count != 0 ? static_cast<unsigned>(desc[0].flags) : 0U);
  return r;
}

// ---- Copies and memsets -------------------------------------------------------

using fakecuda::Transfer;
using fakecuda::TransferKind;

// `api` names the call in out-of-bounds and fault messages; it is taken
// outside the lambdas, where __func__ would read "operator()".

FC_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
  const char *const api = __func__;
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return d.transfer(
      Transfer{TransferKind::HtoD, dstDevice, const_cast<void *>(srcHost), ByteCount, 0, api},
      nullptr, false);
  });
  trace_call(__func__, r, "dst=0x%llx src=%p n=%zu", ull(dstDevice), srcHost, ByteCount);
  return r;
}

FC_API CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
  const char *const api = __func__;
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return d.transfer(Transfer{TransferKind::DtoH, srcDevice, dstHost, ByteCount, 0, api}, nullptr,
                      false);
  });
  trace_call(__func__, r, "dst=%p src=0x%llx n=%zu", dstHost, ull(srcDevice), ByteCount);
  return r;
}

FC_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
                                     CUstream hStream)
{
  const char *const api = __func__;
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return d.transfer(
      Transfer{TransferKind::HtoD, dstDevice, const_cast<void *>(srcHost), ByteCount, 0, api},
      hStream, true);
  });
  trace_call(__func__, r, "dst=0x%llx src=%p n=%zu stream=%p", ull(dstDevice), srcHost, ByteCount,
             static_cast<void *>(hStream));
  return r;
}

FC_API CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                                     CUstream hStream)
{
  const char *const api = __func__;
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return d.transfer(Transfer{TransferKind::DtoH, srcDevice, dstHost, ByteCount, 0, api}, hStream,
                      true);
  });
  trace_call(__func__, r, "dst=%p src=0x%llx n=%zu stream=%p", dstHost, ull(srcDevice), ByteCount,
             static_cast<void *>(hStream));
  return r;
}

// Host to device and device to host, with pitches; the rest of what
// CUDA_MEMCPY2D can describe (arrays, device to device) is not modelled.
FC_API CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
  const char *const api = __func__;
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    if (pCopy == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const CUDA_MEMCPY2D &c = *pCopy;
    const bool htod =
      c.srcMemoryType == CU_MEMORYTYPE_HOST && c.dstMemoryType == CU_MEMORYTYPE_DEVICE;
    const bool dtoh =
      c.srcMemoryType == CU_MEMORYTYPE_DEVICE && c.dstMemoryType == CU_MEMORYTYPE_HOST;
    if (!htod && !dtoh) {
      std::fprintf(
        stderr, "fakecuda: %s: only host-to-device and device-to-host copies are modelled\n", api);
      return CUDA_ERROR_NOT_SUPPORTED;
    }
    // Like the real driver: a pitch narrower than a row is an error.
    if (c.WidthInBytes == 0 || c.Height == 0) return CUDA_SUCCESS;
    if (c.srcPitch < c.WidthInBytes || c.dstPitch < c.WidthInBytes) return CUDA_ERROR_INVALID_VALUE;
    Transfer t{htod ? TransferKind::HtoD : TransferKind::DtoH, 0, nullptr, 0, 0, api};
    const std::size_t host_pitch = htod ? c.srcPitch : c.dstPitch;
    const std::size_t dev_pitch = htod ? c.dstPitch : c.srcPitch;
    const std::size_t host_x = htod ? c.srcXInBytes : c.dstXInBytes,
                      host_y = htod ? c.srcY : c.dstY;
    const std::size_t dev_x = htod ? c.dstXInBytes : c.srcXInBytes, dev_y = htod ? c.dstY : c.srcY;
    void *host = htod ? const_cast<void *>(c.srcHost) : c.dstHost;
    if (host == nullptr) return CUDA_ERROR_INVALID_VALUE;
    t.host = static_cast<std::byte *>(host) + host_x + host_y * host_pitch;
    t.dptr = (htod ? c.dstDevice : c.srcDevice) + dev_x + dev_y * dev_pitch;
    t.rows = c.Height;
    t.width = c.WidthInBytes;
    t.host_pitch = host_pitch;
    t.dev_pitch = dev_pitch;
    t.bytes = (c.Height - 1) * dev_pitch + c.WidthInBytes;
    return d.transfer(t, hStream, true);
  });
  if (pCopy != nullptr)
    trace_call(__func__, r, "src=%s dst=%s width=%zu height=%zu stream=%p",
               pCopy->srcMemoryType == CU_MEMORYTYPE_HOST ? "host" : "device",
               pCopy->dstMemoryType == CU_MEMORYTYPE_HOST ? "host" : "device", pCopy->WidthInBytes,
               pCopy->Height, static_cast<void *>(hStream));
  return r;
}

FC_API CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
  const char *const api = __func__;
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return d.transfer(Transfer{TransferKind::Memset, dstDevice, nullptr, N, uc, api}, nullptr,
                      false);
  });
  trace_call(__func__, r, "dst=0x%llx value=%u n=%zu", ull(dstDevice), uc, N);
  return r;
}

FC_API CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
{
  const char *const api = __func__;
  const CUresult r = guarded(Gate::Device, [&](Driver &d) {
    return d.transfer(Transfer{TransferKind::Memset, dstDevice, nullptr, N, uc, api}, hStream,
                      true);
  });
  trace_call(__func__, r, "dst=0x%llx value=%u n=%zu stream=%p", ull(dstDevice), uc, N,
             static_cast<void *>(hStream));
  return r;
}

// ---- Streams and events -------------------------------------------------------

FC_API CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return d.stream_create(phStream, Flags); });
  trace_call(__func__, r, "Flags=%u -> %p", Flags,
             r == CUDA_SUCCESS ? static_cast<void *>(*phStream) : nullptr);
  return r;
}

FC_API CUresult cuStreamDestroy_v2(CUstream hStream)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.stream_destroy(hStream); });
  trace_call(__func__, r, "stream=%p", static_cast<void *>(hStream));
  return r;
}

FC_API CUresult cuStreamSynchronize(CUstream hStream)
{
  const CUresult r =
    guarded(Gate::Always, [&](Driver &d) { return d.stream_synchronize(hStream); });
  trace_call(__func__, r, "stream=%p", static_cast<void *>(hStream));
  return r;
}

FC_API CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return d.event_create(phEvent, Flags); });
  trace_call(__func__, r, "Flags=%u -> %p", Flags,
             r == CUDA_SUCCESS ? static_cast<void *>(*phEvent) : nullptr);
  return r;
}

FC_API CUresult cuEventDestroy_v2(CUevent hEvent)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.event_destroy(hEvent); });
  trace_call(__func__, r, "event=%p", static_cast<void *>(hEvent));
  return r;
}

FC_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
  const CUresult r =
    guarded(Gate::Device, [&](Driver &d) { return d.event_record(hEvent, hStream); });
  trace_call(__func__, r, "event=%p stream=%p", static_cast<void *>(hEvent),
             static_cast<void *>(hStream));
  return r;
}

FC_API CUresult cuEventSynchronize(CUevent hEvent)
{
  const CUresult r = guarded(Gate::Always, [&](Driver &d) { return d.event_synchronize(hEvent); });
  trace_call(__func__, r, "event=%p", static_cast<void *>(hEvent));
  return r;
}

// ---- Test hook ------------------------------------------------------------------

// Not part of the CUDA API: tears all state down so the next cuInit reads
// the environment afresh. Only for tests, with no other thread in the fake.
FC_API void fakecuda_reset(void) { Driver::reset(); }
