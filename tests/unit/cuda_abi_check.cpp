// common/cuda_abi.hpp against NVIDIA's cuda.h, where one is installed:
// every type, field, enumerator and entry-point signature the project
// declares must be the one cuda.h declares.  Built only when CMake finds a
// cuda.h (VRAM_CUDA_ABI_CHECK); the project itself never includes it.
//
// Most checks are static_asserts: a mismatch stops the build, naming the
// declaration.  The stream handles, which cuda.h makes casts in macros,
// are compared when the test runs.
#define VRAM_CUDA_ABI_NO_GLOBAL
#include "cuda_abi.hpp"

#include <cstdint>

namespace ours = vram::cuda_abi;

// What cuda.h makes macros of, read before its macros exist.
namespace before {
constexpr unsigned host_portable = ours::CU_MEMHOSTALLOC_PORTABLE;
constexpr unsigned host_devicemap = ours::CU_MEMHOSTALLOC_DEVICEMAP;
constexpr unsigned host_writecombined = ours::CU_MEMHOSTALLOC_WRITECOMBINED;
constexpr unsigned register_portable = ours::CU_MEMHOSTREGISTER_PORTABLE;
constexpr unsigned register_devicemap = ours::CU_MEMHOSTREGISTER_DEVICEMAP;
const std::uintptr_t stream_legacy = reinterpret_cast<std::uintptr_t>(ours::CU_STREAM_LEGACY);
const std::uintptr_t stream_per_thread =
  reinterpret_cast<std::uintptr_t>(ours::CU_STREAM_PER_THREAD);
} // namespace before

#include <cuda.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <type_traits>

