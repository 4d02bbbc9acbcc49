// What keeps a swap server alive at zero free RAM.
//
//  - PR_SET_IO_FLUSHER: our own allocations never recurse into reclaim
//    (which could wait on the very swap write we are serving).  Set on the
//    main thread before nbdkit creates its workers: the flag is inherited
//    by threads created later and across fork.
//  - mlockall: our pages are never the ones being swapped out.  Done after
//    nbdkit forks into the background (memory locks are not inherited
//    across fork) and before CUDA is initialised (see lock_all_memory):
//    what is mapped then is faulted in and locked (but large zero-filled
//    mappings nothing touches), and everything else as it is touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vram {

struct ProtectionResult {
  ProtectionResult(bool active_ = false, std::string detail_ = {}, std::string warning_ = {})
    : active(active_), detail(std::move(detail_)), warning(std::move(warning_))
  {
  }
  bool active;
  std::string detail;  // why not, or what was done
  std::string warning; // in force, but with a problem the log should show
};

ProtectionResult enable_io_flusher();
bool io_flusher_active();
ProtectionResult lock_all_memory();

// One line of /proc/self/maps.
struct Mapping {
  uintptr_t start = 0, end = 0;
  bool readable = false;
  bool anonymous = false; // no file behind it ([heap] included)
  std::string path;
};
std::vector<Mapping> parse_maps(std::string_view text);

// Anonymous mappings at least this large are locked as they are touched,
// not faulted in by lock_all_memory: nbdkit 1.32's executable has a
// 192 MiB zero-initialised segment that its I/O path never touches, and
// faulting it in would lock 192 MiB of RAM for nothing.
constexpr uintptr_t large_anonymous_mapping = 16 * 1024 * 1024;

// Whether lock_all_memory faults `m` in: everything readable that code
// runs from or reads (the executable, libraries, the heap, the main
// stack, small data), except large unnamed anonymous mappings and the
// kernel's special ones ([vvar] and the like, which cannot be locked).
bool fault_in_now(const Mapping &m);

// Resident memory locked, e.g. "18234 kB"; empty if unknown.
std::string locked_memory();

// Faults in (and, under mlockall, locks) up to `bytes` of the calling
// thread's stack below the current frame, leaving a margin above the
// guard page.  mlockall's MCL_ONFAULT locks stack pages only once touched:
// a thread that first reaches a deep call path (the driver mapping a new
// chunk of VRAM) at zero free RAM would otherwise wait in reclaim for a
// fresh stack page, holding the locks every other request needs.  Each
// I/O thread calls this on its first request (the warm-up reads before
// swapon).  Returns the bytes touched.
size_t prefault_stack(size_t bytes);

// What each thread that serves I/O faults in: deeper than any call path of
// ours or the driver's seen in the I/O path.
constexpr size_t io_stack_prefault_bytes = 256 * 1024;

} // namespace vram
