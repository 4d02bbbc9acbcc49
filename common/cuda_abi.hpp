// The part of the CUDA Driver API that nbdkit-vram uses, declared here so
// the project builds with nothing from NVIDIA installed: Debian main has no
// cuda.h, and the plugin never links libcuda (it dlopen()s libcuda.so.1 and
// resolves every entry point through cuGetProcAddress).
//
// Written from the Driver API's documented ABI (x86-64 and aarch64 Linux):
// the handle, struct and enum types the calls take, the enumerator values,
// and the type of each entry point as the driver hands it out for
// `api_version` (the signatures current since CUDA 12.0).  Only what the
// plugin, the benchmarks and the test driver use is here.  Where a cuda.h
// is installed, tests/unit/cuda_abi_check.cpp checks every declaration
// against it: sizes, field offsets, enumerator values and signatures.
//
// The names are the Driver API's own, so code reads like any CUDA code.
// They live in vram::cuda_abi and are brought to the global namespace,
// where cuda.h would put them, unless VRAM_CUDA_ABI_NO_GLOBAL is defined
// (the check, which includes cuda.h as well).  Constants that cuda.h
// makes macros are constexpr variables here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vram::cuda_abi {

static_assert(sizeof(void *) == 8, "the CUDA Driver API declared here is the 64-bit one");

// The CUDA version (1000 * major + 10 * minor) whose entry points these
// types describe: what the plugin passes to cuGetProcAddress.
inline constexpr int api_version = 12000;

// ---- Scalars and handles --------------------------------------------------

using cuuint64_t = std::uint64_t;
using CUdevice = int;                   // a device ordinal
using CUdeviceptr = unsigned long long; // a device address
using CUmemGenericAllocationHandle = unsigned long long;

struct CUctx_st;
struct CUstream_st;
struct CUevent_st;
struct CUarray_st;
using CUcontext = CUctx_st *;
using CUstream = CUstream_st *;
using CUevent = CUevent_st *;
using CUarray = CUarray_st *;

struct CUuuid_st {
  char bytes[16];
};
using CUuuid = CUuuid_st;

// ---- Results --------------------------------------------------------------

enum cudaError_enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_DEINITIALIZED = 4,
  CUDA_ERROR_STUB_LIBRARY = 34,
  CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER = 36,
  CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_DEVICE_NOT_LICENSED = 102,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_CONTEXT_ALREADY_CURRENT = 202,
  CUDA_ERROR_MAP_FAILED = 205,
  CUDA_ERROR_UNMAP_FAILED = 206,
  CUDA_ERROR_ECC_UNCORRECTABLE = 214,
  CUDA_ERROR_UNSUPPORTED_LIMIT = 215,
  CUDA_ERROR_CONTEXT_ALREADY_IN_USE = 216,
  CUDA_ERROR_NVLINK_UNCORRECTABLE = 220,
  CUDA_ERROR_CONTAINED = 226,
  CUDA_ERROR_OPERATING_SYSTEM = 304,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_ILLEGAL_STATE = 401,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_NOT_READY = 600,
  CUDA_ERROR_ILLEGAL_ADDRESS = 700,
  CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
  CUDA_ERROR_LAUNCH_TIMEOUT = 702,
  CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE = 708,
  CUDA_ERROR_CONTEXT_IS_DESTROYED = 709,
  CUDA_ERROR_ASSERT = 710,
  CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
  CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED = 713,
  CUDA_ERROR_HARDWARE_STACK_ERROR = 714,
  CUDA_ERROR_ILLEGAL_INSTRUCTION = 715,
  CUDA_ERROR_MISALIGNED_ADDRESS = 716,
  CUDA_ERROR_INVALID_ADDRESS_SPACE = 717,
  CUDA_ERROR_INVALID_PC = 718,
  CUDA_ERROR_LAUNCH_FAILED = 719,
  CUDA_ERROR_NOT_PERMITTED = 800,
  CUDA_ERROR_NOT_SUPPORTED = 801,
  CUDA_ERROR_SYSTEM_NOT_READY = 802,
  CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
  CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804,
  CUDA_ERROR_TIMEOUT = 909,
  CUDA_ERROR_EXTERNAL_DEVICE = 911,
  CUDA_ERROR_UNKNOWN = 999,
};
using CUresult = cudaError_enum;

// ---- Devices --------------------------------------------------------------

enum CUdevice_attribute_enum {
  CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT = 17,
  CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY = 19,
  CU_DEVICE_ATTRIBUTE_ECC_ENABLED = 32,
  CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
  CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34,
  CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT = 40,
  CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41,
  CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED = 102,
};
using CUdevice_attribute = CUdevice_attribute_enum;

