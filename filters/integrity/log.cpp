#include "log.hpp"

#include <atomic>
#include <cstdio>
#include <cstring>

namespace integrity {
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
  std::fprintf(stderr, "integrity: %s%s\n", tag, message.c_str());
}

std::atomic<LogSink> current_sink{stderr_sink};

} // namespace

void set_log_sink(LogSink sink) { current_sink.store(sink ? sink : stderr_sink); }

void log_message(LogLevel level, const std::string &message) { current_sink.load()(level, message); }

std::string errno_text(int errnum)
{
  if (const char *text = strerrordesc_np(errnum))
    return text;
  return "error " + std::to_string(errnum);
}

std::string format_bytes(uint64_t bytes)
{
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

} // namespace integrity
