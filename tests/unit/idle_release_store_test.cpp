// idle-release=: the store gives its CUDA context back while no request
// comes, keeps every byte of VRAM, and wakes for the next request; against
// the test driver, whose context dies with its last release (streams,
// events, registrations) and whose creation costs time and host memory.
#include "status/status_reporter.hpp"
#include "store_fixture.hpp"

#include <atomic>
#include <barrier>
#include <chrono>
#include <thread>

using namespace vram;
using namespace vram::test;
using namespace std::chrono_literals;

namespace {

// Whether the fake's primary context of GPU 0 is alive.
bool context_active()
{
  void *h = dlopen(FAKECUDA_PATH, RTLD_NOW | RTLD_NOLOAD);
  EXPECT_NE(h, nullptr);
  using GetState = CUresult (*)(CUdevice, unsigned *, int *);
  auto get = reinterpret_cast<GetState>(dlsym(h, "cuDevicePrimaryCtxGetState"));
  unsigned flags = 0;
  int active = -1;
  EXPECT_EQ(get(0, &flags, &active), CUDA_SUCCESS);
  dlclose(h);
  return active == 1;
}

template <typename Pred> bool eventually(Pred what, std::chrono::milliseconds bound = 20s)
{
  const auto until = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < until) {
    if (what()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return what();
}

class IdleReleaseTest : public StoreTest {
protected:
  void SetUp() override
  {
    StoreTest::SetUp();
    // A context that takes 20 ms and 16 MiB of host memory to create.
    setenv("FAKECUDA_CTX_CREATE_US", "20000", 1);
    setenv("FAKECUDA_CTX_HOST_BYTES", "16M", 1);
    unsetenv("FAKECUDA_FAIL_CALL");
  }
  void TearDown() override
  {
    StoreTest::TearDown();
    unsetenv("FAKECUDA_CTX_CREATE_US");
    unsetenv("FAKECUDA_CTX_HOST_BYTES");
    unsetenv("FAKECUDA_FAIL_CALL");
  }
  uint64_t rests() const { return store_->rest_stats()->rests; }
  bool resting() const { return store_->rest_stats()->state == IdleRest::State::resting; }
};

} // namespace

TEST_F(IdleReleaseTest, ARestKeepsEveryByteAndTheNextRequestWakesIt)
{
  VramStore &s = open({{"size", "32M"}, {"idle-release", "100ms"}});
  EXPECT_EQ(s.allocation(), Allocation::lazy);
  std::mt19937_64 rng(1);
  const auto data = random_bytes(rng, 5 * MiB);
  ASSERT_TRUE(s.write(data.data(), data.size(), 3 * MiB + 4096));
  const uint64_t held = s.held();
  ASSERT_TRUE(eventually([&] { return resting(); }));
  EXPECT_FALSE(context_active()) << "resting, but the CUDA context is still alive";
  EXPECT_EQ(s.held(), held); // the VRAM is kept
  // What the context held in host memory (the fake's 16 MiB) is kept for
  // the next wake: what the process's resident memory fell by as the
  // context went (under a sanitizer, its shadow of that memory too).
  EXPECT_GE(s.wake_reserve(), 15 * MiB);
  EXPECT_LE(s.wake_reserve(), WakeReserve::max_bytes);
  const std::string status = StatusReporter::status_text(s, "GPU 0");
  EXPECT_NE(status.find("gpu_state=resting\n"), std::string::npos) << status;
  EXPECT_NE(status.find("idle_release=0.100\n"), std::string::npos) << status;

  // (On a loaded machine the GPU may have rested before the write, too.)
  const uint64_t wakes = s.rest_stats()->wakes;
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), 3 * MiB + 4096));
  EXPECT_EQ(back, data);
  const auto st = *s.rest_stats();
  EXPECT_EQ(st.wakes, wakes + 1);
  EXPECT_GE(st.last_wake, 20ms); // the context's creation, at least
  EXPECT_EQ(st.failed_wakes, 0u);
}

