// The CUDA Driver API, loaded at run time.  The plugin never links
// libcuda: it dlopen()s libcuda.so.1 and resolves every entry point through
// cuGetProcAddress, so it builds and answers --dump-plugin on machines
// without a GPU, and tests can substitute a fake driver.
#pragma once

#include "cuda_abi.hpp"

#include <memory>
#include <string>

namespace vram {

// The entry points the plugin calls, with the types common/cuda_abi.hpp
// gives them; the lookup asks the driver for the variants current at that
// header's api_version.
struct CudaApi {
  PFN_cuInit Init = nullptr;
  PFN_cuDriverGetVersion DriverGetVersion = nullptr;
  PFN_cuGetErrorName GetErrorName = nullptr;
  PFN_cuGetErrorString GetErrorString = nullptr;
  PFN_cuDeviceGetCount DeviceGetCount = nullptr;
  PFN_cuDeviceGet DeviceGet = nullptr;
  PFN_cuDeviceGetName DeviceGetName = nullptr;
  PFN_cuDeviceGetUuid DeviceGetUuid = nullptr;
  PFN_cuDeviceTotalMem DeviceTotalMem = nullptr;
  PFN_cuDeviceGetAttribute DeviceGetAttribute = nullptr;
  PFN_cuDevicePrimaryCtxRetain DevicePrimaryCtxRetain = nullptr;
  PFN_cuDevicePrimaryCtxRelease DevicePrimaryCtxRelease = nullptr;
  PFN_cuDevicePrimaryCtxSetFlags DevicePrimaryCtxSetFlags = nullptr;
  PFN_cuCtxSetCurrent CtxSetCurrent = nullptr;
  PFN_cuMemGetInfo MemGetInfo = nullptr;
  PFN_cuMemAlloc MemAlloc = nullptr;
  PFN_cuMemFree MemFree = nullptr;
  PFN_cuMemHostAlloc MemHostAlloc = nullptr;
  PFN_cuMemFreeHost MemFreeHost = nullptr;
  PFN_cuMemHostRegister MemHostRegister = nullptr;
  PFN_cuMemHostUnregister MemHostUnregister = nullptr;
  PFN_cuStreamCreate StreamCreate = nullptr;
  PFN_cuStreamDestroy StreamDestroy = nullptr;
  PFN_cuStreamSynchronize StreamSynchronize = nullptr;
  PFN_cuEventCreate EventCreate = nullptr;
  PFN_cuEventDestroy EventDestroy = nullptr;
  PFN_cuEventRecord EventRecord = nullptr;
  PFN_cuEventSynchronize EventSynchronize = nullptr;
  PFN_cuMemcpyHtoDAsync MemcpyHtoDAsync = nullptr;
  PFN_cuMemcpyDtoHAsync MemcpyDtoHAsync = nullptr;
  PFN_cuMemcpy2DAsync Memcpy2DAsync = nullptr;
  PFN_cuMemsetD8Async MemsetD8Async = nullptr;

  // Virtual memory management, for allocation=lazy.  Optional: left null
  // when the driver lacks them, and the plugin falls back to eager.
  PFN_cuMemGetAllocationGranularity MemGetAllocationGranularity = nullptr;
  PFN_cuMemAddressReserve MemAddressReserve = nullptr;
  PFN_cuMemAddressFree MemAddressFree = nullptr;
  PFN_cuMemCreate MemCreate = nullptr;
  PFN_cuMemRelease MemRelease = nullptr;
  PFN_cuMemMap MemMap = nullptr;
  PFN_cuMemUnmap MemUnmap = nullptr;
  PFN_cuMemSetAccess MemSetAccess = nullptr;

  bool has_vmm() const
  {
    return MemGetAllocationGranularity && MemAddressReserve && MemAddressFree && MemCreate &&
           MemRelease && MemMap && MemUnmap && MemSetAccess;
  }
};

class CudaDriver {
public:
  // The library to load: $NBDKIT_VRAM_LIBCUDA if set (tests), otherwise
  // libcuda.so.1 from the usual search path.
  static std::string library_path();

  // Returns nullptr and sets `error` to a message for the user when the
  // library or one of its entry points is missing.
  static std::unique_ptr<CudaDriver> load(std::string &error);

  const CudaApi &api() const { return api_; }

  // Any other entry point, pinned to the same API version as the table
  // (benchmarks and probes that try calls the plugin does not use);
  // nullptr when the driver lacks it.
  void *entry_point(const char *name) const;

  // cuInit, retried for up to `timeout_s` seconds while the driver reports
  // that it is not ready yet (early boot, driver being loaded).
  CUresult init(unsigned timeout_s) const;

  // "CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
  std::string describe(CUresult result) const;

  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;
  ~CudaDriver() = default;

private:
  CudaDriver() = default;
  CudaApi api_;
  PFN_cuGetProcAddress_v2 gpa2_ = nullptr;
  PFN_cuGetProcAddress_v1 gpa1_ = nullptr;
  // Never dlclose()d: the driver keeps threads and atexit handlers that
  // outlive any owner we could give it.
  void *handle_ = nullptr;
};

} // namespace vram
