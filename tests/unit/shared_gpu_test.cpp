#include "shared_gpu.hpp"

#include <gtest/gtest.h>

using namespace vram;
using namespace std::chrono_literals;
using Clock = SharedGpuDetector::Clock;

namespace {
const Clock::time_point t0 = Clock::time_point{} + 1000s;
}

TEST(SharedGpu, YesAndNoNeverChange)
{
  SharedGpuDetector yes(ShareGpu::yes), no(ShareGpu::no);
  yes.observe(10ms, t0);
  no.observe(10ms, t0);
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

TEST(SharedGpu, OneSlowOperationAloneIsNotEnough)
{
  SharedGpuDetector d(ShareGpu::automatic);
  d.observe(2500us, t0);
  d.observe(2500us, t0 + 101ms); // too late to confirm the first
  d.observe(2500us, t0 + 300ms);
  EXPECT_FALSE(d.copy_engines_only(t0 + 301ms));
  EXPECT_EQ(d.detections(), 0u);
}

// Two within 100 ms: another program, detected 1 us after `t`.
void slow(SharedGpuDetector &d, Clock::time_point t)
{
  d.observe(2500us, t);
  d.observe(2500us, t + 1us);
}

TEST(SharedGpu, TwoSlowOperationsHoldTheCopyEnginesForASecond)
{
  SharedGpuDetector d(ShareGpu::automatic);
  slow(d, t0);
  EXPECT_EQ(d.detections(), 1u);
  EXPECT_TRUE(d.copy_engines_only(t0 + 1ms));
  EXPECT_TRUE(d.copy_engines_only(t0 + 999ms));
  EXPECT_FALSE(d.copy_engines_only(t0 + 1s + 1us));
}

TEST(SharedGpu, RequestsInFlightTogetherCountOnce)
{
  SharedGpuDetector d(ShareGpu::automatic);
  for (int i = 0; i < 32; ++i)
    d.observe(2500us, t0 + i * 10us);
  EXPECT_EQ(d.detections(), 1u);
  for (int i = 0; i < 32; ++i)
    d.observe(2500us, t0 + 500ms + i * 10us);
  EXPECT_EQ(d.detections(), 1u);
  // Not extended by the later ones either: the try comes 1 s after the
  // detection (the second of them).
  EXPECT_TRUE(d.copy_engines_only(t0 + 1s));
  EXPECT_FALSE(d.copy_engines_only(t0 + 10us + 1s));
}

TEST(SharedGpu, WhileTheOtherProgramStaysTheHoldDoublesUpToAMinuteOrSo)
{
  SharedGpuDetector d(ShareGpu::automatic);
  Clock::time_point t = t0;
  Clock::duration expected = 1s;
  for (int i = 0; i < 10; ++i) {
    slow(d, t);
    EXPECT_TRUE(d.copy_engines_only(t + expected - 1ms)) << i;
    EXPECT_FALSE(d.copy_engines_only(t + 1us + expected)) << i;
    t += expected + 1ms; // the tries after the hold are slow too
    expected = std::min<Clock::duration>(2 * expected, 64s);
  }
  EXPECT_EQ(d.detections(), 10u);
}

TEST(SharedGpu, AFastTryAfterAHoldStartsOverAtOneSecond)
{
  SharedGpuDetector d(ShareGpu::automatic);
  slow(d, t0);             // hold 1 s
  slow(d, t0 + 1s + 1ms);  // hold 2 s, to t0 + 3.001 s
  // A fast operation during the hold (issued before it) changes nothing.
  d.observe(10us, t0 + 1500ms);
  EXPECT_TRUE(d.copy_engines_only(t0 + 2900ms));
  // After it: the GPU is quiet again.
  d.observe(10us, t0 + 3100ms);
  EXPECT_FALSE(d.copy_engines_only(t0 + 3100ms));
  slow(d, t0 + 10s);
  EXPECT_TRUE(d.copy_engines_only(t0 + 10s + 999ms));
  EXPECT_FALSE(d.copy_engines_only(t0 + 11s + 1us));
}
