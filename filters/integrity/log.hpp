// Where the filter's messages go.  The nbdkit callback file points the
// sink at nbdkit's logging; unit tests and benchmarks leave the stderr
// default.
#pragma once

#include <cstdint>
#include <string>

namespace integrity {

enum class LogLevel { debug, info, warning, error };

using LogSink = void (*)(LogLevel, const std::string &);

void set_log_sink(LogSink sink);
void log_message(LogLevel level, const std::string &message);

inline void log_debug(const std::string &m) { log_message(LogLevel::debug, m); }
inline void log_info(const std::string &m) { log_message(LogLevel::info, m); }
inline void log_warning(const std::string &m) { log_message(LogLevel::warning, m); }
inline void log_error(const std::string &m) { log_message(LogLevel::error, m); }

// "Cannot allocate memory" for ENOMEM.  Untranslated on purpose: glibc's
// strerror() goes through gettext, whose locale lock then deadlocks
// nbdkit's exit when the sanitizer runtime is preloaded.
std::string errno_text(int errnum);

// "4096 bytes", "64.0 KiB", "7.0 GiB": for messages.
std::string format_bytes(uint64_t bytes);

} // namespace integrity
