#include "locked_memory.hpp"

#include "byte_size.hpp"
#include "logging.hpp"

#include <cerrno>
#include <sys/mman.h>

namespace integrity {
namespace {

std::string limit_hint(int errnum)
{
  // EAGAIN from mmap means mlockall(MCL_FUTURE) is in force (the vram
  // plugin's swap-safety) and the locked-memory limit is reached; from
  // mlock, ENOMEM/EPERM mean the same limit or no privilege.
  if (errnum == EAGAIN || errnum == ENOMEM || errnum == EPERM)
    return " (is RLIMIT_MEMLOCK too low? Run as root, or raise it: ulimit -l, or "
           "LimitMEMLOCK= in a systemd unit)";
  return "";
}

} // namespace

LockedMemory::LockedMemory(size_t bytes, MlockPolicy policy, const std::string &what) : size_(bytes)
{
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    throw AllocationError("cannot allocate " + what + " (" + vram::format_byte_size(bytes) +
                          "): " + vram::errno_text(e) + (e == EAGAIN ? limit_hint(e) : ""));
  }
  data_ = p;
  // Fewer TLB misses on a large, randomly accessed table; merely advice.
  madvise(data_, size_, MADV_HUGEPAGE);

  if (policy == MlockPolicy::off) {
    not_locked_reason_ = "integrity-mlock=off";
    return;
  }
  if (mlock(data_, size_) == 0) {
    locked_ = true;
    return;
  }
  const int e = errno;
  not_locked_reason_ = "mlock: " + vram::errno_text(e) + limit_hint(e);
  if (policy == MlockPolicy::require) {
    munmap(data_, size_);
    data_ = nullptr;
    throw AllocationError("integrity-mlock=require: cannot lock " + what + " (" +
                          vram::format_byte_size(bytes) + ") in RAM: " + not_locked_reason_);
  }
}

LockedMemory::~LockedMemory()
{
  if (data_) munmap(data_, size_); // also unlocks
}

} // namespace integrity
