// Which CUDA errors leave the context unusable.
#pragma once

#include "cuda_abi.hpp"

namespace vram {

// A sticky error means the context, and everything in VRAM, can no longer
// be trusted: the plugin stops serving data.  We list the errors known to
// be harmless to the context and treat every other one as sticky, so an
// unfamiliar error can never lead to wrong data being returned.
constexpr bool is_sticky(CUresult r)
{
  switch (r) {
  case CUDA_SUCCESS:
  case CUDA_ERROR_INVALID_VALUE:
  case CUDA_ERROR_OUT_OF_MEMORY:
  case CUDA_ERROR_NOT_READY:
  case CUDA_ERROR_TIMEOUT:
  case CUDA_ERROR_NOT_PERMITTED:
  case CUDA_ERROR_NOT_SUPPORTED: return false;
  default: return true;
  }
}

} // namespace vram
