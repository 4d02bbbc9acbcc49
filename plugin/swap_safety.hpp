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

} // namespace vram
