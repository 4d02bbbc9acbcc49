#include "store/piece_plan.hpp"

#include <gtest/gtest.h>

using namespace vram;

TEST(PiecePlan, EmptyRequestHasNoPieces) { EXPECT_EQ(PiecePlan(0, 4096).count(), 0u); }

TEST(PiecePlan, SmallRequestIsOnePiece)
{
  const PiecePlan p(4096, 256 * 1024);
  ASSERT_EQ(p.count(), 1u);
  EXPECT_EQ(p[0].offset, 0u);
  EXPECT_EQ(p[0].length, 4096u);
}

TEST(PiecePlan, ExactMultiple)
{
  const PiecePlan p(1 << 20, 256 * 1024);
  ASSERT_EQ(p.count(), 4u);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(p[i].offset, i * 256 * 1024);
    EXPECT_EQ(p[i].length, 256u * 1024);
  }
}

TEST(PiecePlan, PiecesCoverTheRequestExactlyOnce)
{
  for (uint64_t len : {1u, 511u, 4097u, 1000000u, 3u * 65536 + 7}) {
    for (uint64_t piece : {4096u, 65536u, 262144u}) {
      const PiecePlan p(len, piece);
      uint64_t next = 0;
      for (uint64_t i = 0; i < p.count(); ++i) {
        EXPECT_EQ(p[i].offset, next);
        EXPECT_GT(p[i].length, 0u);
        EXPECT_LE(p[i].length, piece);
        next += p[i].length;
      }
      EXPECT_EQ(next, len) << len << " / " << piece;
    }
  }
}
