#include "trace.hpp"

#include "errors.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace fakecuda {
namespace {
std::atomic<bool> g_trace{false};
}

bool trace_enabled() noexcept { return g_trace.load(std::memory_order_relaxed); }
void set_trace_enabled(bool on) noexcept { g_trace.store(on, std::memory_order_relaxed); }

void trace_call(const char *name, CUresult result, const char *args_fmt, ...) noexcept
{
  if (!trace_enabled()) return;
  char args[256];
  va_list ap;
  va_start(ap, args_fmt);
  std::vsnprintf(args, sizeof args, args_fmt, ap);
  va_end(ap);
  // Built in one buffer and written with one call so lines from several
  // threads do not interleave.
  char line[512];
  std::snprintf(line, sizeof line, "fakecuda: [%d] %s(%s) = %s\n", static_cast<int>(::gettid()),
                name, args, error_name_for_message(result));
  std::fputs(line, stderr);
}

void trace_note(const char *fmt, ...) noexcept
{
  if (!trace_enabled()) return;
  char text[384];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  char line[448];
  std::snprintf(line, sizeof line, "fakecuda: [%d] %s\n", static_cast<int>(::gettid()), text);
  std::fputs(line, stderr);
}

} // namespace fakecuda
