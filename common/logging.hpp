// Where the core's messages go.  The nbdkit callback file points the sink
// at nbdkit's logging; unit tests and benchmarks leave the stderr default.
#pragma once

#include <string>

namespace vram {

enum class LogLevel { debug, info, warning, error };

using LogSink = void (*)(LogLevel, const std::string &);

void set_log_sink(LogSink sink);

[[gnu::format(printf, 1, 2)]] std::string strformat(const char *fmt, ...);

void log_message(LogLevel level, const std::string &message);

// "Operation not permitted" for EPERM.  Untranslated on purpose: glibc's
// strerror() goes through gettext, whose locale lock then deadlocks
// nbdkit's exit under AddressSanitizer.
std::string errno_text(int errnum);

inline void log_debug(const std::string &m) { log_message(LogLevel::debug, m); }
inline void log_info(const std::string &m) { log_message(LogLevel::info, m); }
inline void log_warning(const std::string &m) { log_message(LogLevel::warning, m); }
inline void log_error(const std::string &m) { log_message(LogLevel::error, m); }

} // namespace vram
