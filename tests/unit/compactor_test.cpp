#include "store/compactor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace vram;

TEST(Compactor, WorthItOnlyPastAnEighthAndTheSlack)
{
  const uint64_t MiB = 1 << 20;
  EXPECT_FALSE(Compactor::worth_it(0, 0, 8 * MiB));
  EXPECT_FALSE(Compactor::worth_it(100 * MiB, 100 * MiB, 8 * MiB));
  EXPECT_FALSE(Compactor::worth_it(110 * MiB, 100 * MiB, 8 * MiB)); // a tenth
  EXPECT_TRUE(Compactor::worth_it(114 * MiB, 100 * MiB, 8 * MiB));  // over an eighth
  EXPECT_FALSE(Compactor::worth_it(20 * MiB, 10 * MiB, 16 * MiB));  // within the slack
  EXPECT_TRUE(Compactor::worth_it(30 * MiB, 10 * MiB, 16 * MiB));
  EXPECT_FALSE(Compactor::worth_it(10 * MiB, 12 * MiB, 0)); // never below what is used
}

TEST(Compactor, StepsWhileWantedAndStopsWhenNothingMoves)
{
  std::atomic<int> chunks_to_empty{5}, steps{0}, started{0};
  Compactor::Hooks hooks;
  hooks.thread_start = [&] { ++started; };
  hooks.wanted = [&] { return chunks_to_empty > 0; };
  hooks.step = [&] {
    ++steps;
    return --chunks_to_empty > 2; // the third step finds nothing it can empty
  };
  {
    Compactor c(std::move(hooks), Compactor::Settings{std::chrono::milliseconds(10)});
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (chunks_to_empty > 0 && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(chunks_to_empty, 0);
  EXPECT_EQ(steps, 5);
}
