#include "swap_safety.hpp"

#include "logging.hpp"

#include <alloca.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

namespace {

[[gnu::noinline]] void touch_stack(size_t bytes)
{
  volatile char *p = static_cast<volatile char *>(alloca(bytes));
  for (size_t i = 0; i < bytes; i += 4096)
    p[i] = 0;
  p[bytes - 1] = 0;
}

} // namespace

size_t prefault_stack(size_t bytes)
{
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0)
    return 0;
  void *low = nullptr;
  size_t size = 0;
  const int r = pthread_attr_getstack(&attr, &low, &size);
  pthread_attr_destroy(&attr);
  if (r != 0 || !low)
    return 0;
  volatile char here = 0;
  const auto top = reinterpret_cast<uintptr_t>(&here);
  const auto bottom = reinterpret_cast<uintptr_t>(low);
  constexpr size_t margin = 64 * 1024; // never near the guard page
  if (top <= bottom + margin)
    return 0;
  const size_t n = std::min(bytes, static_cast<size_t>(top - bottom - margin));
  if (n == 0)
    return 0;
  touch_stack(n);
  return n;
}

} // namespace vram
