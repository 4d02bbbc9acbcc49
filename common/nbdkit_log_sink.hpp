// The log sink of an nbdkit module (the plugin, the integrity filter):
// errors and debug messages through nbdkit, informational lines and
// warnings on stderr, or in syslog once nbdkit has sent stderr to
// /dev/null (in the background, without -v), where nbdkit's own errors go.
//
// Include after <nbdkit-plugin.h> or <nbdkit-filter.h>.
#pragma once

#include "logging.hpp"

#include <cstdio>
#include <string>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

namespace vram {

inline bool stderr_is_dev_null()
{
  struct stat err {
  }, null{};
  return fstat(STDERR_FILENO, &err) == 0 && stat("/dev/null", &null) == 0 && S_ISCHR(err.st_mode) &&
         err.st_rdev == null.st_rdev;
}

// `name` goes before informational lines ("nbdkit: vram: ...").  nbdkit
// itself names the plugin in its errors; a filter passes
// `name_nbdkit_messages` to name itself there too.
inline void nbdkit_log(const char *name, bool name_nbdkit_messages, LogLevel level,
                       const std::string &message)
{
  const char *prefix = name_nbdkit_messages ? name : "";
  const char *colon = name_nbdkit_messages ? ": " : "";
  switch (level) {
  case LogLevel::debug: nbdkit_debug("%s%s%s", prefix, colon, message.c_str()); break;
  case LogLevel::error: nbdkit_error("%s%s%s", prefix, colon, message.c_str()); break;
  case LogLevel::info:
  case LogLevel::warning: {
    const char *tag = level == LogLevel::warning ? "warning: " : "";
    if (stderr_is_dev_null())
      syslog(level == LogLevel::warning ? LOG_WARNING : LOG_INFO, "%s: %s%s", name, tag,
             message.c_str());
    else std::fprintf(stderr, "nbdkit: %s: %s%s\n", name, tag, message.c_str());
    break;
  }
  }
}

} // namespace vram
