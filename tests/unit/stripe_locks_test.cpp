#include "stripe_locks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

using vram::StripeLocks;
using namespace std::chrono_literals;

namespace {

// True if `attempt` finishes within a short time while the main thread
// holds something.
template <typename F> bool completes_while_held(F &&attempt)
{
  std::atomic<bool> done{false};
  std::thread t([&] {
    attempt();
    done = true;
  });
  std::this_thread::sleep_for(50ms);
  const bool finished = done;
  return t.join(), finished;
}

} // namespace

TEST(StripeLocks, RoundsUpToAPowerOfTwo)
{
  EXPECT_EQ(StripeLocks(1000).stripes(), 1024u);
  EXPECT_EQ(StripeLocks(4096).stripes(), 4096u);
  EXPECT_EQ(StripeLocks(0).stripes(), 1u);
}

TEST(StripeLocks, ReadersShare)
{
  const StripeLocks locks(16);
  const auto held = locks.shared(3, 5);
  EXPECT_TRUE(completes_while_held([&] { const auto g = locks.shared(4, 4); }));
}

TEST(StripeLocks, WriterExcludesReadersAndWritersOfItsBlocks)
{
  const StripeLocks locks(16);
  std::atomic<bool> released{false};
  std::atomic<bool> saw_released{false};
  std::thread reader;
  {
    const auto held = locks.exclusive(3, 5);
    reader = std::thread([&] {
      const auto g = locks.shared(5, 7);
      saw_released = released.load();
    });
    std::this_thread::sleep_for(50ms);
    released = true;
  }
  reader.join();
  EXPECT_TRUE(saw_released);
}

TEST(StripeLocks, OtherBlocksAreNotBlocked)
{
  const StripeLocks locks(16);
  const auto held = locks.exclusive(3, 5);
  EXPECT_TRUE(completes_while_held([&] { const auto g = locks.exclusive(6, 8); }));
  EXPECT_TRUE(completes_while_held([&] { const auto g = locks.shared(2, 2); }));
}

TEST(StripeLocks, SameStripeDifferentBlockIsBlocked)
{
  // Block 19 shares stripe 3 with block 3 when there are 16 stripes.
  const StripeLocks locks(16);
  std::atomic<bool> got{false};
  std::thread t;
  {
    const auto held = locks.exclusive(3, 3);
    t = std::thread([&] {
      const auto g = locks.shared(19, 19);
      got = true;
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(got);
  }
  t.join();
  EXPECT_TRUE(got);
}

TEST(StripeLocks, WrappingAndHugeSpansTakeEachStripeOnce)
{
  // std::shared_mutex would deadlock (or abort) if a guard locked a
  // stripe twice: these complete only if each stripe is taken once.
  const StripeLocks locks(16);
  {
    const auto g = locks.exclusive(14, 17);
  } // stripes 14, 15, 0, 1
  {
    const auto g = locks.exclusive(0, 15);
  } // all
  {
    const auto g = locks.exclusive(5, 100);
  } // more blocks than stripes
  {
    const auto g = locks.exclusive(15, 30);
  } // 16 blocks, wrapping: all
  const auto g = locks.exclusive(14, 17);
  EXPECT_TRUE(completes_while_held([&] { const auto h = locks.exclusive(2, 13); }));
}

TEST(StripeLocks, ManyThreadsRandomSpansNeverDeadlockAndExcludeCorrectly)
{
  // Each block has a counter of writers inside; a writer must always be
  // alone, readers never see a writer.
  constexpr uint64_t blocks = 64;
  const StripeLocks locks(8);
  std::vector<std::atomic<int>> inside(blocks);
  std::atomic<bool> violation{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 3000; ++i) {
        const uint64_t first = rng() % blocks;
        const uint64_t last = std::min(blocks - 1, first + rng() % 20);
        if (rng() % 2) {
          const auto g = locks.exclusive(first, last);
          for (uint64_t b = first; b <= last; ++b)
            if (inside[b].exchange(-1) != 0) violation = true;
          for (uint64_t b = first; b <= last; ++b)
            inside[b] = 0;
        } else {
          const auto g = locks.shared(first, last);
          for (uint64_t b = first; b <= last; ++b)
            if (inside[b].load() < 0) violation = true;
        }
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_FALSE(violation);
}
