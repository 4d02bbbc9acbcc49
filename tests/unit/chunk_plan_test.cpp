#include "store/chunk_plan.hpp"

#include <gtest/gtest.h>

using namespace vram;

TEST(ChunkPlan, EmptyRequestHasNoChunks) { EXPECT_EQ(ChunkPlan(0, 4096).count(), 0u); }

TEST(ChunkPlan, SmallRequestIsOneChunk)
{
  const ChunkPlan p(4096, 256 * 1024);
  ASSERT_EQ(p.count(), 1u);
  EXPECT_EQ(p[0].offset, 0u);
  EXPECT_EQ(p[0].length, 4096u);
}

TEST(ChunkPlan, ExactMultiple)
{
  const ChunkPlan p(1 << 20, 256 * 1024);
  ASSERT_EQ(p.count(), 4u);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(p[i].offset, i * 256 * 1024);
    EXPECT_EQ(p[i].length, 256u * 1024);
  }
}

TEST(ChunkPlan, ChunksCoverTheRequestExactlyOnce)
{
  for (uint64_t len : {1u, 511u, 4097u, 1000000u, 3u * 65536 + 7}) {
    for (uint64_t chunk : {4096u, 65536u, 262144u}) {
      const ChunkPlan p(len, chunk);
      uint64_t next = 0;
      for (uint64_t i = 0; i < p.count(); ++i) {
        EXPECT_EQ(p[i].offset, next);
        EXPECT_GT(p[i].length, 0u);
        EXPECT_LE(p[i].length, chunk);
        next += p[i].length;
      }
      EXPECT_EQ(next, len) << len << " / " << chunk;
    }
  }
}
