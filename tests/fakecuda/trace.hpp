// FAKECUDA_LOG=1: one stderr line per API call, a debugging aid for tests
// that fail in ways the plugin's own logging does not explain.
#pragma once

#include "cuda_abi.hpp"

namespace fakecuda {

bool trace_enabled() noexcept;
void set_trace_enabled(bool on) noexcept;

// "fakecuda: [tid] name(<args>) = CUDA_..." when tracing is on.
void trace_call(const char *name, CUresult result, const char *args_fmt, ...) noexcept
  __attribute__((format(printf, 3, 4)));

// Free-form trace line (used for work done by stream workers).
void trace_note(const char *fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

} // namespace fakecuda
