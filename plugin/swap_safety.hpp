// What keeps a swap server alive at zero free RAM.
//
//  - PR_SET_IO_FLUSHER: our own allocations never recurse into reclaim
//    (which could wait on the very swap write we are serving).  Set on the
//    main thread before nbdkit creates its workers: the flag is inherited
//    by threads created later and across fork.
//  - mlockall: our pages are never the ones being swapped out.  Done after
//    nbdkit forks into the background, because memory locks are not
//    inherited across fork.
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

// "VmLck" from /proc/self/status, e.g. "182340 kB"; empty if unknown.
std::string locked_memory();

} // namespace vram
