#include "store/compactor.hpp"

namespace vram {

bool Compactor::worth_it(uint64_t held, uint64_t used, uint64_t slack_bytes)
{
  if (held <= used) return false;
  const uint64_t waste = held - used;
  return waste > used / 8 && waste > slack_bytes;
}

Compactor::Compactor(Hooks hooks, Settings settings)
  : hooks_(std::move(hooks)), settings_(settings),
    thread_([this](std::stop_token stop) { run(stop); })
{
}

Compactor::~Compactor()
{
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void Compactor::run(std::stop_token stop)
{
  if (hooks_.thread_start) hooks_.thread_start();
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    wake_.wait_for(lock, stop, settings_.poll, [] { return false; });
    lock.unlock();
    // Until the margin is back, or no chunk can be emptied now.
    while (!stop.stop_requested() && hooks_.wanted() && hooks_.step()) {}
    lock.lock();
  }
}

} // namespace vram
