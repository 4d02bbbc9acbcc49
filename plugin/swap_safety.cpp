#include "swap_safety.hpp"

#include <sys/mman.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#define PR_GET_IO_FLUSHER 58
#endif

namespace vram {

ProtectionResult enable_io_flusher()
{
  if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0)
    return {true, "PR_SET_IO_FLUSHER set"};
  const int e = errno;
  std::string why = std::strerror(e);
  if (e == EPERM)
    why += " (needs CAP_SYS_RESOURCE: run nbdkit as root)";
  else if (e == EINVAL)
    why += " (the kernel is older than 5.6)";
  return {false, "PR_SET_IO_FLUSHER: " + why};
}

bool io_flusher_active()
{
  return ::prctl(PR_GET_IO_FLUSHER, 0, 0, 0, 0) == 1;
}

// Two steps.  First lock and fault in everything mapped now (code, the
// driver's libraries, staging buffers), so the I/O path never waits for a
// page-in.  Then lock future mappings only as they are touched: nbdkit
// starts 16 threads per connection, each with an 8 MiB stack mapping, and
// MCL_FUTURE alone would pin all of that RAM up front.
ProtectionResult lock_all_memory()
{
  if (::mlockall(MCL_CURRENT) == 0) {
    if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
      return {true, "mlockall done"};
    if (errno == EINVAL && ::mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
      return {true, "mlockall done (without MCL_ONFAULT)"};
  }
  const int e = errno;
  std::string why = std::strerror(e);
  if (e == ENOMEM || e == EPERM)
    why += " (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK=infinity, or run as root)";
  return {false, "mlockall: " + why};
}

std::string locked_memory()
{
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmLck:", 0) == 0) {
      const size_t start = line.find_first_not_of(" \t", 6);
      return start == std::string::npos ? "" : line.substr(start);
    }
  return {};
}

} // namespace vram
