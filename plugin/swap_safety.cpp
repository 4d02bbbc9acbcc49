#include "swap_safety.hpp"

#include "logging.hpp"

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
  std::string why = errno_text(e);
  if (e == EPERM)
    why += " (needs CAP_SYS_RESOURCE: run nbdkit as root, with that capability if in a container)";
  else if (e == EINVAL)
    why += " (the kernel is older than 5.6)";
  return {false, "PR_SET_IO_FLUSHER: " + why};
}

bool io_flusher_active()
{
  return ::prctl(PR_GET_IO_FLUSHER, 0, 0, 0, 0) == 1;
}

// Two steps.  First lock and fault in what is mapped now: nbdkit, the
// plugin and their libraries, so the I/O path never waits for a page-in.
// Then lock future mappings only as their pages are touched.  This must
// run before CUDA is initialised: the driver maps many gigabytes of host
// address space (17 GiB seen on an H100), and MCL_CURRENT after cuInit
// would fault all of it into RAM.  Likewise nbdkit starts 16 threads per
// connection with 8 MiB stacks; MCL_FUTURE without MCL_ONFAULT would pin
// all of that up front.
ProtectionResult lock_all_memory()
{
  if (::mlockall(MCL_CURRENT) == 0) {
    if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
      return {true, "mlockall done"};
    if (errno == EINVAL && ::mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
      return {true, "mlockall done (without MCL_ONFAULT)"};
  }
  const int e = errno;
  std::string why = errno_text(e);
  if (e == ENOMEM || e == EPERM)
    why += " (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK=infinity, or run as root)";
  return {false, "mlockall: " + why};
}

// smaps_rollup's "Locked" counts resident locked pages; VmLck in
// /proc/self/status counts whole locked mappings, touched or not.
std::string locked_memory()
{
  std::ifstream rollup("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(rollup, line))
    if (line.rfind("Locked:", 0) == 0) {
      const size_t start = line.find_first_not_of(" \t", 7);
      return start == std::string::npos ? "" : line.substr(start);
    }
  return {};
}

} // namespace vram
