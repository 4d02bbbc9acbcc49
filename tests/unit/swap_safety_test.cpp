// prefault_stack: the calling thread's stack below the current frame is
// resident afterwards, and the guard page is never approached.
#include "safety/swap_safety.hpp"

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
  if (mincore(reinterpret_cast<void *>(lo), hi - lo, v.data()) != 0) return 0;
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

// lock_all_memory's choice of what to fault in now, from /proc/self/maps.
namespace {

constexpr const char *sample_maps =
  "558d6f476000-558d6f47b000 r--p 00000000 fe:00 10977289                   /usr/bin/nbdkit\n"
  "558d6f47b000-558d6f48e000 r-xp 00005000 fe:00 10977289                   /usr/bin/nbdkit\n"
  "558d6f498000-558d6f499000 rw-p 00022000 fe:00 10977289                   /usr/bin/nbdkit\n"
  "558d6f499000-558d7b499000 rw-p 00000000 00:00 0 \n"
  "558d90eac000-558d92f11000 rw-p 00000000 00:00 0                          [heap]\n"
  "7feb0c000000-7feb0c021000 rw-p 00000000 00:00 0 \n"
  "7feb0c021000-7feb10000000 ---p 00000000 00:00 0 \n"
  "7feb20000000-7feb20100000 rw-s 00000000 00:05 1234                       /dev/shm/x (deleted)\n"
  "7feb30000000-7feb30001000 rw-s 00000000 00:05 99                         /dev/nvidiactl\n"
  "7ffd5a000000-7ffd5a021000 rw-p 00000000 00:00 0                          [stack]\n"
  "7ffd5a1f0000-7ffd5a1f4000 r--p 00000000 00:00 0                          [vvar]\n"
  "7ffd5a1f4000-7ffd5a1f6000 r-xp 00000000 00:00 0                          [vdso]\n"
  "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
  "garbage line\n"
  "7feb40000000-7feb40001000 r--p 00000000 fe:00 42                         /path/with two "
  "spaces\n";

} // namespace

TEST(LockAllMemory, ParsesProcSelfMaps)
{
  const auto maps = vram::parse_maps(sample_maps);
  ASSERT_EQ(maps.size(), 14u); // the garbage line is skipped
  EXPECT_EQ(maps[0].start, 0x558d6f476000u);
  EXPECT_EQ(maps[0].end, 0x558d6f47b000u);
  EXPECT_TRUE(maps[0].readable);
  EXPECT_FALSE(maps[0].anonymous);
  EXPECT_EQ(maps[0].path, "/usr/bin/nbdkit");
  EXPECT_TRUE(maps[3].anonymous);
  EXPECT_EQ(maps[3].path, "");
  EXPECT_TRUE(maps[4].anonymous);
  EXPECT_EQ(maps[4].path, "[heap]");
  EXPECT_FALSE(maps[6].readable);
  EXPECT_FALSE(maps[7].anonymous); // a shared file, though it is in /dev/shm
  EXPECT_EQ(maps[7].path, "/dev/shm/x (deleted)");
  EXPECT_FALSE(maps[10].anonymous);
  EXPECT_EQ(maps[13].path, "/path/with two spaces");
}

TEST(LockAllMemory, FaultsInCodeDataHeapAndStackButNotLargeZeroFill)
{
  const auto maps = vram::parse_maps(sample_maps);
  std::vector<bool> now;
  for (const auto &m : maps)
    now.push_back(vram::fault_in_now(m));
  EXPECT_TRUE(now[0]);   // nbdkit's read-only data
  EXPECT_TRUE(now[1]);   // its code
  EXPECT_TRUE(now[2]);   // its data
  EXPECT_FALSE(now[3]);  // its 192 MiB zero-initialised segment: locked as touched
  EXPECT_TRUE(now[4]);   // the heap, 32 MiB: malloc reuses it in the I/O path
  EXPECT_TRUE(now[5]);   // a thread's arena, small
  EXPECT_FALSE(now[6]);  // its reserved, inaccessible rest
  EXPECT_FALSE(now[7]);  // /dev/...
  EXPECT_FALSE(now[8]);  // a device
  EXPECT_TRUE(now[9]);   // the main stack
  EXPECT_FALSE(now[10]); // [vvar]
  EXPECT_FALSE(now[11]); // [vdso]
  EXPECT_FALSE(now[12]); // [vsyscall]
  EXPECT_TRUE(now[13]);
  // Just under the limit is still faulted in.
  vram::Mapping m{0x1000, 0x1000 + vram::large_anonymous_mapping - 4096, true, true, ""};
  EXPECT_TRUE(vram::fault_in_now(m));
  m.end += 4096;
  EXPECT_FALSE(vram::fault_in_now(m));
}
