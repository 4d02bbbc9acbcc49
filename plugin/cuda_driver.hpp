// The CUDA Driver API, loaded at run time.  The plugin never links
// libcuda: it dlopen()s libcuda.so.1 and resolves every entry point through
// cuGetProcAddress, so it builds and answers --dump-plugin on machines
// without a GPU, and tests can substitute a fake driver.
#pragma once

#include <cuda.h>

#include <memory>
#include <string>

namespace vram {

// The signatures are the ones cuda.h declares (its macros map the plain
// names to the current _v2 variants); the lookup asks the driver for the
// same variants by pinning the API version.
struct CudaApi {
  decltype(&::cuInit) Init = nullptr;
  decltype(&::cuDriverGetVersion) DriverGetVersion = nullptr;
  decltype(&::cuGetErrorName) GetErrorName = nullptr;
  decltype(&::cuGetErrorString) GetErrorString = nullptr;
  decltype(&::cuDeviceGetCount) DeviceGetCount = nullptr;
  decltype(&::cuDeviceGet) DeviceGet = nullptr;
  decltype(&::cuDeviceGetName) DeviceGetName = nullptr;
  decltype(&::cuDeviceGetUuid) DeviceGetUuid = nullptr;
  decltype(&::cuDeviceTotalMem) DeviceTotalMem = nullptr;
  decltype(&::cuDeviceGetAttribute) DeviceGetAttribute = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) DevicePrimaryCtxRetain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) DevicePrimaryCtxRelease = nullptr;
  decltype(&::cuDevicePrimaryCtxSetFlags) DevicePrimaryCtxSetFlags = nullptr;
  decltype(&::cuCtxSetCurrent) CtxSetCurrent = nullptr;
  decltype(&::cuMemGetInfo) MemGetInfo = nullptr;
  decltype(&::cuMemAlloc) MemAlloc = nullptr;
  decltype(&::cuMemFree) MemFree = nullptr;
  decltype(&::cuMemHostAlloc) MemHostAlloc = nullptr;
  decltype(&::cuMemFreeHost) MemFreeHost = nullptr;
  decltype(&::cuStreamCreate) StreamCreate = nullptr;
  decltype(&::cuStreamDestroy) StreamDestroy = nullptr;
  decltype(&::cuStreamSynchronize) StreamSynchronize = nullptr;
  decltype(&::cuEventCreate) EventCreate = nullptr;
  decltype(&::cuEventDestroy) EventDestroy = nullptr;
  decltype(&::cuEventRecord) EventRecord = nullptr;
  decltype(&::cuEventSynchronize) EventSynchronize = nullptr;
  decltype(&::cuMemcpyHtoDAsync) MemcpyHtoDAsync = nullptr;
  decltype(&::cuMemcpyDtoHAsync) MemcpyDtoHAsync = nullptr;
  decltype(&::cuMemcpy2DAsync) Memcpy2DAsync = nullptr;
  decltype(&::cuMemsetD8Async) MemsetD8Async = nullptr;

  // Virtual memory management, for allocation=lazy.  Optional: left null
  // when the driver lacks them, and the plugin falls back to eager.
  decltype(&::cuMemGetAllocationGranularity) MemGetAllocationGranularity = nullptr;
  decltype(&::cuMemAddressReserve) MemAddressReserve = nullptr;
  decltype(&::cuMemAddressFree) MemAddressFree = nullptr;
  decltype(&::cuMemCreate) MemCreate = nullptr;
  decltype(&::cuMemRelease) MemRelease = nullptr;
  decltype(&::cuMemMap) MemMap = nullptr;
  decltype(&::cuMemUnmap) MemUnmap = nullptr;
  decltype(&::cuMemSetAccess) MemSetAccess = nullptr;

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
  using GetProcAddressV2 = CUresult (*)(const char *, void **, int, cuuint64_t,
                                        CUdriverProcAddressQueryResult *);
  using GetProcAddressV1 = CUresult (*)(const char *, void **, int, cuuint64_t);
  GetProcAddressV2 gpa2_ = nullptr;
  GetProcAddressV1 gpa1_ = nullptr;
  // Never dlclose()d: the driver keeps threads and atexit handlers that
  // outlive any owner we could give it.
  void *handle_ = nullptr;
};

} // namespace vram
