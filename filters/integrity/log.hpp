// The filter's messages go through the logging the vram plugin uses
// (plugin/logging.hpp): the nbdkit callback file points the sink at
// nbdkit's logging; unit tests and benchmarks leave the stderr default.
#pragma once

#include "byte_size.hpp"
#include "logging.hpp"

#include <cstdint>
#include <string>

namespace integrity {

using vram::errno_text;
using vram::log_debug;
using vram::log_error;
using vram::log_info;
using vram::log_message;
using vram::log_warning;
using vram::LogLevel;
using vram::LogSink;
using vram::set_log_sink;

// "4096 bytes", "64.0 KiB", "7.0 GiB": for messages.
inline std::string format_bytes(uint64_t bytes) { return vram::format_byte_size(bytes); }

} // namespace integrity
