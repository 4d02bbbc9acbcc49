#include "rest/idle_rest.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace vram;
using namespace std::chrono_literals;

namespace {

// The store's side, recorded.
struct FakeExport {
  std::atomic<int> rests{0};
  std::atomic<int> wakes{0};
  std::atomic<bool> calm{true};
  std::atomic<bool> resting{false};
  std::atomic<int> fail_wakes{0}; // this many wakes fail
  std::atomic<bool> fail_rest{false};
  std::chrono::milliseconds wake_time{0};
  std::atomic<int> in_request{0};

  IdleRest::Hooks hooks()
  {
    return {nullptr, [this] { return calm.load(); },
            [this]() -> std::string {
              EXPECT_EQ(in_request.load(), 0) << "rest while a request runs";
              if (fail_rest) return "cannot rest";
              EXPECT_FALSE(resting.exchange(true)) << "rested twice";
              ++rests;
              return {};
            },
            [this]() -> std::string {
              std::this_thread::sleep_for(wake_time);
              if (fail_wakes > 0) {
                --fail_wakes;
                return "the GPU fell off the bus";
              }
              EXPECT_TRUE(resting.exchange(false)) << "woke what was awake";
              ++wakes;
              return {};
            }};
  }
};

// Waits (up to a generous bound, for slow machines) for `what`.
template <typename Pred> bool eventually(Pred what)
{
  for (int i = 0; i < 2000; ++i) {
    if (what()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return what();
}

IdleRest::Settings quick() { return {20ms, 5ms}; }

} // namespace

TEST(IdleRest, RestsAfterTheIdleTimeAndTheNextRequestWakesIt)
{
  FakeExport e;
  IdleRest rest(e.hooks(), quick());
  ASSERT_TRUE(eventually([&] { return e.rests == 1; }));
  EXPECT_EQ(rest.stats().state, IdleRest::State::resting);
  EXPECT_EQ(rest.enter(), "");
  EXPECT_EQ(e.wakes, 1);
  EXPECT_EQ(rest.stats().state, IdleRest::State::awake);
  EXPECT_EQ(rest.stats().wakes, 1u);
  rest.leave();
}

TEST(IdleRest, NeverRestsWhileMemoryIsUnderPressure)
{
  FakeExport e;
  e.calm = false;
  IdleRest rest(e.hooks(), quick());
  std::this_thread::sleep_for(200ms); // 10 idle periods, 40 looks
  EXPECT_EQ(e.rests, 0);
  e.calm = true;
  EXPECT_TRUE(eventually([&] { return e.rests == 1; }));
}

TEST(IdleRest, PressureWakesARestingExportWithNoRequest)
{
  FakeExport e;
  IdleRest rest(e.hooks(), quick());
  ASSERT_TRUE(eventually([&] { return e.rests == 1; }));
  e.calm = false;
  EXPECT_TRUE(eventually([&] { return e.wakes == 1; }));
  EXPECT_EQ(rest.stats().state, IdleRest::State::awake);
  // And stays awake while the pressure lasts.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(e.rests, 1);
}

TEST(IdleRest, WakeNowWakesAndIsHarmlessWhenAwake)
{
  FakeExport e;
  IdleRest rest(e.hooks(), {1h, 5ms});
  EXPECT_EQ(rest.wake_now(), "");
  EXPECT_EQ(e.wakes, 0);
  EXPECT_EQ(rest.rest_now(), "");
  EXPECT_EQ(rest.wake_now(), "");
  EXPECT_EQ(e.wakes, 1);
}

TEST(IdleRest, RequestsArrivingTogetherShareOneWake)
{
  FakeExport e;
  e.wake_time = 50ms;
  IdleRest rest(e.hooks(), {1h, 5ms});
  ASSERT_EQ(rest.rest_now(), "");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      if (rest.enter().empty()) {
        ++e.in_request;
        ++ok;
        std::this_thread::sleep_for(1ms);
        --e.in_request;
        rest.leave();
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(e.wakes, 1);
  EXPECT_GE(rest.stats().last_wake, 50ms);
}

TEST(IdleRest, AFailedWakeFailsThatRequestAndTheNextOneTriesAgain)
{
  FakeExport e;
  IdleRest rest(e.hooks(), {1h, 5ms});
  ASSERT_EQ(rest.rest_now(), "");
  e.fail_wakes = 1;
  EXPECT_EQ(rest.enter(), "the GPU fell off the bus");
  EXPECT_EQ(rest.stats().state, IdleRest::State::resting);
  EXPECT_EQ(rest.stats().failed_wakes, 1u);
  EXPECT_EQ(rest.enter(), "");
  EXPECT_EQ(e.wakes, 1);
  rest.leave();
}

TEST(IdleRest, NoRestWhileARequestRuns)
{
  FakeExport e;
  IdleRest rest(e.hooks(), quick());
  ASSERT_EQ(rest.enter(), "");
  ++e.in_request;
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(e.rests, 0);
  EXPECT_EQ(rest.rest_now(), "requests are running");
  --e.in_request;
  rest.leave();
  EXPECT_TRUE(eventually([&] { return e.rests == 1; }));
}

TEST(IdleRest, EachRequestRestartsTheIdleTime)
{
  FakeExport e;
  IdleRest rest(e.hooks(), {100ms, 5ms});
  // Requests every 20 ms for 300 ms: never 100 ms without one.
  for (int i = 0; i < 15; ++i) {
    ASSERT_EQ(rest.enter(), "");
    rest.leave();
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(e.rests, 0);
}

TEST(IdleRest, BackgroundWorkNeitherWakesItNorKeepsItAwake)
{
  FakeExport e;
  IdleRest rest(e.hooks(), quick());
  ASSERT_TRUE(eventually([&] { return e.rests == 1; }));
  EXPECT_FALSE(rest.try_enter());
  EXPECT_EQ(e.wakes, 0);
  ASSERT_EQ(rest.enter(), "");
  rest.leave();
  // Background work while awake does not restart the idle time.
  for (int i = 0; i < 20; ++i) {
    if (rest.try_enter()) rest.leave_background();
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(eventually([&] { return e.rests == 2; }));
}

TEST(IdleRest, ARestThatFailsLeavesItAwakeAndTriesAgainLater)
{
  FakeExport e;
  e.fail_rest = true;
  IdleRest rest(e.hooks(), {1h, 5ms});
  EXPECT_EQ(rest.rest_now(), "cannot rest");
  EXPECT_EQ(rest.stats().state, IdleRest::State::awake);
  ASSERT_EQ(rest.enter(), "");
  EXPECT_EQ(e.wakes, 0);
  rest.leave();
  e.fail_rest = false;
  EXPECT_EQ(rest.rest_now(), "");
  EXPECT_EQ(e.rests, 1);
}

TEST(IdleRest, CountsTheTimeRested)
{
  FakeExport e;
  IdleRest rest(e.hooks(), {1h, 5ms});
  ASSERT_EQ(rest.rest_now(), "");
  std::this_thread::sleep_for(30ms);
  EXPECT_GE(rest.stats().rested, 30ms); // the current rest counts
  ASSERT_EQ(rest.enter(), "");
  rest.leave();
  const auto rested = rest.stats().rested;
  EXPECT_GE(rested, 30ms);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(rest.stats().rested, rested); // awake: no more
  EXPECT_STREQ(IdleRest::to_string(IdleRest::State::going_to_rest), "going-to-rest");
}
