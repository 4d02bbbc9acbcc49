// prefault_stack: the calling thread's stack below the current frame is
// resident afterwards, and the guard page is never approached.
#include "swap_safety.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

using vram::prefault_stack;

namespace {

struct Outcome {
  size_t touched = 0;
  size_t room = 0;           // stack between this frame and its lowest address
  size_t resident_below = 0; // bytes resident in the 256 KiB below the frame
};

// Counts resident pages in [top - bytes, top).
size_t resident(uintptr_t top, size_t bytes)
{
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (top - bytes) & ~(page - 1);
  const uintptr_t hi = top & ~(page - 1);
  std::vector<unsigned char> v((hi - lo) / page);
  if (mincore(reinterpret_cast<void *>(lo), hi - lo, v.data()) != 0)
    return 0;
  size_t n = 0;
  for (unsigned char c : v)
    n += (c & 1) * page;
  return n;
}

void *run(void *arg)
{
  auto *o = static_cast<Outcome *>(arg);
  volatile char here = 0;
  pthread_attr_t attr;
  void *low = nullptr;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &low, &size);
  pthread_attr_destroy(&attr);
  o->room = reinterpret_cast<uintptr_t>(&here) - reinterpret_cast<uintptr_t>(low);
  o->touched = prefault_stack(256 * 1024);
  o->resident_below = resident(reinterpret_cast<uintptr_t>(&here), o->touched);
  return nullptr;
}

Outcome on_thread_with_stack(size_t stack)
{
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack);
  pthread_t t;
  Outcome o;
  EXPECT_EQ(pthread_create(&t, &attr, run, &o), 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  return o;
}

} // namespace

TEST(PrefaultStack, TouchesWhatWasAskedOnALargeStack)
{
  const Outcome o = on_thread_with_stack(8 << 20);
  EXPECT_EQ(o.touched, 256u * 1024);
  // All but the pages the check itself shares with the frame.
  EXPECT_GE(o.resident_below, 256u * 1024 - 2 * 4096);
}

TEST(PrefaultStack, StaysClearOfTheGuardOnASmallStack)
{
  // Less stack than asked for: what is touched keeps 64 KiB clear of the
  // lowest address (glibc adds the static TLS size to the requested size,
  // so the room is measured, not assumed).
  const Outcome o = on_thread_with_stack(128 * 1024);
  ASSERT_LT(o.room, 256u * 1024 + 64 * 1024);
  EXPECT_GT(o.touched, 0u);
  EXPECT_LE(o.touched + 64 * 1024, o.room);
  EXPECT_GE(o.resident_below, o.touched - 2 * 4096);
}