TEST_F(IdleReleaseTest, ACompressedExportRestsAndWakesToo)
{
  VramStore &s = open({{"size", "32M"}, {"compress", "lz4"}, {"idle-release", "100ms"}});
  std::vector<std::byte> data(4 * MiB);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<std::byte>((i / 4096) * 7 + (i % 13)); // compressible, page by page
  ASSERT_TRUE(s.write(data.data(), data.size(), MiB));
  ASSERT_TRUE(eventually([&] { return resting(); }));
  EXPECT_FALSE(context_active());
  const uint64_t wakes = s.rest_stats()->wakes;
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), MiB));
  EXPECT_EQ(back, data);
  EXPECT_EQ(s.rest_stats()->wakes, wakes + 1);
}

TEST_F(IdleReleaseTest, ManyRestsAndWakesUnderConcurrentRequestsLoseNothing)
{
  // Rounds: four threads write and read back their own regions at once
  // (the first requests of a round arrive together at a resting GPU),
  // then all stop until it rests again.
  VramStore &s = open({{"size", "32M"}, {"idle-release", "50ms"}}, 4);
  constexpr int writers = 4, rounds = 20;
  constexpr uint64_t region = 4 * MiB;
  std::atomic<int> mismatches{0}, errors{0}, no_rest{0};
  std::barrier sync(writers);
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      const uint64_t base = t * region;
      for (int round = 0; round < rounds; ++round) {
        sync.arrive_and_wait();
        for (int i = 0; i < 5; ++i) {
          const uint64_t len = 4096 * (1 + rng() % 64);
          const uint64_t at = base + 4096 * (rng() % ((region - len) / 4096));
          const auto data = random_bytes(rng, len);
          if (!s.write(data.data(), len, at)) ++errors;
          std::vector<std::byte> back(len);
          if (!s.read(back.data(), len, at)) ++errors;
          else if (back != data) ++mismatches;
        }
        sync.arrive_and_wait();
        if (t == 0 && !eventually([&] { return resting(); })) ++no_rest;
      }
    });
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(no_rest, 0);
  const auto st = *s.rest_stats();
  EXPECT_GE(st.rests, uint64_t{rounds});
  EXPECT_GE(st.wakes, uint64_t{rounds - 1});
  EXPECT_EQ(st.failed_wakes, 0u);
}

TEST_F(IdleReleaseTest, AWakeThatFailsFailsThatRequestAndTheNextOneWakes)
{
  // Two chunks mapped by the write (maps 1 and 2), unmapped by the rest;
  // the wake's first map back (the 3rd) fails.  (A rest before the write,
  // on a loaded machine, maps nothing back: the count holds.)
  setenv("FAKECUDA_FAIL_CALL", "cuMemMap:3", 1);
  VramStore &s = open({{"size", "32M"}, {"idle-release", "100ms"}, {"lazy-spare", "0"}});
  std::mt19937_64 rng(7);
  const auto data = random_bytes(rng, 4 * MiB);
  ASSERT_TRUE(s.write(data.data(), data.size(), 0));
  ASSERT_TRUE(eventually([&] { return resting(); }));
  std::vector<std::byte> back(data.size());
  const IoStatus failed = s.read(back.data(), back.size(), 0);
  EXPECT_EQ(failed.errnum, EIO);
  EXPECT_NE(failed.message.find("could not wake from its rest"), std::string::npos)
    << failed.message;
  EXPECT_TRUE(resting());
  EXPECT_FALSE(context_active()); // the failed wake gave its context back
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  EXPECT_EQ(back, data);
  EXPECT_EQ(s.rest_stats()->failed_wakes, 1u);
  EXPECT_FALSE(s.failed());
}

TEST_F(IdleReleaseTest, ShuttingDownWhileRestingWakesToZeroTheVram)
{
  VramStore &s = open({{"size", "32M"}, {"idle-release", "100ms"}});
  std::vector<std::byte> secret(6 * MiB, std::byte{0x5a});
  ASSERT_TRUE(s.write(secret.data(), secret.size(), 0));
  ASSERT_TRUE(eventually([&] { return resting(); }));
  store_.reset();
  const auto after = vram_contents(0, 64 * MiB);
  EXPECT_TRUE(
    std::all_of(after.begin(), after.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_F(IdleReleaseTest, WithoutIdleReleaseThereIsNoGate)
{
  VramStore &s = open({{"size", "32M"}, {"allocation", "lazy"}});
  EXPECT_FALSE(s.rest_stats());
  EXPECT_NE(StatusReporter::status_text(s, "GPU 0").find("idle_release=off\n"), std::string::npos);
}