namespace {

static_assert(ours::api_version <= CUDA_VERSION,
              "cuda.h is older than the API version the plugin asks the driver for");

// nv_t<T>: T with each of our types replaced by cuda.h's, through
// pointers, const and function types, so whole signatures compare.
template <class T> struct nv {
  using type = T;
};
template <class T> using nv_t = typename nv<T>::type;
template <class T> struct nv<T *> {
  using type = nv_t<T> *;
};
template <class T> struct nv<const T> {
  using type = const nv_t<T>;
};
template <class R, class... A> struct nv<R (*)(A...)> {
  using type = nv_t<R> (*)(nv_t<A>...);
};

#define VRAM_SAME_TYPE(T)                                                                          \
  template <> struct nv<ours::T> {                                                                 \
    using type = ::T;                                                                              \
  }
VRAM_SAME_TYPE(CUctx_st);
VRAM_SAME_TYPE(CUstream_st);
VRAM_SAME_TYPE(CUevent_st);
VRAM_SAME_TYPE(CUarray_st);
VRAM_SAME_TYPE(CUuuid);
VRAM_SAME_TYPE(CUresult);
VRAM_SAME_TYPE(CUdevice_attribute);
VRAM_SAME_TYPE(CUctx_flags);
VRAM_SAME_TYPE(CUstream_flags);
VRAM_SAME_TYPE(CUevent_flags);
VRAM_SAME_TYPE(CUmemorytype);
VRAM_SAME_TYPE(CUDA_MEMCPY2D);
VRAM_SAME_TYPE(CUmemAllocationType);
VRAM_SAME_TYPE(CUmemAllocationHandleType);
VRAM_SAME_TYPE(CUmemLocationType);
VRAM_SAME_TYPE(CUmemAccess_flags);
VRAM_SAME_TYPE(CUmemAllocationGranularity_flags);
VRAM_SAME_TYPE(CUmemLocation);
VRAM_SAME_TYPE(CUmemAllocationProp);
VRAM_SAME_TYPE(CUmemAccessDesc);
VRAM_SAME_TYPE(CUdriverProcAddress_flags);
VRAM_SAME_TYPE(CUdriverProcAddressQueryResult);
#undef VRAM_SAME_TYPE

// ---- Scalars and handles ----------------------------------------------------

static_assert(std::is_same_v<ours::cuuint64_t, ::cuuint64_t>);
static_assert(std::is_same_v<ours::CUdevice, ::CUdevice>);
static_assert(std::is_same_v<ours::CUdeviceptr, ::CUdeviceptr>);
static_assert(std::is_same_v<ours::CUmemGenericAllocationHandle, ::CUmemGenericAllocationHandle>);
static_assert(std::is_same_v<nv_t<ours::CUcontext>, ::CUcontext>);
static_assert(std::is_same_v<nv_t<ours::CUstream>, ::CUstream>);
static_assert(std::is_same_v<nv_t<ours::CUevent>, ::CUevent>);
static_assert(std::is_same_v<nv_t<ours::CUarray>, ::CUarray>);
static_assert(sizeof(ours::CUuuid) == sizeof(::CUuuid) &&
              alignof(ours::CUuuid) == alignof(::CUuuid));
static_assert(offsetof(ours::CUuuid, bytes) == offsetof(::CUuuid, bytes));
static_assert(std::is_same_v<decltype(ours::CUuuid::bytes), decltype(::CUuuid::bytes)>);

// ---- Enumerations ------------------------------------------------------------

#define VRAM_SAME_ENUM(T)                                                                          \
  static_assert(sizeof(ours::T) == sizeof(::T) &&                                                  \
                  std::is_same_v<std::underlying_type_t<ours::T>, std::underlying_type_t<::T>>,    \
                #T " has another size or underlying type")
VRAM_SAME_ENUM(CUresult);
VRAM_SAME_ENUM(CUdevice_attribute);
VRAM_SAME_ENUM(CUctx_flags);
VRAM_SAME_ENUM(CUstream_flags);
VRAM_SAME_ENUM(CUevent_flags);
VRAM_SAME_ENUM(CUmemorytype);
VRAM_SAME_ENUM(CUmemAllocationType);
VRAM_SAME_ENUM(CUmemAllocationHandleType);
VRAM_SAME_ENUM(CUmemLocationType);
VRAM_SAME_ENUM(CUmemAccess_flags);
VRAM_SAME_ENUM(CUmemAllocationGranularity_flags);
VRAM_SAME_ENUM(CUdriverProcAddress_flags);
VRAM_SAME_ENUM(CUdriverProcAddressQueryResult);
#undef VRAM_SAME_ENUM

#define VRAM_SAME_VALUE(E)                                                                         \
  static_assert(static_cast<long long>(ours::E) == static_cast<long long>(::E), #E " differs")
VRAM_SAME_VALUE(CUDA_SUCCESS);
VRAM_SAME_VALUE(CUDA_ERROR_INVALID_VALUE);
VRAM_SAME_VALUE(CUDA_ERROR_OUT_OF_MEMORY);
VRAM_SAME_VALUE(CUDA_ERROR_NOT_INITIALIZED);
VRAM_SAME_VALUE(CUDA_ERROR_DEINITIALIZED);
VRAM_SAME_VALUE(CUDA_ERROR_STUB_LIBRARY);
VRAM_SAME_VALUE(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER);
VRAM_SAME_VALUE(CUDA_ERROR_DEVICE_UNAVAILABLE);
VRAM_SAME_VALUE(CUDA_ERROR_NO_DEVICE);
VRAM_SAME_VALUE(CUDA_ERROR_INVALID_DEVICE);
VRAM_SAME_VALUE(CUDA_ERROR_DEVICE_NOT_LICENSED);
VRAM_SAME_VALUE(CUDA_ERROR_INVALID_IMAGE);
VRAM_SAME_VALUE(CUDA_ERROR_INVALID_CONTEXT);
VRAM_SAME_VALUE(CUDA_ERROR_CONTEXT_ALREADY_CURRENT);
VRAM_SAME_VALUE(CUDA_ERROR_MAP_FAILED);
VRAM_SAME_VALUE(CUDA_ERROR_UNMAP_FAILED);
VRAM_SAME_VALUE(CUDA_ERROR_ECC_UNCORRECTABLE);
VRAM_SAME_VALUE(CUDA_ERROR_UNSUPPORTED_LIMIT);
VRAM_SAME_VALUE(CUDA_ERROR_CONTEXT_ALREADY_IN_USE);
VRAM_SAME_VALUE(CUDA_ERROR_NVLINK_UNCORRECTABLE);
VRAM_SAME_VALUE(CUDA_ERROR_OPERATING_SYSTEM);
VRAM_SAME_VALUE(CUDA_ERROR_INVALID_HANDLE);
VRAM_SAME_VALUE(CUDA_ERROR_ILLEGAL_STATE);
VRAM_SAME_VALUE(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
VRAM_SAME_VALUE(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
VRAM_SAME_VALUE(CUDA_ERROR_NOT_FOUND);
VRAM_SAME_VALUE(CUDA_ERROR_NOT_READY);
VRAM_SAME_VALUE(CUDA_ERROR_ILLEGAL_ADDRESS);
VRAM_SAME_VALUE(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES);
VRAM_SAME_VALUE(CUDA_ERROR_LAUNCH_TIMEOUT);
VRAM_SAME_VALUE(CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE);
VRAM_SAME_VALUE(CUDA_ERROR_CONTEXT_IS_DESTROYED);
VRAM_SAME_VALUE(CUDA_ERROR_ASSERT);
VRAM_SAME_VALUE(CUDA_ERROR_HARDWARE_STACK_ERROR);
VRAM_SAME_VALUE(CUDA_ERROR_ILLEGAL_INSTRUCTION);
VRAM_SAME_VALUE(CUDA_ERROR_MISALIGNED_ADDRESS);
VRAM_SAME_VALUE(CUDA_ERROR_INVALID_ADDRESS_SPACE);
VRAM_SAME_VALUE(CUDA_ERROR_INVALID_PC);
VRAM_SAME_VALUE(CUDA_ERROR_LAUNCH_FAILED);
VRAM_SAME_VALUE(CUDA_ERROR_NOT_PERMITTED);
VRAM_SAME_VALUE(CUDA_ERROR_NOT_SUPPORTED);
VRAM_SAME_VALUE(CUDA_ERROR_SYSTEM_NOT_READY);
VRAM_SAME_VALUE(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH);
VRAM_SAME_VALUE(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE);
VRAM_SAME_VALUE(CUDA_ERROR_TIMEOUT);
VRAM_SAME_VALUE(CUDA_ERROR_EXTERNAL_DEVICE);
VRAM_SAME_VALUE(CUDA_ERROR_CONTAINED);
VRAM_SAME_VALUE(CUDA_ERROR_UNKNOWN);

VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_ECC_ENABLED);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
VRAM_SAME_VALUE(CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED);

VRAM_SAME_VALUE(CU_CTX_SCHED_AUTO);
VRAM_SAME_VALUE(CU_CTX_SCHED_SPIN);
VRAM_SAME_VALUE(CU_CTX_SCHED_YIELD);
VRAM_SAME_VALUE(CU_CTX_SCHED_BLOCKING_SYNC);
VRAM_SAME_VALUE(CU_CTX_SCHED_MASK);
VRAM_SAME_VALUE(CU_CTX_MAP_HOST);
VRAM_SAME_VALUE(CU_CTX_LMEM_RESIZE_TO_MAX);
VRAM_SAME_VALUE(CU_CTX_FLAGS_MASK);

VRAM_SAME_VALUE(CU_STREAM_DEFAULT);
VRAM_SAME_VALUE(CU_STREAM_NON_BLOCKING);
VRAM_SAME_VALUE(CU_EVENT_DEFAULT);
VRAM_SAME_VALUE(CU_EVENT_BLOCKING_SYNC);
VRAM_SAME_VALUE(CU_EVENT_DISABLE_TIMING);
VRAM_SAME_VALUE(CU_EVENT_INTERPROCESS);

VRAM_SAME_VALUE(CU_MEMORYTYPE_HOST);
VRAM_SAME_VALUE(CU_MEMORYTYPE_DEVICE);
VRAM_SAME_VALUE(CU_MEMORYTYPE_ARRAY);
VRAM_SAME_VALUE(CU_MEMORYTYPE_UNIFIED);

VRAM_SAME_VALUE(CU_MEM_ALLOCATION_TYPE_INVALID);
VRAM_SAME_VALUE(CU_MEM_ALLOCATION_TYPE_PINNED);
VRAM_SAME_VALUE(CU_MEM_ALLOCATION_TYPE_MANAGED);
VRAM_SAME_VALUE(CU_MEM_HANDLE_TYPE_NONE);
VRAM_SAME_VALUE(CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
VRAM_SAME_VALUE(CU_MEM_LOCATION_TYPE_INVALID);
VRAM_SAME_VALUE(CU_MEM_LOCATION_TYPE_DEVICE);
VRAM_SAME_VALUE(CU_MEM_LOCATION_TYPE_HOST);
VRAM_SAME_VALUE(CU_MEM_ACCESS_FLAGS_PROT_NONE);
VRAM_SAME_VALUE(CU_MEM_ACCESS_FLAGS_PROT_READ);
VRAM_SAME_VALUE(CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
VRAM_SAME_VALUE(CU_MEM_ALLOC_GRANULARITY_MINIMUM);
VRAM_SAME_VALUE(CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);

VRAM_SAME_VALUE(CU_GET_PROC_ADDRESS_DEFAULT);
VRAM_SAME_VALUE(CU_GET_PROC_ADDRESS_LEGACY_STREAM);
VRAM_SAME_VALUE(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
VRAM_SAME_VALUE(CU_GET_PROC_ADDRESS_SUCCESS);
VRAM_SAME_VALUE(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
VRAM_SAME_VALUE(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
#undef VRAM_SAME_VALUE

static_assert(before::host_portable == CU_MEMHOSTALLOC_PORTABLE);
static_assert(before::host_devicemap == CU_MEMHOSTALLOC_DEVICEMAP);
static_assert(before::host_writecombined == CU_MEMHOSTALLOC_WRITECOMBINED);
static_assert(before::register_portable == CU_MEMHOSTREGISTER_PORTABLE);
static_assert(before::register_devicemap == CU_MEMHOSTREGISTER_DEVICEMAP);

// ---- Structures ----------------------------------------------------------------

#define VRAM_SAME_SHAPE(S)                                                                         \
  static_assert(sizeof(ours::S) == sizeof(::S) && alignof(ours::S) == alignof(::S),                \
                #S " has another size or alignment")
#define VRAM_SAME_FIELD(S, f)                                                                      \
  static_assert(offsetof(ours::S, f) == offsetof(::S, f) &&                                        \
                  std::is_same_v<nv_t<decltype(ours::S::f)>, decltype(::S::f)>,                    \
                #S "::" #f " has another offset or type")

VRAM_SAME_SHAPE(CUDA_MEMCPY2D);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, srcXInBytes);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, srcY);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, srcMemoryType);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, srcHost);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, srcDevice);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, srcArray);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, srcPitch);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, dstXInBytes);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, dstY);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, dstMemoryType);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, dstHost);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, dstDevice);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, dstArray);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, dstPitch);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, WidthInBytes);
VRAM_SAME_FIELD(CUDA_MEMCPY2D, Height);

