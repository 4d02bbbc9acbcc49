#include "cuda/cuda_driver.hpp"

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <utility>

namespace vram {
namespace {

template <typename F> std::pair<const char *, void **> entry(const char *name, F &slot)
{
  return {name, reinterpret_cast<void **>(&slot)};
}

bool driver_not_ready(CUresult r)
{
  return r == CUDA_ERROR_SYSTEM_NOT_READY || r == CUDA_ERROR_UNKNOWN ||
         r == CUDA_ERROR_DEVICE_UNAVAILABLE;
}

} // namespace

std::string CudaDriver::library_path()
{
  if (const char *p = std::getenv("NBDKIT_VRAM_LIBCUDA"); p && *p) return p;
  return "libcuda.so.1";
}

std::unique_ptr<CudaDriver> CudaDriver::load(std::string &error)
{
  const std::string path = library_path();
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    error = "NVIDIA driver not found: cannot load " + path + " (" + (why ? why : "unknown error") +
            "). Install the NVIDIA driver; nvidia-smi must work";
    return nullptr;
  }

  auto gpa2 = reinterpret_cast<PFN_cuGetProcAddress_v2>(dlsym(handle, "cuGetProcAddress_v2"));
  auto gpa1 = reinterpret_cast<PFN_cuGetProcAddress_v1>(dlsym(handle, "cuGetProcAddress"));
  if (!gpa2 && !gpa1) {
    error = path + " has no cuGetProcAddress: the NVIDIA driver is too old "
                   "(a driver for CUDA 12.0 or later is needed)";
    dlclose(handle);
    return nullptr;
  }

  std::unique_ptr<CudaDriver> driver(new CudaDriver);
  driver->handle_ = handle;
  driver->gpa2_ = gpa2;
  driver->gpa1_ = gpa1;
  CudaApi &a = driver->api_;
  const std::pair<const char *, void **> entries[] = {
    entry("cuInit", a.Init),
    entry("cuDriverGetVersion", a.DriverGetVersion),
    entry("cuGetErrorName", a.GetErrorName),
    entry("cuGetErrorString", a.GetErrorString),
    entry("cuDeviceGetCount", a.DeviceGetCount),
    entry("cuDeviceGet", a.DeviceGet),
    entry("cuDeviceGetName", a.DeviceGetName),
    entry("cuDeviceGetUuid", a.DeviceGetUuid),
    entry("cuDeviceTotalMem", a.DeviceTotalMem),
    entry("cuDeviceGetAttribute", a.DeviceGetAttribute),
    entry("cuDevicePrimaryCtxRetain", a.DevicePrimaryCtxRetain),
    entry("cuDevicePrimaryCtxRelease", a.DevicePrimaryCtxRelease),
    entry("cuDevicePrimaryCtxSetFlags", a.DevicePrimaryCtxSetFlags),
    entry("cuCtxSetCurrent", a.CtxSetCurrent),
    entry("cuMemGetInfo", a.MemGetInfo),
    entry("cuMemAlloc", a.MemAlloc),
    entry("cuMemFree", a.MemFree),
    entry("cuMemHostAlloc", a.MemHostAlloc),
    entry("cuMemFreeHost", a.MemFreeHost),
    entry("cuMemHostRegister", a.MemHostRegister),
    entry("cuMemHostUnregister", a.MemHostUnregister),
    entry("cuStreamCreate", a.StreamCreate),
    entry("cuStreamDestroy", a.StreamDestroy),
    entry("cuStreamSynchronize", a.StreamSynchronize),
    entry("cuEventCreate", a.EventCreate),
    entry("cuEventDestroy", a.EventDestroy),
    entry("cuEventRecord", a.EventRecord),
    entry("cuEventSynchronize", a.EventSynchronize),
    entry("cuMemcpyHtoDAsync", a.MemcpyHtoDAsync),
    entry("cuMemcpyDtoHAsync", a.MemcpyDtoHAsync),
    entry("cuMemcpy2DAsync", a.Memcpy2DAsync),
    entry("cuMemsetD8Async", a.MemsetD8Async),
  };
  const auto lookup = [&](const char *name, void **slot) {
    *slot = driver->entry_point(name);
    return *slot != nullptr;
  };
  for (const auto &[name, slot] : entries) {
    if (!lookup(name, slot)) {
      error = path + " lacks " + name +
              ": the NVIDIA driver is too old (a driver for CUDA 12.0 or later is needed)";
      return nullptr;
    }
  }
  const std::pair<const char *, void **> optional_entries[] = {
    entry("cuMemGetAllocationGranularity", a.MemGetAllocationGranularity),
    entry("cuMemAddressReserve", a.MemAddressReserve),
    entry("cuMemAddressFree", a.MemAddressFree),
    entry("cuMemCreate", a.MemCreate),
    entry("cuMemRelease", a.MemRelease),
    entry("cuMemMap", a.MemMap),
    entry("cuMemUnmap", a.MemUnmap),
    entry("cuMemSetAccess", a.MemSetAccess),
  };
  for (const auto &[name, slot] : optional_entries)
    lookup(name, slot);
  return driver;
}

void *CudaDriver::entry_point(const char *name) const
{
  void *fn = nullptr;
  CUresult r;
  if (gpa2_) {
    CUdriverProcAddressQueryResult status{};
    r = gpa2_(name, &fn, cuda_abi::api_version, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &status);
    if (r == CUDA_SUCCESS && status != CU_GET_PROC_ADDRESS_SUCCESS) r = CUDA_ERROR_NOT_FOUND;
  } else {
    r = gpa1_(name, &fn, cuda_abi::api_version, CU_GET_PROC_ADDRESS_LEGACY_STREAM);
  }
  return r == CUDA_SUCCESS ? fn : nullptr;
}

CUresult CudaDriver::init(unsigned timeout_s) const
{
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    const CUresult r = api_.Init(0);
    if (r == CUDA_SUCCESS || !driver_not_ready(r) || clock::now() >= deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string CudaDriver::describe(CUresult result) const
{
  const char *name = nullptr;
  const char *text = nullptr;
  if (api_.GetErrorName(result, &name) != CUDA_SUCCESS || !name)
    return "CUDA error " + std::to_string(static_cast<int>(result));
  std::string out = name;
  if (api_.GetErrorString(result, &text) == CUDA_SUCCESS && text)
    out += std::string(" (") + text + ")";
  return out;
}

} // namespace vram
