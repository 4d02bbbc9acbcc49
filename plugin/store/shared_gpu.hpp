// Whether another program is computing on the GPU, judged from our own
// small writes.
//
// Alone on the GPU, the driver's one-row copies and memsets are the fastest
// way to move a small piece (on the H200, 4 KiB writes at 16 connections:
// 450-500k/s, against 350k/s as two-row copies, which go through the copy
// engines).  Beside another program's kernels the same copies wait for its
// time slice: 2.5 ms each beside large matrix products, 0.5 ms beside
// smaller ones.  So, with share-gpu=auto, the lanes use the fast path and
// time each small operation on it.  Another program is taken to be there
// when such operations keep taking longer than `slow`: at least `count` of
// them in a row, with no fast one completing in between, spanning at least
// `span` from the start of the first.  (One slow operation alone, or a
// burst of them together, is as likely a host that paused our threads for
// a moment: on the H200 machine the quiet tail passed 250 us several times
// a second at 16 connections.)  Then only copy-engine shapes for `hold`,
// after which the next tries tell whether the other program is still
// there; each time it is, the hold doubles, up to `max_hold`: beside a
// long training job a few requests a minute pay the wait, and a GPU gone
// quiet is noticed within the hold.
#pragma once

#include "config/config.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace vram {

struct SharedGpuSettings {
  std::chrono::steady_clock::duration slow = std::chrono::microseconds(250);
  unsigned count = 3;
  std::chrono::steady_clock::duration span = std::chrono::milliseconds(5);
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
    if (mode_ != ShareGpu::automatic) return mode_ == ShareGpu::yes;
    return ticks(now) < shared_until_.load(std::memory_order_relaxed);
  }

  // An operation that took the fast path (copy_engines_only() was false
  // when it was issued) completed at `now`, `elapsed` after it was issued.
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
  std::atomic<uint64_t> detections_{0};
  // A run of slow operations is being counted; a fast one ends it.  Read
  // by every fast operation, written rarely: cheap to share.
  std::atomic<bool> in_run_{false};
  std::mutex mutex_;       // serialises the slow path
  int64_t run_start_ = 0;  // guarded by mutex_: when the run's first operation was issued
  unsigned run_count_ = 0; // guarded by mutex_
};

} // namespace vram