VRAM_SAME_SHAPE(CUmemLocation);
VRAM_SAME_FIELD(CUmemLocation, type);
VRAM_SAME_FIELD(CUmemLocation, id);

VRAM_SAME_SHAPE(CUmemAllocationProp);
VRAM_SAME_FIELD(CUmemAllocationProp, type);
VRAM_SAME_FIELD(CUmemAllocationProp, requestedHandleTypes);
VRAM_SAME_FIELD(CUmemAllocationProp, location);
VRAM_SAME_FIELD(CUmemAllocationProp, win32HandleMetaData);
// allocFlags is an unnamed struct in both: its fields, one by one.
#define VRAM_SAME_ALLOC_FLAG(f)                                                                    \
  static_assert(offsetof(ours::CUmemAllocationProp, allocFlags.f) ==                               \
                    offsetof(::CUmemAllocationProp, allocFlags.f) &&                               \
                  std::is_same_v<decltype(ours::CUmemAllocationProp{}.allocFlags.f),               \
                                 decltype(::CUmemAllocationProp{}.allocFlags.f)>,                  \
                "CUmemAllocationProp::allocFlags." #f " has another offset or type")
VRAM_SAME_ALLOC_FLAG(compressionType);
VRAM_SAME_ALLOC_FLAG(gpuDirectRDMACapable);
VRAM_SAME_ALLOC_FLAG(usage);
static_assert(sizeof(ours::CUmemAllocationProp{}.allocFlags) ==
              sizeof(::CUmemAllocationProp{}.allocFlags));
#undef VRAM_SAME_ALLOC_FLAG

VRAM_SAME_SHAPE(CUmemAccessDesc);
VRAM_SAME_FIELD(CUmemAccessDesc, location);
VRAM_SAME_FIELD(CUmemAccessDesc, flags);
#undef VRAM_SAME_FIELD
#undef VRAM_SAME_SHAPE

// ---- Entry points ----------------------------------------------------------------

// cuda.h's macros turn each plain name into the variant current in that
// header (cuMemAlloc: cuMemAlloc_v2), the one the driver hands out for
// the plain name; a header whose current variant changed would fail here,
// which is the point: the plugin would then have to pin the old variant.
#define VRAM_SAME_ENTRY(name)                                                                      \
  static_assert(std::is_same_v<nv_t<ours::PFN_##name>, decltype(&::name)>,                         \
                #name ": another signature")
VRAM_SAME_ENTRY(cuInit);
VRAM_SAME_ENTRY(cuDriverGetVersion);
VRAM_SAME_ENTRY(cuGetErrorName);
VRAM_SAME_ENTRY(cuGetErrorString);
VRAM_SAME_ENTRY(cuDeviceGetCount);
VRAM_SAME_ENTRY(cuDeviceGet);
VRAM_SAME_ENTRY(cuDeviceGetName);
VRAM_SAME_ENTRY(cuDeviceGetUuid);
VRAM_SAME_ENTRY(cuDeviceTotalMem);
VRAM_SAME_ENTRY(cuDeviceGetAttribute);
VRAM_SAME_ENTRY(cuDeviceGetPCIBusId);
VRAM_SAME_ENTRY(cuDeviceGetByPCIBusId);
VRAM_SAME_ENTRY(cuDevicePrimaryCtxRetain);
VRAM_SAME_ENTRY(cuDevicePrimaryCtxRelease);
VRAM_SAME_ENTRY(cuDevicePrimaryCtxSetFlags);
VRAM_SAME_ENTRY(cuDevicePrimaryCtxGetState);
VRAM_SAME_ENTRY(cuCtxSetCurrent);
VRAM_SAME_ENTRY(cuCtxGetCurrent);
VRAM_SAME_ENTRY(cuCtxSynchronize);
VRAM_SAME_ENTRY(cuMemGetInfo);
VRAM_SAME_ENTRY(cuMemAlloc);
VRAM_SAME_ENTRY(cuMemFree);
VRAM_SAME_ENTRY(cuMemHostAlloc);
VRAM_SAME_ENTRY(cuMemFreeHost);
VRAM_SAME_ENTRY(cuMemHostRegister);
VRAM_SAME_ENTRY(cuMemHostUnregister);
VRAM_SAME_ENTRY(cuStreamCreate);
VRAM_SAME_ENTRY(cuStreamDestroy);
VRAM_SAME_ENTRY(cuStreamSynchronize);
VRAM_SAME_ENTRY(cuEventCreate);
VRAM_SAME_ENTRY(cuEventDestroy);
VRAM_SAME_ENTRY(cuEventRecord);
VRAM_SAME_ENTRY(cuEventSynchronize);
VRAM_SAME_ENTRY(cuMemcpyHtoD);
VRAM_SAME_ENTRY(cuMemcpyDtoH);
VRAM_SAME_ENTRY(cuMemcpyHtoDAsync);
VRAM_SAME_ENTRY(cuMemcpyDtoHAsync);
VRAM_SAME_ENTRY(cuMemcpyDtoDAsync);
VRAM_SAME_ENTRY(cuMemcpy2DAsync);
VRAM_SAME_ENTRY(cuMemsetD8);
VRAM_SAME_ENTRY(cuMemsetD8Async);
VRAM_SAME_ENTRY(cuMemsetD32Async);
VRAM_SAME_ENTRY(cuMemsetD2D8Async);
VRAM_SAME_ENTRY(cuMemGetAllocationGranularity);
VRAM_SAME_ENTRY(cuMemAddressReserve);
VRAM_SAME_ENTRY(cuMemAddressFree);
VRAM_SAME_ENTRY(cuMemCreate);
VRAM_SAME_ENTRY(cuMemRelease);
VRAM_SAME_ENTRY(cuMemMap);
VRAM_SAME_ENTRY(cuMemUnmap);
VRAM_SAME_ENTRY(cuMemSetAccess);
#undef VRAM_SAME_ENTRY
// cuGetProcAddress is cuGetProcAddress_v2 in cuda.h.
static_assert(std::is_same_v<nv_t<ours::PFN_cuGetProcAddress_v2>, decltype(&::cuGetProcAddress)>);

TEST(CudaAbi, StreamHandlesAreTheDriversSpecialValues)
{
  EXPECT_EQ(before::stream_legacy, reinterpret_cast<std::uintptr_t>(CU_STREAM_LEGACY));
  EXPECT_EQ(before::stream_per_thread, reinterpret_cast<std::uintptr_t>(CU_STREAM_PER_THREAD));
}

TEST(CudaAbi, CheckedAgainstAHeaderAtLeastAsNewAsTheApiVersionAsked)
{
  // The static_asserts above ran against this header.
  EXPECT_GE(CUDA_VERSION, ours::api_version);
}

} // namespace
