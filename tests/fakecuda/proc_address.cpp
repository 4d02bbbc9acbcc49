// cuGetProcAddress: how the code under test finds every other entry point.
// It asks by base name ("cuMemAlloc") and gets the variant a current driver
// would hand out (cuMemAlloc_v2); cudaVersion and the stream-flavour flags
// are ignored because the fake has one implementation of each.
#include "entry_points.hpp"
#include "trace.hpp"

#include <cstring>

namespace {

struct Entry {
  const char *name;
  void *fn;
};

template <class F> void *fn_ptr(F *f) { return reinterpret_cast<void *>(f); }

// The names asked for, and the variants a driver hands out for them at the
// API version the plugin asks for (entry_points.hpp).
const Entry *find_entry(const char *symbol)
{
  static const Entry table[] = {
    {"cuInit", fn_ptr(&cuInit)},
    {"cuDriverGetVersion", fn_ptr(&cuDriverGetVersion)},
    {"cuGetErrorName", fn_ptr(&cuGetErrorName)},
    {"cuGetErrorString", fn_ptr(&cuGetErrorString)},
    {"cuGetProcAddress", fn_ptr(&cuGetProcAddress_v2)},
    {"cuDeviceGetCount", fn_ptr(&cuDeviceGetCount)},
    {"cuDeviceGet", fn_ptr(&cuDeviceGet)},
    {"cuDeviceGetName", fn_ptr(&cuDeviceGetName)},
    {"cuDeviceGetUuid", fn_ptr(&cuDeviceGetUuid_v2)},
    {"cuDeviceTotalMem", fn_ptr(&cuDeviceTotalMem_v2)},
    {"cuDeviceGetAttribute", fn_ptr(&cuDeviceGetAttribute)},
    {"cuDeviceGetPCIBusId", fn_ptr(&cuDeviceGetPCIBusId)},
    {"cuDeviceGetByPCIBusId", fn_ptr(&cuDeviceGetByPCIBusId)},
    {"cuDevicePrimaryCtxRetain", fn_ptr(&cuDevicePrimaryCtxRetain)},
    {"cuDevicePrimaryCtxRelease", fn_ptr(&cuDevicePrimaryCtxRelease_v2)},
    {"cuDevicePrimaryCtxSetFlags", fn_ptr(&cuDevicePrimaryCtxSetFlags_v2)},
    {"cuDevicePrimaryCtxGetState", fn_ptr(&cuDevicePrimaryCtxGetState)},
    {"cuCtxSetCurrent", fn_ptr(&cuCtxSetCurrent)},
    {"cuCtxGetCurrent", fn_ptr(&cuCtxGetCurrent)},
    {"cuCtxSynchronize", fn_ptr(&cuCtxSynchronize)},
    {"cuMemGetInfo", fn_ptr(&cuMemGetInfo_v2)},
    {"cuMemAlloc", fn_ptr(&cuMemAlloc_v2)},
    {"cuMemFree", fn_ptr(&cuMemFree_v2)},
    {"cuMemHostAlloc", fn_ptr(&cuMemHostAlloc)},
    {"cuMemFreeHost", fn_ptr(&cuMemFreeHost)},
    {"cuMemHostRegister", fn_ptr(&cuMemHostRegister_v2)},
    {"cuMemHostUnregister", fn_ptr(&cuMemHostUnregister)},
    {"cuStreamCreate", fn_ptr(&cuStreamCreate)},
    {"cuStreamDestroy", fn_ptr(&cuStreamDestroy_v2)},
    {"cuStreamSynchronize", fn_ptr(&cuStreamSynchronize)},
    {"cuEventCreate", fn_ptr(&cuEventCreate)},
    {"cuEventDestroy", fn_ptr(&cuEventDestroy_v2)},
    {"cuEventRecord", fn_ptr(&cuEventRecord)},
    {"cuEventSynchronize", fn_ptr(&cuEventSynchronize)},
    {"cuMemcpyHtoD", fn_ptr(&cuMemcpyHtoD_v2)},
    {"cuMemcpyDtoH", fn_ptr(&cuMemcpyDtoH_v2)},
    {"cuMemcpyHtoDAsync", fn_ptr(&cuMemcpyHtoDAsync_v2)},
    {"cuMemcpyDtoHAsync", fn_ptr(&cuMemcpyDtoHAsync_v2)},
    {"cuMemcpy2DAsync", fn_ptr(&cuMemcpy2DAsync_v2)},
    {"cuMemsetD8", fn_ptr(&cuMemsetD8_v2)},
    {"cuMemsetD8Async", fn_ptr(&cuMemsetD8Async)},
    {"cuMemGetAllocationGranularity", fn_ptr(&cuMemGetAllocationGranularity)},
    {"cuMemCreate", fn_ptr(&cuMemCreate)},
    {"cuMemRelease", fn_ptr(&cuMemRelease)},
    {"cuMemAddressReserve", fn_ptr(&cuMemAddressReserve)},
    {"cuMemAddressFree", fn_ptr(&cuMemAddressFree)},
    {"cuMemMap", fn_ptr(&cuMemMap)},
    {"cuMemUnmap", fn_ptr(&cuMemUnmap)},
    {"cuMemSetAccess", fn_ptr(&cuMemSetAccess)},
  };
  for (const Entry &e : table)
    if (std::strcmp(e.name, symbol) == 0) return &e;
  return nullptr;
}

CUresult lookup(const char *symbol, void **pfn, CUdriverProcAddressQueryResult *status)
{
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Entry *e = find_entry(symbol);
  *pfn = e != nullptr ? e->fn : nullptr;
  if (status != nullptr)
    *status = e != nullptr ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  fakecuda::trace_call("cuGetProcAddress", e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND,
                       "symbol=%s", symbol);
  return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

} // namespace

FC_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                    cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
  (void)cudaVersion;
  (void)flags;
  return lookup(symbol, pfn, symbolStatus);
}

// The pre-12.0 entry point, without the status out-parameter.
FC_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
  (void)cudaVersion;
  (void)flags;
  return lookup(symbol, pfn, nullptr);
}
