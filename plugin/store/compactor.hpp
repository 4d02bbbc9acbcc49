// compress=: a thread that keeps the VRAM held close to what the pages
// need.  Trims and overwrites leave holes in chunks; when the VRAM held
// exceeds the slots in use by more than a margin, it empties the sparsest
// chunks into the holes of others, one chunk per step, so the chunks go
// back to the GPU.  Each step borrows an I/O lane for its duration only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace vram {

class Compactor {
public:
  struct Hooks {
    std::function<void()> thread_start; // the CUDA context current, the stack locked in
    std::function<bool()> wanted;       // whether compaction would give VRAM back
    std::function<bool()> step;         // empties one chunk; false when none could be
  };
  struct Settings {
    std::chrono::milliseconds poll{1000};
  };

  // Whether VRAM held (`held` bytes) is far enough above the bytes of the
  // slots in use (`used`) to compact: by more than an eighth of them, and
  // by more than `slack_bytes` (a few partly used chunks are the
  // normal state of the allocator, not waste to chase).
  static bool worth_it(uint64_t held, uint64_t used, uint64_t slack_bytes);

  Compactor(Hooks hooks, Settings settings);
  ~Compactor(); // stops and joins the thread

  Compactor(const Compactor &) = delete;
  Compactor &operator=(const Compactor &) = delete;

private:
  void run(std::stop_token stop);

  Hooks hooks_;
  Settings settings_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_; // last
};

} // namespace vram
