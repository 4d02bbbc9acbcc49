#include "byte_size.hpp"

#include <gtest/gtest.h>

using namespace vram;

TEST(ByteSize, PlainBytes)
{
  EXPECT_EQ(parse_byte_size("0"), 0u);
  EXPECT_EQ(parse_byte_size("4096"), 4096u);
}

TEST(ByteSize, BinarySuffixesInEitherCase)
{
  EXPECT_EQ(parse_byte_size("1k"), 1024u);
  EXPECT_EQ(parse_byte_size("1K"), 1024u);
  EXPECT_EQ(parse_byte_size("512M"), 512 * MiB);
  EXPECT_EQ(parse_byte_size("7G"), 7 * GiB);
  EXPECT_EQ(parse_byte_size("7GiB"), 7 * GiB);
  EXPECT_EQ(parse_byte_size("7GB"), 7 * GiB);
  EXPECT_EQ(parse_byte_size("2T"), 2048 * GiB);
  EXPECT_EQ(parse_byte_size("3s"), 1536u);
  EXPECT_EQ(parse_byte_size("10b"), 10u);
}

TEST(ByteSize, RejectsGarbage)
{
  for (const char *bad : {"", "G", "-1", "1.5G", "7 G", "7X", "7Gx", "7iB", "0x10", "1sB"})
    EXPECT_FALSE(parse_byte_size(bad)) << bad;
}

TEST(ByteSize, RejectsOverflow)
{
  EXPECT_FALSE(parse_byte_size("18446744073709551616"));
  EXPECT_FALSE(parse_byte_size("17179869184G"));
  EXPECT_EQ(parse_byte_size("18446744073709551615"), UINT64_MAX);
}

TEST(ByteSize, Formats)
{
  EXPECT_EQ(format_byte_size(100), "100 bytes");
  EXPECT_EQ(format_byte_size(7 * GiB), "7.0 GiB");
  EXPECT_EQ(format_byte_size(1536 * MiB), "1.5 GiB");
}

TEST(ByteSize, Rounds)
{
  static_assert(round_up(0, 4096) == 0);
  EXPECT_EQ(round_up(1, 4096), 4096u);
  EXPECT_EQ(round_up(4096, 4096), 4096u);
  EXPECT_EQ(round_up(5 * MiB + 1, 2 * MiB), 6 * MiB);
  EXPECT_EQ(round_down(5 * MiB + 1, 2 * MiB), 4 * MiB);
}
