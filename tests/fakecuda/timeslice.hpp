// The time-sliced channel of the real driver, modelled.  On an H200 with
// driver 580, small one-dimensional host-to-device copies (under 32 KiB),
// memsets and device-to-device copies run where they wait for another
// context's time slice: 2.5 ms each beside another process's large matrix
// products.  Copies of 32 KiB and more, device-to-host copies and
// two-dimensional copies of two rows or more do not.  FAKECUDA_TIMESLICE_FILE
// records every operation the real driver would make wait, so a test can
// prove the code under test issues none; FAKECUDA_TIMESLICE_US makes each
// of them wait that long in the stream's worker (a busy neighbour).
#pragma once

#include "line_file.hpp"

#include <cstddef>
#include <string>

namespace fakecuda {

struct Transfer;

// True for the operations the real driver queues behind other contexts'
// kernels.
bool time_sliced(const Transfer &t);

class TimesliceFile {
public:
  // Empty path: disabled. Throws ConfigError if the file cannot be opened.
  explicit TimesliceFile(const std::string &path);

  // One line: the call and its size ("cuMemsetD8Async bytes=4096").
  void note(const Transfer &t);

private:
  LineFile file_;
};

} // namespace fakecuda
