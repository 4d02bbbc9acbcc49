#include "store/copy_shape.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace vram;

namespace {

// Every byte of [0, length) written at least once, nothing outside it, and
// every step on a copy engine (two rows, or one row of 32 KiB or more).
void expect_covers_on_copy_engines(uint64_t length)
{
  const CopyShape shape = copy_shape(length);
  std::vector<int> written(length, 0);
  for (const CopyStep &s : shape) {
    ASSERT_GT(s.width, 0u) << length;
    ASSERT_LE(s.offset + s.length(), length) << length;
    for (uint64_t i = s.offset; i < s.offset + s.length(); ++i)
      ++written[i];
    if (length != 1) {
      EXPECT_TRUE(s.rows >= 2 || s.length() >= copy_engine_min_1d)
        << "length " << length << ": a one-row copy of " << s.length() << " bytes";
    }
  }
  for (uint64_t i = 0; i < length; ++i)
    ASSERT_GE(written[i], 1) << "byte " << i << " of " << length << " not written";
  EXPECT_LE(shape.count, 2u);
}

} // namespace

TEST(CopyShape, NothingToCopy) { EXPECT_EQ(copy_shape(0).count, 0u); }

TEST(CopyShape, APageIsTwoRowsOfHalfAPage)
{
  const CopyShape s = copy_shape(4096);
  ASSERT_EQ(s.count, 1u);
  EXPECT_EQ(s.steps[0], (CopyStep{0, 2048, 2}));
}

TEST(CopyShape, FromThirtyTwoKiBOneRow)
{
  EXPECT_EQ(copy_shape(32768).steps[0], (CopyStep{0, 32768, 1}));
  EXPECT_EQ(copy_shape(1 << 20).steps[0], (CopyStep{0, 1 << 20, 1}));
  EXPECT_EQ(copy_shape(32767).steps[0].rows, 2u);
}

TEST(CopyShape, OddLengthsRewriteTheirLastTwoBytes)
{
  const CopyShape s = copy_shape(4097);
  ASSERT_EQ(s.count, 2u);
  EXPECT_EQ(s.steps[0], (CopyStep{0, 2048, 2}));
  EXPECT_EQ(s.steps[1], (CopyStep{4095, 1, 2}));
  const CopyShape three = copy_shape(3);
  ASSERT_EQ(three.count, 2u);
  EXPECT_EQ(three.steps[0], (CopyStep{0, 1, 2}));
  EXPECT_EQ(three.steps[1], (CopyStep{1, 1, 2}));
}

TEST(CopyShape, OneByteIsTheOneOneDimensionalSmallCopy)
{
  const CopyShape s = copy_shape(1);
  ASSERT_EQ(s.count, 1u);
  EXPECT_EQ(s.steps[0], (CopyStep{0, 1, 1}));
}

TEST(CopyShape, EveryLengthIsCoveredOnCopyEngines)
{
  for (uint64_t length = 1; length <= 4097; ++length)
    expect_covers_on_copy_engines(length);
  for (uint64_t length = 4098; length <= 65536 + 3; length += 509)
    expect_covers_on_copy_engines(length);
  for (uint64_t length : {32766u, 32767u, 32768u, 32769u})
    expect_covers_on_copy_engines(length);
}
