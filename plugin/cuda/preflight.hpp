// Checks the GPU before nbdkit forks into the background, so that "no
// driver", "no such device" and "not enough VRAM" reach the user's
// terminal.  CUDA must not be initialised in a process that will fork
// afterwards, so the probe runs in a short-lived child process.
#pragma once

#include "cuda/gpu_inventory.hpp"

namespace vram {

// Runs probe_gpus() in a child process and returns its result.  A child
// that hangs longer than `timeout_s` is killed and reported as an error.
Inventory probe_gpus_in_child(unsigned init_timeout_s, const WantFree &want_free,
                              unsigned timeout_s);

} // namespace vram