// Primary context flags (cuDevicePrimaryCtxSetFlags).
enum CUctx_flags_enum {
  CU_CTX_SCHED_AUTO = 0x00,
  CU_CTX_SCHED_SPIN = 0x01,
  CU_CTX_SCHED_YIELD = 0x02,
  CU_CTX_SCHED_BLOCKING_SYNC = 0x04,
  CU_CTX_SCHED_MASK = 0x07,
  CU_CTX_MAP_HOST = 0x08,
  CU_CTX_LMEM_RESIZE_TO_MAX = 0x10,
  CU_CTX_FLAGS_MASK = 0xFF, // every flag bit a driver accepts
};
using CUctx_flags = CUctx_flags_enum;

// ---- Streams and events ---------------------------------------------------

enum CUstream_flags_enum {
  CU_STREAM_DEFAULT = 0x0,
  CU_STREAM_NON_BLOCKING = 0x1,
};
using CUstream_flags = CUstream_flags_enum;

// The two special stream handles (macros in cuda.h).
inline CUstream const CU_STREAM_LEGACY = reinterpret_cast<CUstream>(0x1);
inline CUstream const CU_STREAM_PER_THREAD = reinterpret_cast<CUstream>(0x2);

enum CUevent_flags_enum {
  CU_EVENT_DEFAULT = 0x0,
  CU_EVENT_BLOCKING_SYNC = 0x1,
  CU_EVENT_DISABLE_TIMING = 0x2,
  CU_EVENT_INTERPROCESS = 0x4,
};
using CUevent_flags = CUevent_flags_enum;

// ---- Memory ---------------------------------------------------------------

// cuMemHostAlloc flags (macros in cuda.h).
inline constexpr unsigned int CU_MEMHOSTALLOC_PORTABLE = 0x01;
inline constexpr unsigned int CU_MEMHOSTALLOC_DEVICEMAP = 0x02;
inline constexpr unsigned int CU_MEMHOSTALLOC_WRITECOMBINED = 0x04;
// cuMemHostRegister flags (macros in cuda.h).
inline constexpr unsigned int CU_MEMHOSTREGISTER_PORTABLE = 0x01;
inline constexpr unsigned int CU_MEMHOSTREGISTER_DEVICEMAP = 0x02;

enum CUmemorytype_enum {
  CU_MEMORYTYPE_HOST = 0x01,
  CU_MEMORYTYPE_DEVICE = 0x02,
  CU_MEMORYTYPE_ARRAY = 0x03,
  CU_MEMORYTYPE_UNIFIED = 0x04,
};
using CUmemorytype = CUmemorytype_enum;

// A 2D copy (cuMemcpy2DAsync): rows of WidthInBytes, Height of them, from
// a source and to a destination that each have a type, a start and a pitch.
struct CUDA_MEMCPY2D_st {
  std::size_t srcXInBytes;
  std::size_t srcY;
  CUmemorytype srcMemoryType;
  const void *srcHost;
  CUdeviceptr srcDevice;
  CUarray srcArray;
  std::size_t srcPitch;

  std::size_t dstXInBytes;
  std::size_t dstY;
  CUmemorytype dstMemoryType;
  void *dstHost;
  CUdeviceptr dstDevice;
  CUarray dstArray;
  std::size_t dstPitch;

  std::size_t WidthInBytes;
  std::size_t Height;
};
using CUDA_MEMCPY2D = CUDA_MEMCPY2D_st;

// ---- Virtual memory management (allocation=lazy) --------------------------

enum CUmemAllocationType_enum {
  CU_MEM_ALLOCATION_TYPE_INVALID = 0x0,
  CU_MEM_ALLOCATION_TYPE_PINNED = 0x1,
  CU_MEM_ALLOCATION_TYPE_MANAGED = 0x2,
};
using CUmemAllocationType = CUmemAllocationType_enum;

enum CUmemAllocationHandleType_enum {
  CU_MEM_HANDLE_TYPE_NONE = 0x0,
  CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR = 0x1,
};
using CUmemAllocationHandleType = CUmemAllocationHandleType_enum;

enum CUmemLocationType_enum {
  CU_MEM_LOCATION_TYPE_INVALID = 0x0,
  CU_MEM_LOCATION_TYPE_DEVICE = 0x1,
  CU_MEM_LOCATION_TYPE_HOST = 0x2,
};
using CUmemLocationType = CUmemLocationType_enum;

