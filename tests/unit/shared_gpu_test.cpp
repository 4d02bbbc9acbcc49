#include "store/shared_gpu.hpp"

#include <gtest/gtest.h>

using namespace vram;
using namespace std::chrono_literals;
using Clock = SharedGpuDetector::Clock;

namespace {

const Clock::time_point t0 = Clock::time_point{} + 1000s;

// One connection beside a training job: three small writes back to back,
// 2.5 ms each, the last completing at `t` (the run spans 7.5 ms).
void slow(SharedGpuDetector &d, Clock::time_point t)
{
  d.observe(2500us, t - 5ms);
  d.observe(2500us, t - 2500us);
  d.observe(2500us, t);
}

} // namespace

TEST(SharedGpu, YesAndNoNeverChange)
{
  SharedGpuDetector yes(ShareGpu::yes), no(ShareGpu::no);
  slow(yes, t0);
  slow(no, t0);
  EXPECT_TRUE(yes.copy_engines_only(t0));
  EXPECT_FALSE(no.copy_engines_only(t0 + 1us));
  EXPECT_EQ(no.detections(), 0u);
}

TEST(SharedGpu, AutoStartsOnTheFastPathAndIgnoresFastOperations)
{
  SharedGpuDetector d(ShareGpu::automatic);
  EXPECT_FALSE(d.copy_engines_only(t0));
  for (int i = 0; i < 100; ++i)
    d.observe(250us, t0 + i * 1ms);
  EXPECT_FALSE(d.copy_engines_only(t0 + 1s));
  EXPECT_EQ(d.detections(), 0u);
}

TEST(SharedGpu, APauseOfOurThreadsIsNotAnotherProgram)
{
  SharedGpuDetector d(ShareGpu::automatic);
  // Every request in flight held up 1 ms at once, then work goes on.
  for (int i = 0; i < 16; ++i)
    d.observe(1ms, t0 + i * 5us);
  d.observe(20us, t0 + 200us);
  // Slow ones far apart, each followed by fast ones.
  for (int i = 0; i < 10; ++i) {
    d.observe(900us, t0 + 10ms + i * 20ms);
    d.observe(900us, t0 + 10ms + i * 20ms + 1ms);
    d.observe(15us, t0 + 10ms + i * 20ms + 2ms);
  }
  // Two slow ones spanning 5 ms are not yet enough either.
  d.observe(2500us, t0 + 500ms);
  d.observe(2500us, t0 + 503ms);
  EXPECT_EQ(d.detections(), 0u);
  EXPECT_FALSE(d.copy_engines_only(t0 + 504ms));
}

TEST(SharedGpu, SlowOperationsInARowForFiveMillisecondsHoldTheCopyEnginesForASecond)
{
  SharedGpuDetector d(ShareGpu::automatic);
  slow(d, t0);
  EXPECT_EQ(d.detections(), 1u);
  EXPECT_TRUE(d.copy_engines_only(t0 + 1ms));
  EXPECT_TRUE(d.copy_engines_only(t0 + 999ms));
  EXPECT_FALSE(d.copy_engines_only(t0 + 1s));
}

TEST(SharedGpu, ShortWaitsAreSeenOnceTheyLastLongEnough)
{
  // Beside smaller products: 0.5 ms waits; the run reaches 5 ms at the
  // tenth.
  SharedGpuDetector d(ShareGpu::automatic);
  for (int i = 1; i <= 9; ++i)
    d.observe(500us, t0 + i * 500us);
  EXPECT_EQ(d.detections(), 0u);
  d.observe(500us, t0 + 5ms);
  EXPECT_EQ(d.detections(), 1u);
}

TEST(SharedGpu, ManyConnectionsAtOnceCountOnce)
{
  SharedGpuDetector d(ShareGpu::automatic);
  // 16 requests in flight, two waves of 2.5 ms: detected in the second.
  for (int wave = 1; wave <= 2; ++wave)
    for (int i = 0; i < 16; ++i)
      d.observe(2500us, t0 + wave * 2500us + i * 10us);
  EXPECT_EQ(d.detections(), 1u);
  EXPECT_TRUE(d.copy_engines_only(t0 + 5ms + 1s - 1ms));
  EXPECT_FALSE(d.copy_engines_only(t0 + 5ms + 1s));
}

TEST(SharedGpu, WhileTheOtherProgramStaysTheHoldDoublesUpToAMinuteOrSo)
{
  SharedGpuDetector d(ShareGpu::automatic);
  Clock::time_point t = t0;
  Clock::duration expected = 1s;
  for (int i = 0; i < 10; ++i) {
    slow(d, t);
    EXPECT_TRUE(d.copy_engines_only(t + expected - 1ms)) << i;
    EXPECT_FALSE(d.copy_engines_only(t + expected)) << i;
    t += expected + 7500us; // the tries after the hold are slow too
    expected = std::min<Clock::duration>(2 * expected, 64s);
  }
  EXPECT_EQ(d.detections(), 10u);
}

TEST(SharedGpu, AFastTryAfterAHoldStartsOverAtOneSecond)
{
  SharedGpuDetector d(ShareGpu::automatic);
  slow(d, t0);               // hold 1 s
  slow(d, t0 + 1s + 7500us); // hold 2 s, to t0 + 3.0075 s
  // A fast operation during the hold (issued before it) changes nothing.
  d.observe(10us, t0 + 1500ms);
  EXPECT_TRUE(d.copy_engines_only(t0 + 3s));
  // After it: the GPU is quiet again.
  d.observe(10us, t0 + 3100ms);
  EXPECT_FALSE(d.copy_engines_only(t0 + 3100ms));
  slow(d, t0 + 10s);
  EXPECT_TRUE(d.copy_engines_only(t0 + 10s + 999ms));
  EXPECT_FALSE(d.copy_engines_only(t0 + 11s));
}
