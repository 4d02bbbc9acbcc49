#include "safety/swap_safety.hpp"

#include "logging.hpp"

#include <alloca.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#define PR_GET_IO_FLUSHER 58
#endif

namespace vram {

ProtectionResult enable_io_flusher()
{
  if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0) return {true, "PR_SET_IO_FLUSHER set"};
  const int e = errno;
  std::string why = errno_text(e);
  if (e == EPERM)
    why += " (needs CAP_SYS_RESOURCE: run nbdkit as root, with that capability if in a container)";
  else if (e == EINVAL) why += " (the kernel is older than 5.6)";
  return {false, "PR_SET_IO_FLUSHER: " + why};
}

bool io_flusher_active() { return ::prctl(PR_GET_IO_FLUSHER, 0, 0, 0, 0) == 1; }

// Every mapping is locked, now and in future, as its pages are touched
// (MCL_ONFAULT): the driver maps many gigabytes of host address space (17
// GiB seen on an H100) and nbdkit starts 16 threads per connection with
// 8 MiB stacks, none of which should be faulted in up front.  Then what
// is mapped now and will be used (nbdkit, the plugin and their libraries,
// the heap) is faulted in, so the I/O path never waits for a page-in;
// large anonymous mappings are left to be locked as touched (see
// large_anonymous_mapping).  This must run before CUDA is initialised.
ProtectionResult lock_all_memory()
{
  if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
    const int e = errno;
    // A kernel older than 4.4 has no MCL_ONFAULT: lock and fault in
    // everything mapped now, and future mappings in full.
    if (e == EINVAL && ::mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
      return {true, "mlockall done (without MCL_ONFAULT)"};
    std::string why = errno_text(e);
    if (e == ENOMEM || e == EPERM)
      why += " (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK=infinity, or run as root)";
    return {false, "mlockall: " + why};
  }
  std::ifstream in("/proc/self/maps");
  const std::string maps((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string failed;
  for (const Mapping &m : parse_maps(maps)) {
    // mlock() without MLOCK_ONFAULT faults the range in.
    if (fault_in_now(m) && ::mlock(reinterpret_cast<void *>(m.start), m.end - m.start) != 0 &&
        failed.empty())
      failed =
        (m.path.empty() ? std::string("anonymous memory") : m.path) + ": " + errno_text(errno);
  }
  ProtectionResult result{true, "mlockall done"};
  if (!failed.empty())
    result.warning = "mlockall: could not fault in " + failed +
                     "; its pages are locked as they are touched instead";
  return result;
}

std::vector<Mapping> parse_maps(std::string_view text)
{
  std::vector<Mapping> out;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    // start-end perms offset dev inode [path]
    Mapping m;
    const size_t dash = line.find('-');
    const size_t sp1 = line.find(' ');
    if (dash == std::string_view::npos || sp1 == std::string_view::npos || dash > sp1) continue;
    const auto hex = [](std::string_view v, uintptr_t &to) {
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), to, 16);
      return ec == std::errc{} && p == v.data() + v.size();
    };
    if (!hex(line.substr(0, dash), m.start) || !hex(line.substr(dash + 1, sp1 - dash - 1), m.end) ||
        m.end <= m.start)
      continue;
    std::string_view rest = line.substr(sp1 + 1);
    m.readable = !rest.empty() && rest[0] == 'r';
    // Skip perms, offset, dev; then the inode; the path is what follows.
    std::string_view inode;
    for (int field = 0; field < 4; ++field) {
      const size_t sp = rest.find(' ');
      const std::string_view f = rest.substr(0, sp);
      if (field == 3) inode = f;
      rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    }
    const size_t path_at = rest.find_first_not_of(' ');
    m.path = path_at == std::string_view::npos ? std::string() : std::string(rest.substr(path_at));
    m.anonymous = inode == "0" && (m.path.empty() || m.path == "[heap]" || m.path == "[stack]" ||
                                   m.path.rfind("[anon", 0) == 0);
    out.push_back(std::move(m));
  }
  return out;
}

bool fault_in_now(const Mapping &m)
{
  if (!m.readable) return false; // guard pages, address space reserved PROT_NONE
  if (!m.path.empty() && m.path.front() == '[' && !m.anonymous)
    return false;                                  // [vvar], [vdso], [vsyscall]: the kernel's
  if (m.path.rfind("/dev/", 0) == 0) return false; // device memory
  // The heap and the main stack are what malloc and the main thread use.
  if (m.anonymous && m.path.empty() && m.end - m.start >= large_anonymous_mapping) return false;
  return true;
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
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return 0;
  void *low = nullptr;
  size_t size = 0;
  const int r = pthread_attr_getstack(&attr, &low, &size);
  pthread_attr_destroy(&attr);
  if (r != 0 || !low) return 0;
  volatile char here = 0;
  const auto top = reinterpret_cast<uintptr_t>(&here);
  const auto bottom = reinterpret_cast<uintptr_t>(low);
  constexpr size_t margin = 64 * 1024; // never near the guard page
  if (top <= bottom + margin) return 0;
  const size_t n = std::min(bytes, static_cast<size_t>(top - bottom - margin));
  if (n == 0) return 0;
  touch_stack(n);
  return n;
}

} // namespace vram
