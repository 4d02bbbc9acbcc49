#include "rest/idle_rest.hpp"

#include <algorithm>

namespace vram {

const char *IdleRest::to_string(State s)
{
  switch (s) {
  case State::awake: return "awake";
  case State::resting: return "resting";
  case State::going_to_rest: return "going-to-rest";
  case State::waking: return "waking";
  }
  return "?";
}

IdleRest::IdleRest(Hooks hooks, Settings settings) : hooks_(std::move(hooks)), settings_(settings)
{
  const auto now = Clock::now();
  last_request_ = now;
  stats_.since = now;
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

IdleRest::~IdleRest() { stop(); }

void IdleRest::stop()
{
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void IdleRest::set_state(State s, Clock::time_point now)
{
  if (state_ == State::resting) stats_.rested += now - stats_.since;
  state_ = s;
  stats_.state = s;
  stats_.since = now;
  changed_.notify_all();
}

std::string IdleRest::wake_locked(std::unique_lock<std::mutex> &lock)
{
  set_state(State::waking, Clock::now());
  lock.unlock();
  const auto started = Clock::now();
  std::string why = hooks_.wake();
  const auto took = Clock::now() - started;
  lock.lock();
  if (why.empty()) {
    ++stats_.wakes;
    stats_.last_wake = took;
    stats_.worst_wake = std::max(stats_.worst_wake, took);
    set_state(State::awake, Clock::now());
  } else {
    ++stats_.failed_wakes;
    set_state(State::resting, Clock::now());
  }
  return why;
}

std::string IdleRest::rest_locked(std::unique_lock<std::mutex> &lock)
{
  set_state(State::going_to_rest, Clock::now());
  lock.unlock();
  std::string why = hooks_.rest();
  lock.lock();
  const auto now = Clock::now();
  if (why.empty()) {
    ++stats_.rests;
    set_state(State::resting, now);
  } else {
    // Awake again (the hook put back what it had taken down); the next try
    // waits a whole idle period.
    last_request_ = now;
    set_state(State::awake, now);
  }
  return why;
}

std::string IdleRest::enter()
{
  std::unique_lock lock(mutex_);
  for (;;) {
    if (state_ == State::awake) break;
    if (state_ == State::resting) {
      if (std::string why = wake_locked(lock); !why.empty()) return why;
      continue;
    }
    changed_.wait(lock); // another thread is putting it to rest or waking it
  }
  ++active_;
  last_request_ = Clock::now();
  return {};
}

void IdleRest::leave()
{
  const std::lock_guard lock(mutex_);
  --active_;
  last_request_ = Clock::now();
}

bool IdleRest::try_enter()
{
  const std::lock_guard lock(mutex_);
  if (state_ != State::awake) return false;
  ++active_;
  return true;
}

void IdleRest::leave_background()
{
  const std::lock_guard lock(mutex_);
  --active_;
}

std::string IdleRest::wake_now()
{
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return state_ != State::going_to_rest && state_ != State::waking; });
  if (state_ != State::resting) return {};
  return wake_locked(lock);
}

std::string IdleRest::rest_now()
{
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return state_ != State::going_to_rest && state_ != State::waking; });
  if (state_ == State::resting) return {};
  if (active_ != 0) return "requests are running";
  return rest_locked(lock);
}

IdleRest::Stats IdleRest::stats() const
{
  const std::lock_guard lock(mutex_);
  Stats s = stats_;
  if (state_ == State::resting) s.rested += Clock::now() - stats_.since;
  return s;
}

void IdleRest::run(std::stop_token stop)
{
  if (hooks_.thread_start) hooks_.thread_start();
  std::unique_lock lock(mutex_);
  const auto quiet = [this] {
    return state_ == State::awake && active_ == 0 && Clock::now() - last_request_ >= settings_.idle;
  };
  const auto calm = [&] {
    lock.unlock();
    const bool c = hooks_.memory_calm ? hooks_.memory_calm() : true;
    lock.lock();
    return c;
  };
  while (!stop.stop_requested()) {
    tick_.wait_for(lock, stop, settings_.poll, [] { return false; });
    if (stop.stop_requested()) break;
    if (state_ == State::resting) {
      // Pressure that the watch (if any) missed: wake before swap needs it.
      if (!calm() && state_ == State::resting) wake_locked(lock);
      continue;
    }
    // A request may come while memory is looked at: ask quiet() again.
    if (quiet() && calm() && !stop.stop_requested() && quiet()) rest_locked(lock);
  }
}

} // namespace vram
