#include "log_throttle.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using vram::LogThrottle;
using namespace std::chrono_literals;

TEST(LogThrottle, FirstOccurrenceAlwaysLogged)
{
  LogThrottle t(10s);
  const auto now = LogThrottle::Clock::time_point{} + 1000h;
  ASSERT_TRUE(t.admit(now).has_value());
  EXPECT_EQ(*LogThrottle(10s).admit(now), 0u);
}

TEST(LogThrottle, QuietWithinTheIntervalThenCountsWhatWasHeldBack)
{
  LogThrottle t(10s);
  const auto t0 = LogThrottle::Clock::time_point{} + 1000h;
  ASSERT_EQ(t.admit(t0), 0u);
  for (int i = 1; i <= 5; ++i)
    EXPECT_FALSE(t.admit(t0 + i * 1s).has_value()) << i;
  EXPECT_FALSE(t.admit(t0 + 9999ms).has_value());
  const auto next = t.admit(t0 + 10s);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 6u);
  // The interval restarts from the last message, and the count from zero.
  EXPECT_FALSE(t.admit(t0 + 19s).has_value());
  EXPECT_EQ(t.admit(t0 + 20s), 1u);
  EXPECT_EQ(t.admit(t0 + 60s), 0u);
}

TEST(LogThrottle, ConcurrentCallersLetExactlyOneThrough)
{
  LogThrottle t(1h);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      for (int j = 0; j < 1000; ++j)
        if (t.admit()) ++admitted;
    });
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(admitted.load(), 1);
  // Everything else was counted, to be reported with the next message.
  EXPECT_EQ(t.admit(LogThrottle::Clock::now() + 2h), 7999u);
}

TEST(LogThrottle, SuppressedNote)
{
  EXPECT_EQ(LogThrottle::suppressed_note(0), "");
  EXPECT_EQ(LogThrottle::suppressed_note(1), " (1 similar message suppressed)");
  EXPECT_EQ(LogThrottle::suppressed_note(42), " (42 similar messages suppressed)");
}
