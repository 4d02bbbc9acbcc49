// The symbols the fake exports, declared with the entry-point types of
// common/cuda_abi.hpp: each definition (api.cpp, proc_address.cpp) must
// match its declaration here, so the fake hands out exactly the signatures
// the plugin calls through, and tests/unit/cuda_abi_check.cpp ties those
// to NVIDIA's.  The names are the exported ones: the variant a driver
// hands out for the plain name at the API version the plugin asks for
// (cuMemAlloc_v2 for cuMemAlloc), and the few older variants kept for
// callers that look them up by symbol.
#pragma once

#include "cuda_abi.hpp"

#include <type_traits>

#define FC_API extern "C" __attribute__((visibility("default")))
#define FC_DECLARE(symbol, pfn) FC_API std::remove_pointer_t<vram::cuda_abi::pfn> symbol

FC_DECLARE(cuGetProcAddress_v2, PFN_cuGetProcAddress_v2);
FC_DECLARE(cuGetProcAddress, PFN_cuGetProcAddress_v1); // before CUDA 12.0

FC_DECLARE(cuInit, PFN_cuInit);
FC_DECLARE(cuDriverGetVersion, PFN_cuDriverGetVersion);
FC_DECLARE(cuGetErrorName, PFN_cuGetErrorName);
FC_DECLARE(cuGetErrorString, PFN_cuGetErrorString);

FC_DECLARE(cuDeviceGetCount, PFN_cuDeviceGetCount);
FC_DECLARE(cuDeviceGet, PFN_cuDeviceGet);
FC_DECLARE(cuDeviceGetName, PFN_cuDeviceGetName);
FC_DECLARE(cuDeviceGetUuid_v2, PFN_cuDeviceGetUuid);
FC_DECLARE(cuDeviceGetUuid, PFN_cuDeviceGetUuid); // v1: the same signature
FC_DECLARE(cuDeviceTotalMem_v2, PFN_cuDeviceTotalMem);
FC_DECLARE(cuDeviceGetAttribute, PFN_cuDeviceGetAttribute);
FC_DECLARE(cuDeviceGetPCIBusId, PFN_cuDeviceGetPCIBusId);
FC_DECLARE(cuDeviceGetByPCIBusId, PFN_cuDeviceGetByPCIBusId);

FC_DECLARE(cuDevicePrimaryCtxRetain, PFN_cuDevicePrimaryCtxRetain);
FC_DECLARE(cuDevicePrimaryCtxRelease_v2, PFN_cuDevicePrimaryCtxRelease);
FC_DECLARE(cuDevicePrimaryCtxSetFlags_v2, PFN_cuDevicePrimaryCtxSetFlags);
FC_DECLARE(cuDevicePrimaryCtxGetState, PFN_cuDevicePrimaryCtxGetState);
FC_DECLARE(cuCtxSetCurrent, PFN_cuCtxSetCurrent);
FC_DECLARE(cuCtxGetCurrent, PFN_cuCtxGetCurrent);
FC_DECLARE(cuCtxSynchronize, PFN_cuCtxSynchronize);

FC_DECLARE(cuMemGetInfo_v2, PFN_cuMemGetInfo);
FC_DECLARE(cuMemAlloc_v2, PFN_cuMemAlloc);
FC_DECLARE(cuMemFree_v2, PFN_cuMemFree);
FC_DECLARE(cuMemHostAlloc, PFN_cuMemHostAlloc);
FC_DECLARE(cuMemFreeHost, PFN_cuMemFreeHost);
FC_DECLARE(cuMemHostRegister_v2, PFN_cuMemHostRegister);
FC_DECLARE(cuMemHostUnregister, PFN_cuMemHostUnregister);

FC_DECLARE(cuMemGetAllocationGranularity, PFN_cuMemGetAllocationGranularity);
FC_DECLARE(cuMemCreate, PFN_cuMemCreate);
FC_DECLARE(cuMemRelease, PFN_cuMemRelease);
FC_DECLARE(cuMemAddressReserve, PFN_cuMemAddressReserve);
FC_DECLARE(cuMemAddressFree, PFN_cuMemAddressFree);
FC_DECLARE(cuMemMap, PFN_cuMemMap);
FC_DECLARE(cuMemUnmap, PFN_cuMemUnmap);
FC_DECLARE(cuMemSetAccess, PFN_cuMemSetAccess);

FC_DECLARE(cuMemcpyHtoD_v2, PFN_cuMemcpyHtoD);
FC_DECLARE(cuMemcpyDtoH_v2, PFN_cuMemcpyDtoH);
FC_DECLARE(cuMemcpyHtoDAsync_v2, PFN_cuMemcpyHtoDAsync);
FC_DECLARE(cuMemcpyDtoHAsync_v2, PFN_cuMemcpyDtoHAsync);
FC_DECLARE(cuMemcpy2DAsync_v2, PFN_cuMemcpy2DAsync);
FC_DECLARE(cuMemsetD8_v2, PFN_cuMemsetD8);
FC_DECLARE(cuMemsetD8Async, PFN_cuMemsetD8Async);

FC_DECLARE(cuStreamCreate, PFN_cuStreamCreate);
FC_DECLARE(cuStreamDestroy_v2, PFN_cuStreamDestroy);
FC_DECLARE(cuStreamSynchronize, PFN_cuStreamSynchronize);
FC_DECLARE(cuEventCreate, PFN_cuEventCreate);
FC_DECLARE(cuEventDestroy_v2, PFN_cuEventDestroy);
FC_DECLARE(cuEventRecord, PFN_cuEventRecord);
FC_DECLARE(cuEventSynchronize, PFN_cuEventSynchronize);

#undef FC_DECLARE
