// Names and descriptions of CUresult codes, for cuGetErrorName/String and
// for parsing FAKECUDA_*_ERROR / FAKECUDA_FAIL_CODE settings.
#pragma once

#include "cuda_abi.hpp"

#include <optional>
#include <string_view>

namespace fakecuda {

struct ErrorInfo {
  CUresult code;
  const char *name;        // "CUDA_ERROR_OUT_OF_MEMORY"
  const char *description; // "out of memory"
};

// nullptr for a code the table does not know (the real driver then fails
// cuGetErrorName with CUDA_ERROR_INVALID_VALUE, and so do we).
const ErrorInfo *find_error(CUresult code) noexcept;

// "CUDA_ERROR_X" for known codes, "CUresult <n>" otherwise; for messages.
const char *error_name_for_message(CUresult code) noexcept;

// Accepts a decimal number in [0, 999] or a name from the table
// ("CUDA_ERROR_NO_DEVICE"). nullopt if it is neither.
std::optional<CUresult> parse_error_code(std::string_view text);

} // namespace fakecuda