enum CUmemAccess_flags_enum {
  CU_MEM_ACCESS_FLAGS_PROT_NONE = 0x0,
  CU_MEM_ACCESS_FLAGS_PROT_READ = 0x1,
  CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 0x3,
};
using CUmemAccess_flags = CUmemAccess_flags_enum;

enum CUmemAllocationGranularity_flags_enum {
  CU_MEM_ALLOC_GRANULARITY_MINIMUM = 0x0,
  CU_MEM_ALLOC_GRANULARITY_RECOMMENDED = 0x1,
};
using CUmemAllocationGranularity_flags = CUmemAllocationGranularity_flags_enum;

struct CUmemLocation_st {
  CUmemLocationType type;
  int id; // the device ordinal, for CU_MEM_LOCATION_TYPE_DEVICE
};
using CUmemLocation = CUmemLocation_st;

struct CUmemAllocationProp_st {
  CUmemAllocationType type;
  CUmemAllocationHandleType requestedHandleTypes;
  CUmemLocation location;
  void *win32HandleMetaData; // Windows only; null here
  struct {
    unsigned char compressionType;
    unsigned char gpuDirectRDMACapable;
    unsigned short usage;
    unsigned char reserved[4];
  } allocFlags;
};
using CUmemAllocationProp = CUmemAllocationProp_st;

struct CUmemAccessDesc_st {
  CUmemLocation location;
  CUmemAccess_flags flags;
};
using CUmemAccessDesc = CUmemAccessDesc_st;

// ---- Entry points ---------------------------------------------------------

enum CUdriverProcAddress_flags_enum {
  CU_GET_PROC_ADDRESS_DEFAULT = 0,
  CU_GET_PROC_ADDRESS_LEGACY_STREAM = 1 << 0,
  CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM = 1 << 1,
};
using CUdriverProcAddress_flags = CUdriverProcAddress_flags_enum;

enum CUdriverProcAddressQueryResult_enum {
  CU_GET_PROC_ADDRESS_SUCCESS = 0,
  CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1,
  CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT = 2,
};
using CUdriverProcAddressQueryResult = CUdriverProcAddressQueryResult_enum;

// The type of each entry point, named PFN_<the name asked for>.  Where the
// driver exports versioned symbols, the name asked for is the plain one
// and the driver hands out the variant current at api_version (cuMemAlloc:
// cuMemAlloc_v2); the test driver defines that variant under its own name.

// Found with dlsym(): the way to everything else.
using PFN_cuGetProcAddress_v2 = CUresult (*)(const char *symbol, void **pfn, int cudaVersion,
                                             cuuint64_t flags,
                                             CUdriverProcAddressQueryResult *symbolStatus);
using PFN_cuGetProcAddress_v1 = CUresult (*)(const char *symbol, void **pfn, int cudaVersion,
                                             cuuint64_t flags);

using PFN_cuInit = CUresult (*)(unsigned int flags);
using PFN_cuDriverGetVersion = CUresult (*)(int *driverVersion);
using PFN_cuGetErrorName = CUresult (*)(CUresult error, const char **pStr);
using PFN_cuGetErrorString = CUresult (*)(CUresult error, const char **pStr);

using PFN_cuDeviceGetCount = CUresult (*)(int *count);
using PFN_cuDeviceGet = CUresult (*)(CUdevice *device, int ordinal);
using PFN_cuDeviceGetName = CUresult (*)(char *name, int len, CUdevice dev);
using PFN_cuDeviceGetUuid = CUresult (*)(CUuuid *uuid, CUdevice dev);
using PFN_cuDeviceTotalMem = CUresult (*)(std::size_t *bytes, CUdevice dev);
using PFN_cuDeviceGetAttribute = CUresult (*)(int *pi, CUdevice_attribute attrib, CUdevice dev);
using PFN_cuDeviceGetPCIBusId = CUresult (*)(char *pciBusId, int len, CUdevice dev);
using PFN_cuDeviceGetByPCIBusId = CUresult (*)(CUdevice *dev, const char *pciBusId);

using PFN_cuDevicePrimaryCtxRetain = CUresult (*)(CUcontext *pctx, CUdevice dev);
using PFN_cuDevicePrimaryCtxRelease = CUresult (*)(CUdevice dev);
using PFN_cuDevicePrimaryCtxSetFlags = CUresult (*)(CUdevice dev, unsigned int flags);
using PFN_cuDevicePrimaryCtxGetState = CUresult (*)(CUdevice dev, unsigned int *flags, int *active);
using PFN_cuCtxSetCurrent = CUresult (*)(CUcontext ctx);
using PFN_cuCtxGetCurrent = CUresult (*)(CUcontext *pctx);
using PFN_cuCtxSynchronize = CUresult (*)();

