// Whether another program is computing on the GPU, judged from our own
// small writes.
//
// Alone on the GPU, the driver's one-row copies and memsets are the fastest
// way to move a small piece (on the H200, 4 KiB writes at 16 connections:
// 500k/s, against 350k/s as two-row copies, which go through the copy
// engines).  Beside another program's kernels the same copies wait for its
// time slice, 2.5 ms each.  So, with share-gpu=auto, the lanes use the fast
// path until two of its small operations within `confirm` take longer than
// `slow` (one alone may be a thread that lost its CPU for a moment); then
// only copy-engine shapes for `hold`, after which the next tries tell
// whether the other program is still there.  Each time it still is, the
// hold doubles (up to `max_hold`): beside a long training job one request
// a minute or so pays the 2.5 ms, and a GPU that has gone quiet is noticed
// within the hold.
#pragma once

#include "config.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace vram {

struct SharedGpuSettings {
  std::chrono::steady_clock::duration slow = std::chrono::microseconds(250);
  std::chrono::steady_clock::duration confirm = std::chrono::milliseconds(100);
  std::chrono::steady_clock::duration first_hold = std::chrono::seconds(1);
  std::chrono::steady_clock::duration max_hold = std::chrono::seconds(64);
};

class SharedGpuDetector {
public:
  using Clock = std::chrono::steady_clock;
  using Settings = SharedGpuSettings;

  explicit SharedGpuDetector(ShareGpu mode, Settings settings = {});

  // True when requests must use only copy-engine shapes now.
  bool copy_engines_only(Clock::time_point now) const
  {
    if (mode_ != ShareGpu::automatic)
      return mode_ == ShareGpu::yes;
    return ticks(now) < shared_until_.load(std::memory_order_relaxed);
  }

  // An operation that took the fast path (copy_engines_only() was false
  // when it was issued) completed `elapsed` after it was issued.
  void observe(Clock::duration elapsed, Clock::time_point now);

  ShareGpu mode() const { return mode_; }
  // How many times another program was detected (entries into the
  // copy-engine-only state).
  uint64_t detections() const { return detections_.load(std::memory_order_relaxed); }

private:
  static int64_t ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

  const ShareGpu mode_;
  const Settings settings_;
  std::atomic<int64_t> shared_until_{INT64_MIN};
  std::atomic<int64_t> hold_;
  int64_t last_slow_ = INT64_MIN / 2; // guarded by mutex_
  std::atomic<uint64_t> detections_{0};
  std::mutex mutex_; // serialises detections
};

} // namespace vram
