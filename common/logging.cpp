#include "logging.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

namespace vram {
namespace {

void stderr_sink(LogLevel level, const std::string &message)
{
  const char *tag = "";
  switch (level) {
  case LogLevel::debug: tag = "debug: "; break;
  case LogLevel::info: break;
  case LogLevel::warning: tag = "warning: "; break;
  case LogLevel::error: tag = "error: "; break;
  }
  std::fprintf(stderr, "vram: %s%s\n", tag, message.c_str());
}

std::atomic<LogSink> current_sink{stderr_sink};

} // namespace

void set_log_sink(LogSink sink) { current_sink.store(sink ? sink : stderr_sink); }

std::string strformat(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out;
  if (n > 0) {
    std::vector<char> buf(static_cast<size_t>(n) + 1);
    std::vsnprintf(buf.data(), buf.size(), fmt, ap2);
    out.assign(buf.data(), static_cast<size_t>(n));
  }
  va_end(ap2);
  return out;
}

std::string errno_text(int errnum)
{
  if (const char *text = strerrordesc_np(errnum)) return text;
  return "error " + std::to_string(errnum);
}

void log_message(LogLevel level, const std::string &message)
{
  current_sink.load()(level, message);
}

} // namespace vram
