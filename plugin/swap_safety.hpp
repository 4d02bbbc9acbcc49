// What keeps a swap server alive at zero free RAM.
//
//  - PR_SET_IO_FLUSHER: our own allocations never recurse into reclaim
//    (which could wait on the very swap write we are serving).  Set on the
//    main thread before nbdkit creates its workers: the flag is inherited
//    by threads created later and across fork.
//  - mlockall: our pages are never the ones being swapped out.  Done after
//    nbdkit forks into the background (memory locks are not inherited
//    across fork) and before CUDA is initialised (see lock_all_memory).
#pragma once

#include <cstddef>
#include <string>

namespace vram {

struct ProtectionResult {
  bool active = false;
  std::string detail; // why not, or what was done
};

ProtectionResult enable_io_flusher();
bool io_flusher_active();
ProtectionResult lock_all_memory();

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
