// allocation=lazy: a few chunks of VRAM created ahead of need, so that a
// write into a chunk that holds no VRAM yet maps one of them instead of
// asking the driver for VRAM while it holds the chunk's lock.
//
// Creating physical VRAM (cuMemCreate) is where the driver allocates, VRAM
// and its own bookkeeping: work the I/O path, which holds a chunk's lock
// while it maps, is better without at zero free RAM.  (It is not faster
// with spares: on an H200 cuMemCreate is cheap, see
// docs/dev/benchmark-log.md, "Lazy allocation's cost".)
// A thread of ours creates them off the I/O path, keeps `target` spares
// ready, and gives back (releases) what trims return beyond that.  When
// the spares run out, the I/O path creates its own as before.
//
// The driver calls are the caller's hooks, so this is unit-tested without
// a GPU.  take() and give() never allocate and never call a hook.
#pragma once

#include "cuda_abi.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace vram {

class SpareChunks {
public:
  using Handle = CUmemGenericAllocationHandle;

  struct Hooks {
    std::function<void()> thread_start;       // on the spares' thread, first
    std::function<CUresult(Handle &)> create; // one chunk of VRAM, or why not
    std::function<void(Handle)> release;      // give one back to the driver
  };

  // `target` 0: no thread, no spares; take() finds none, give() keeps none.
  // After a failed create, the thread tries again after `retry`.
  SpareChunks(size_t target, Hooks hooks,
              std::chrono::milliseconds retry = std::chrono::milliseconds(1000));
  // Stops the thread and releases every spare.
  ~SpareChunks();

  SpareChunks(const SpareChunks &) = delete;
  SpareChunks &operator=(const SpareChunks &) = delete;

  // A spare, if one is ready (the thread then makes another).
  std::optional<Handle> take();
  // Keeps `handle` as a spare, or hands it to the thread to release.
  // Returns false only when even that has no room: the caller releases it.
  bool give(Handle handle);

  size_t target() const { return target_; }
  // Chunks held here now (ready, or waiting to be released).
  size_t count() const { return count_.load(std::memory_order_relaxed); }

private:
  void run(std::stop_token stop);

  const size_t target_;
  const Hooks hooks_;
  const std::chrono::milliseconds retry_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::vector<Handle> spares_; // capacity fixed at construction; guarded by mutex_
  std::atomic<size_t> count_{0};
  std::jthread thread_; // last: started once the rest is initialised
};

} // namespace vram
