#include "block_geometry.hpp"

#include <gtest/gtest.h>

using namespace integrity;

TEST(IntegrityBlockGeometry, BlocksOfAnExactMultiple)
{
  const BlockGeometry g(64 * 4096, 4096);
  EXPECT_EQ(g.block_count(), 64u);
  EXPECT_EQ(g.block(0), (ByteRange{0, 4096}));
  EXPECT_EQ(g.block(63), (ByteRange{63 * 4096, 4096}));
  EXPECT_EQ(g.block_of(4095), 0u);
  EXPECT_EQ(g.block_of(4096), 1u);
}

TEST(IntegrityBlockGeometry, ShortLastBlock)
{
  const BlockGeometry g(10000, 4096);
  EXPECT_EQ(g.block_count(), 3u);
  EXPECT_EQ(g.block(2), (ByteRange{8192, 10000 - 8192}));
  const BlockSpan s = g.span(8192, 10000 - 8192);
  EXPECT_EQ(s.first, 2u);
  EXPECT_EQ(s.last, 2u);
  EXPECT_FALSE(s.first_partial); // the request covers the whole short block
  EXPECT_EQ(s.full_count(), 1u);
}

TEST(IntegrityBlockGeometry, EmptyAndTinyExports)
{
  EXPECT_EQ(BlockGeometry(0, 4096).block_count(), 0u);
  const BlockGeometry one(1, 4096);
  EXPECT_EQ(one.block_count(), 1u);
  EXPECT_EQ(one.block(0), (ByteRange{0, 1}));
}

TEST(IntegrityBlockGeometry, AlignedRequestIsAllFullBlocks)
{
  const BlockGeometry g(1 << 20, 4096);
  const BlockSpan s = g.span(8192, 3 * 4096);
  EXPECT_EQ(s.first, 2u);
  EXPECT_EQ(s.last, 4u);
  EXPECT_FALSE(s.first_partial);
  EXPECT_FALSE(s.last_partial);
  EXPECT_EQ(s.full_begin(), 2u);
  EXPECT_EQ(s.full_end(), 5u);
  EXPECT_EQ(s.full_count(), 3u);
}

TEST(IntegrityBlockGeometry, RequestInsideOneBlock)
{
  const BlockGeometry g(1 << 20, 4096);
  const BlockSpan s = g.span(4096 + 10, 100);
  EXPECT_EQ(s.first, 1u);
  EXPECT_EQ(s.last, 1u);
  EXPECT_TRUE(s.first_partial);
  EXPECT_TRUE(s.last_partial);
  EXPECT_FALSE(s.separate_last_partial());
  EXPECT_EQ(s.full_count(), 0u);
}

TEST(IntegrityBlockGeometry, UnalignedBothEnds)
{
  const BlockGeometry g(1 << 20, 4096);
  const BlockSpan two = g.span(4095, 2);
  EXPECT_EQ(two.first, 0u);
  EXPECT_EQ(two.last, 1u);
  EXPECT_TRUE(two.first_partial);
  EXPECT_TRUE(two.separate_last_partial());
  EXPECT_EQ(two.full_count(), 0u);

  const BlockSpan many = g.span(100, 5 * 4096);
  EXPECT_EQ(many.first, 0u);
  EXPECT_EQ(many.last, 5u);
  EXPECT_EQ(many.full_begin(), 1u);
  EXPECT_EQ(many.full_end(), 5u);
}

TEST(IntegrityBlockGeometry, SpansPartitionEveryRequest)
{
  // Partial head + full middle + partial tail cover the request's blocks
  // exactly once, for every offset and length in a small export.
  const BlockGeometry g(5 * 512 + 100, 512);
  for (uint64_t off = 0; off < g.export_size(); ++off)
    for (uint64_t len = 1; off + len <= g.export_size(); ++len) {
      const BlockSpan s = g.span(off, len);
      uint64_t covered =
        s.full_count() + (s.first_partial ? 1 : 0) + (s.separate_last_partial() ? 1 : 0);
      ASSERT_EQ(covered, s.count()) << off << "+" << len;
      ASSERT_LE(g.block(s.first).offset, off);
      ASSERT_GE(g.block(s.last).end(), off + len);
    }
}

TEST(IntegrityBlockGeometry, OverlapWithin)
{
  EXPECT_EQ(overlap_within({4096, 4096}, {4000, 200}), (ByteRange{0, 104}));
  EXPECT_EQ(overlap_within({4096, 4096}, {5000, 10}), (ByteRange{904, 10}));
  EXPECT_EQ(overlap_within({4096, 4096}, {0, 100}), (ByteRange{0, 0}));
}
