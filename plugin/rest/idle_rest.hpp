// idle-release=: lets the GPU rest while swap is quiet.  After `idle`
// with no request, and only while memory is calm, a thread puts the
// export to rest (the store gives its CUDA context back, keeping every
// byte of VRAM); the next request, or the first sign of memory pressure,
// wakes it.  Requests that arrive while it rests or wakes wait, then run.
//
// The gate knows nothing of CUDA: the store's rest and wake are hooks, so
// the logic is tested on its own (idle_rest_test.cpp).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace vram {

class IdleRest {
public:
  using Clock = std::chrono::steady_clock;

  struct Hooks {
    std::function<void()> thread_start;
    // Whether memory is calm enough to rest (no pressure now).
    std::function<bool()> memory_calm;
    // Give the GPU back / take it again; an empty string on success, else
    // why not.  Called with no request running and none let in.
    std::function<std::string()> rest;
    std::function<std::string()> wake;
  };
  struct Settings {
    std::chrono::milliseconds idle{0}; // at least this long with no request
    std::chrono::milliseconds poll{1000};
  };

  enum class State { awake, resting, going_to_rest, waking };

  struct Stats {
    State state = State::awake;
    uint64_t rests = 0;
    uint64_t wakes = 0;
    uint64_t failed_wakes = 0;
    Clock::duration last_wake{};  // how long the last wake took
    Clock::duration worst_wake{}; // the longest wake
    Clock::duration rested{};     // all rests together, the current one included
    Clock::time_point since{};    // when the current state began
  };

  IdleRest(Hooks hooks, Settings settings);
  ~IdleRest(); // stop()
  // Stops the thread, after a rest it is running; leaves the export as it
  // is (resting or awake: see stats()).
  void stop();

  IdleRest(const IdleRest &) = delete;
  IdleRest &operator=(const IdleRest &) = delete;

  // Around every request.  enter() returns with the export awake (waking
  // it first if it rests), or, when it could not be woken, with why not
  // (then the request fails and must not call leave()).
  std::string enter();
  void leave();

  // For work that must not wake the GPU (compaction): true only while the
  // export is awake, and then leave_background(); not counted as activity.
  bool try_enter();
  void leave_background();

  // Wakes a resting export now (memory pressure began); "" or why not.
  std::string wake_now();

  // Rests the export now if it could rest at all (no request running):
  // for tests and for shutdown ordering; "" or why not.
  std::string rest_now();

  Stats stats() const;
  static const char *to_string(State s);

private:
  void run(std::stop_token stop);
  // With mutex_ held by `lock`: runs the wake hook (unlocked) from the
  // resting state and says how it went.
  std::string wake_locked(std::unique_lock<std::mutex> &lock);
  std::string rest_locked(std::unique_lock<std::mutex> &lock);
  void set_state(State s, Clock::time_point now);

  Hooks hooks_;
  Settings settings_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::condition_variable_any tick_;
  State state_ = State::awake;
  unsigned active_ = 0;
  Clock::time_point last_request_;
  Stats stats_;
  std::jthread thread_; // last
};

} // namespace vram
