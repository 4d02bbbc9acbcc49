// Spare chunks for allocation=lazy: kept at the target by their own
// thread, handed out without waiting, extras given back released, nothing
// leaked or released twice, and a driver with no VRAM retried, not spun on.
#include "lazy/spare_chunks.hpp"

#include "lazy/lazy_vram.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using vram::SpareChunks;
using namespace std::chrono_literals;

namespace {

// Stands in for the driver: hands out numbered handles, tracks which are
// live, and can be told to have no VRAM.
struct FakeDriver {
  std::mutex mutex;
  std::set<SpareChunks::Handle> live;
  SpareChunks::Handle next = 1;
  std::atomic<int> creates{0}, failed_creates{0}, releases{0}, double_releases{0};
  std::atomic<bool> out_of_memory{false};
  std::atomic<bool> started{false};
  std::thread::id creator;

  SpareChunks::Hooks hooks()
  {
    SpareChunks::Hooks h;
    h.thread_start = [this] { started = true; };
    h.create = [this](SpareChunks::Handle &handle) {
      std::lock_guard lock(mutex);
      creator = std::this_thread::get_id();
      if (out_of_memory) {
        ++failed_creates;
        return CUDA_ERROR_OUT_OF_MEMORY;
      }
      handle = next++;
      live.insert(handle);
      ++creates;
      return CUDA_SUCCESS;
    };
    h.release = [this](SpareChunks::Handle handle) {
      std::lock_guard lock(mutex);
      if (live.erase(handle) == 0) ++double_releases;
      ++releases;
    };
    return h;
  }
  size_t live_count()
  {
    std::lock_guard lock(mutex);
    return live.size();
  }
};

template <typename Pred> bool eventually(Pred pred, std::chrono::milliseconds limit = 5s)
{
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(SpareChunks, FillsToTheTargetOnItsOwnThread)
{
  FakeDriver gpu;
  {
    SpareChunks spares(3, gpu.hooks());
    ASSERT_TRUE(eventually([&] { return spares.count() == 3; }));
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(gpu.creates, 3) << "no more than the target";
    EXPECT_TRUE(gpu.started);
    EXPECT_NE(gpu.creator, std::this_thread::get_id());
    EXPECT_EQ(spares.target(), 3u);
  }
  EXPECT_EQ(gpu.live_count(), 0u) << "every spare released at the end";
  EXPECT_EQ(gpu.double_releases, 0);
}

TEST(SpareChunks, TakeHandsOutASpareAndTheThreadMakesAnother)
{
  FakeDriver gpu;
  SpareChunks spares(2, gpu.hooks());
  ASSERT_TRUE(eventually([&] { return spares.count() == 2; }));
  const auto a = spares.take();
  ASSERT_TRUE(a);
  {
    std::lock_guard lock(gpu.mutex);
    EXPECT_TRUE(gpu.live.count(*a));
  }
  ASSERT_TRUE(eventually([&] { return spares.count() == 2 && gpu.creates == 3; }));
  // Ours now: released by the caller, never by the spares.
  gpu.hooks().release(*a);
  EXPECT_EQ(gpu.double_releases, 0);
}

TEST(SpareChunks, ExtrasGivenBackAreReleasedDownToTheTarget)
{
  FakeDriver gpu;
  std::vector<SpareChunks::Handle> taken;
  {
    SpareChunks spares(2, gpu.hooks());
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(eventually([&] { return spares.count() >= 1; }));
      taken.push_back(*spares.take());
    }
    ASSERT_TRUE(eventually([&] { return spares.count() == 2; }));
    const int created = gpu.creates;
    for (const auto h : taken)
      EXPECT_TRUE(spares.give(h));
    // The thread gives the 6 extras back to the driver and creates none.
    ASSERT_TRUE(eventually([&] { return spares.count() == 2 && gpu.releases == 6; }));
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(gpu.creates, created);
    EXPECT_EQ(gpu.live_count(), 2u);
  }
  EXPECT_EQ(gpu.live_count(), 0u);
  EXPECT_EQ(gpu.double_releases, 0);
}

TEST(SpareChunks, GiveRefusesWhenFullSoTheCallerReleases)
{
  FakeDriver gpu;
  SpareChunks::Hooks hooks = gpu.hooks();
  // The thread is kept busy releasing slowly, so gives pile up.
  std::atomic<bool> hold{true};
  size_t kept_total = 0;
  auto release = hooks.release;
  hooks.release = [&, release](SpareChunks::Handle h) {
    while (hold)
      std::this_thread::sleep_for(1ms);
    release(h);
  };
  {
    SpareChunks spares(1, hooks);
    ASSERT_TRUE(eventually([&] { return spares.count() == 1; }));
    {
      std::lock_guard lock(gpu.mutex);
      for (SpareChunks::Handle h = 1000; h < 1100; ++h)
        gpu.live.insert(h); // chunks the caller had mapped
    }
    size_t &kept = kept_total, refused = 0;
    for (SpareChunks::Handle h = 1000; h < 1100; ++h)
      (spares.give(h) ? kept : refused)++;
    EXPECT_GT(refused, 0u);
    EXPECT_LE(spares.count(), 2u * 1 + 32 + 1);
    EXPECT_GE(kept, 30u);
    hold = false;
  }
  // The kept ones and the spare were released; the refused ones stay ours.
  EXPECT_EQ(gpu.double_releases, 0);
  EXPECT_EQ(gpu.live_count(), 100u - kept_total);
}

TEST(SpareChunks, NoVramIsRetriedAfterTheIntervalNotSpunOn)
{
  FakeDriver gpu;
  gpu.out_of_memory = true;
  SpareChunks spares(2, gpu.hooks(), 50ms);
  ASSERT_TRUE(eventually([&] { return gpu.failed_creates >= 1; }));
  std::this_thread::sleep_for(120ms);
  EXPECT_LE(gpu.failed_creates, 4) << "one try per interval";
  EXPECT_FALSE(spares.take());
  // Takes do not make it spin either.
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(spares.take());
  EXPECT_LE(gpu.failed_creates, 5);
  gpu.out_of_memory = false; // the other program is gone
  ASSERT_TRUE(eventually([&] { return spares.count() == 2; }));
}

TEST(SpareChunks, TargetZeroKeepsNothing)
{
  FakeDriver gpu;
  {
    SpareChunks spares(0, gpu.hooks());
    std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(gpu.started);
    EXPECT_FALSE(spares.take());
    EXPECT_FALSE(spares.give(42));
    EXPECT_EQ(spares.count(), 0u);
  }
  EXPECT_EQ(gpu.creates, 0);
  EXPECT_EQ(gpu.releases, 0);
}

TEST(SpareChunks, ManyTakersAndGiversLoseNothing)
{
  FakeDriver gpu;
  {
    SpareChunks spares(4, gpu.hooks());
    std::vector<std::thread> workers;
    std::atomic<int> used{0};
    for (int t = 0; t < 8; ++t)
      workers.emplace_back([&] {
        for (int i = 0; i < 500; ++i) {
          if (auto h = spares.take()) {
            ++used;
            if (!spares.give(*h)) gpu.hooks().release(*h);
          } else {
            std::this_thread::yield();
          }
        }
      });
    for (auto &w : workers)
      w.join();
    EXPECT_GT(used, 0);
    ASSERT_TRUE(eventually([&] { return spares.count() == 4; }));
    EXPECT_EQ(gpu.live_count(), 4u);
  }
  EXPECT_EQ(gpu.live_count(), 0u);
  EXPECT_EQ(gpu.double_releases, 0);
}

} // namespace

TEST(SpareChunks, DefaultIsEightMiBWorthOfChunks)
{
  constexpr uint64_t MiB = 1024 * 1024;
  EXPECT_EQ(vram::LazyVram::default_spares(2 * MiB), 4u);
  EXPECT_EQ(vram::LazyVram::default_spares(4 * MiB), 2u);
  EXPECT_EQ(vram::LazyVram::default_spares(6 * MiB), 1u);
  EXPECT_EQ(vram::LazyVram::default_spares(64 * MiB), 1u);
  EXPECT_EQ(vram::LazyVram::default_spares(1024 * MiB), 1u);
}
