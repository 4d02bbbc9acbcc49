#include "errors.hpp"

#include <charconv>
#include <iterator>

namespace fakecuda {
namespace {

// The names come from the enumerator identifiers themselves (stringised),
// so they always match the enumerators. The descriptions are short
// paraphrases of the meaning of each code, good enough for log messages in
// tests. Every code the
// fake can return on its own is listed, plus the ones tests like to inject.
#define FC_ERROR(code, text)                                                                       \
  ErrorInfo { code, #code, text }
constexpr ErrorInfo kErrors[] = {
  FC_ERROR(CUDA_SUCCESS, "no error"),
  FC_ERROR(CUDA_ERROR_INVALID_VALUE, "invalid argument"),
  FC_ERROR(CUDA_ERROR_OUT_OF_MEMORY, "out of memory"),
  FC_ERROR(CUDA_ERROR_NOT_INITIALIZED, "initialization error"),
  FC_ERROR(CUDA_ERROR_DEINITIALIZED, "driver shutting down"),
  FC_ERROR(CUDA_ERROR_STUB_LIBRARY, "CUDA driver is a stub library"),
  FC_ERROR(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, "API call requires a newer CUDA driver"),
  FC_ERROR(CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA-capable device(s) is/are busy or unavailable"),
  FC_ERROR(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"),
  FC_ERROR(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal"),
  FC_ERROR(CUDA_ERROR_DEVICE_NOT_LICENSED, "device doesn't have valid Grid license"),
  FC_ERROR(CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid"),
  FC_ERROR(CUDA_ERROR_INVALID_CONTEXT, "invalid device context"),
  FC_ERROR(CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "context already current"),
  FC_ERROR(CUDA_ERROR_MAP_FAILED, "mapping of buffer object failed"),
  FC_ERROR(CUDA_ERROR_UNMAP_FAILED, "unmapping of buffer object failed"),
  FC_ERROR(CUDA_ERROR_ECC_UNCORRECTABLE, "uncorrectable ECC error encountered"),
  FC_ERROR(CUDA_ERROR_UNSUPPORTED_LIMIT, "limit is not supported on this architecture"),
  FC_ERROR(CUDA_ERROR_CONTEXT_ALREADY_IN_USE,
           "exclusive-thread device already in use by a different thread"),
  FC_ERROR(CUDA_ERROR_NVLINK_UNCORRECTABLE,
           "uncorrectable NVLink error detected during the execution"),
  FC_ERROR(CUDA_ERROR_CONTAINED,
           "error contained: the device encountered an error that was contained"),
  FC_ERROR(CUDA_ERROR_OPERATING_SYSTEM, "OS call failed or operation not supported on this OS"),
  FC_ERROR(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle"),
  FC_ERROR(CUDA_ERROR_ILLEGAL_STATE, "the operation cannot be performed in the present state"),
  FC_ERROR(CUDA_ERROR_NOT_FOUND, "named symbol not found"),
  FC_ERROR(CUDA_ERROR_NOT_READY, "device not ready"),
  FC_ERROR(CUDA_ERROR_ILLEGAL_ADDRESS, "an illegal memory access was encountered"),
  FC_ERROR(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "too many resources requested for launch"),
  FC_ERROR(CUDA_ERROR_LAUNCH_TIMEOUT, "the launch timed out and was terminated"),
  FC_ERROR(CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "primary context is already active"),
  FC_ERROR(CUDA_ERROR_CONTEXT_IS_DESTROYED, "context is destroyed"),
  FC_ERROR(CUDA_ERROR_ASSERT, "device-side assert triggered"),
  FC_ERROR(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
           "part or all of the requested memory range is already mapped"),
  FC_ERROR(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED,
           "pointer does not correspond to a registered memory region"),
  FC_ERROR(CUDA_ERROR_HARDWARE_STACK_ERROR, "hardware stack error"),
  FC_ERROR(CUDA_ERROR_ILLEGAL_INSTRUCTION, "an illegal instruction was encountered"),
  FC_ERROR(CUDA_ERROR_MISALIGNED_ADDRESS, "misaligned address"),
  FC_ERROR(CUDA_ERROR_INVALID_ADDRESS_SPACE,
           "operation not supported on global/shared address space"),
  FC_ERROR(CUDA_ERROR_INVALID_PC, "invalid program counter"),
  FC_ERROR(CUDA_ERROR_LAUNCH_FAILED, "unspecified launch failure"),
  FC_ERROR(CUDA_ERROR_NOT_PERMITTED, "operation not permitted"),
  FC_ERROR(CUDA_ERROR_NOT_SUPPORTED, "operation not supported"),
  FC_ERROR(CUDA_ERROR_SYSTEM_NOT_READY, "system not yet initialized"),
  FC_ERROR(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
           "system has unsupported display driver / cuda driver combination"),
  FC_ERROR(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE,
           "forward compatibility was attempted on non supported HW"),
  FC_ERROR(CUDA_ERROR_TIMEOUT, "wait operation timed out"),
  FC_ERROR(CUDA_ERROR_EXTERNAL_DEVICE, "an error occurred in an external device"),
  FC_ERROR(CUDA_ERROR_UNKNOWN, "unknown error"),
};
#undef FC_ERROR

} // namespace

const ErrorInfo *find_error(CUresult code) noexcept
{
  for (const ErrorInfo &e : kErrors)
    if (e.code == code) return &e;
  return nullptr;
}

const char *error_name_for_message(CUresult code) noexcept
{
  if (const ErrorInfo *e = find_error(code)) return e->name;
  return "unknown CUresult";
}

std::optional<CUresult> parse_error_code(std::string_view text)
{
  for (const ErrorInfo &e : kErrors)
    if (text == e.name) return e.code;
  int value = 0;
  const char *end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  // Limited to the range the CUresult enumeration can hold (its largest
  // enumerator is 999): anything else is not a valid CUresult value and
  // would trip UBSan's enum check wherever it is loaded.
  if (text.empty() || ec != std::errc() || ptr != end || value < 0 || value > 999)
    return std::nullopt;
  return static_cast<CUresult>(value);
}

} // namespace fakecuda