using PFN_cuMemGetInfo = CUresult (*)(std::size_t *free, std::size_t *total);
using PFN_cuMemAlloc = CUresult (*)(CUdeviceptr *dptr, std::size_t bytesize);
using PFN_cuMemFree = CUresult (*)(CUdeviceptr dptr);
using PFN_cuMemHostAlloc = CUresult (*)(void **pp, std::size_t bytesize, unsigned int flags);
using PFN_cuMemFreeHost = CUresult (*)(void *p);
using PFN_cuMemHostRegister = CUresult (*)(void *p, std::size_t bytesize, unsigned int flags);
using PFN_cuMemHostUnregister = CUresult (*)(void *p);

using PFN_cuStreamCreate = CUresult (*)(CUstream *phStream, unsigned int flags);
using PFN_cuStreamDestroy = CUresult (*)(CUstream hStream);
using PFN_cuStreamSynchronize = CUresult (*)(CUstream hStream);
using PFN_cuEventCreate = CUresult (*)(CUevent *phEvent, unsigned int flags);
using PFN_cuEventDestroy = CUresult (*)(CUevent hEvent);
using PFN_cuEventRecord = CUresult (*)(CUevent hEvent, CUstream hStream);
using PFN_cuEventSynchronize = CUresult (*)(CUevent hEvent);

using PFN_cuMemcpyHtoD = CUresult (*)(CUdeviceptr dstDevice, const void *srcHost,
                                      std::size_t byteCount);
using PFN_cuMemcpyDtoH = CUresult (*)(void *dstHost, CUdeviceptr srcDevice, std::size_t byteCount);
using PFN_cuMemcpyHtoDAsync = CUresult (*)(CUdeviceptr dstDevice, const void *srcHost,
                                           std::size_t byteCount, CUstream hStream);
using PFN_cuMemcpyDtoHAsync = CUresult (*)(void *dstHost, CUdeviceptr srcDevice,
                                           std::size_t byteCount, CUstream hStream);
using PFN_cuMemcpyDtoDAsync = CUresult (*)(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                           std::size_t byteCount, CUstream hStream);
using PFN_cuMemcpy2DAsync = CUresult (*)(const CUDA_MEMCPY2D *pCopy, CUstream hStream);
using PFN_cuMemsetD8 = CUresult (*)(CUdeviceptr dstDevice, unsigned char uc, std::size_t n);
using PFN_cuMemsetD8Async = CUresult (*)(CUdeviceptr dstDevice, unsigned char uc, std::size_t n,
                                         CUstream hStream);
using PFN_cuMemsetD32Async = CUresult (*)(CUdeviceptr dstDevice, unsigned int ui, std::size_t n,
                                          CUstream hStream);
using PFN_cuMemsetD2D8Async = CUresult (*)(CUdeviceptr dstDevice, std::size_t dstPitch,
                                           unsigned char uc, std::size_t width, std::size_t height,
                                           CUstream hStream);

using PFN_cuMemGetAllocationGranularity = CUresult (*)(std::size_t *granularity,
                                                       const CUmemAllocationProp *prop,
                                                       CUmemAllocationGranularity_flags option);
using PFN_cuMemAddressReserve = CUresult (*)(CUdeviceptr *ptr, std::size_t size,
                                             std::size_t alignment, CUdeviceptr addr,
                                             unsigned long long flags);
using PFN_cuMemAddressFree = CUresult (*)(CUdeviceptr ptr, std::size_t size);
using PFN_cuMemCreate = CUresult (*)(CUmemGenericAllocationHandle *handle, std::size_t size,
                                     const CUmemAllocationProp *prop, unsigned long long flags);
using PFN_cuMemRelease = CUresult (*)(CUmemGenericAllocationHandle handle);
using PFN_cuMemMap = CUresult (*)(CUdeviceptr ptr, std::size_t size, std::size_t offset,
                                  CUmemGenericAllocationHandle handle, unsigned long long flags);
using PFN_cuMemUnmap = CUresult (*)(CUdeviceptr ptr, std::size_t size);
using PFN_cuMemSetAccess = CUresult (*)(CUdeviceptr ptr, std::size_t size,
                                        const CUmemAccessDesc *desc, std::size_t count);

} // namespace vram::cuda_abi

#ifndef VRAM_CUDA_ABI_NO_GLOBAL
using namespace vram::cuda_abi; // NOLINT: the Driver API's names are global in every CUDA program
#endif
