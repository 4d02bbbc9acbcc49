#include "crc32c.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

using namespace integrity;

namespace {

std::span<const std::byte> bytes_of(std::string_view s)
{
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::vector<std::byte> random_bytes(size_t n, uint64_t seed)
{
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto &b : v)
    b = static_cast<std::byte>(rng());
  return v;
}

// The definition, one bit at a time (reflected polynomial 0x82F63B78):
// slow, and too plain to be wrong the way a fast one can.
uint32_t crc32c_by_definition(std::span<const std::byte> data, uint32_t crc = 0)
{
  uint32_t r = ~crc;
  for (std::byte b : data) {
    r ^= static_cast<uint32_t>(b);
    for (int bit = 0; bit < 8; ++bit)
      r = (r >> 1) ^ (0x82F63B78u & (0u - (r & 1u)));
  }
  return ~r;
}

} // namespace

TEST(IntegrityCrc32c, KnownVectors)
{
  // The check value of CRC-32C, and the test vectors of RFC 3720 (iSCSI), B.4.
  std::vector<std::byte> zeros(32), ones(32, std::byte{0xff}), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = std::byte(i);
    down[i] = std::byte(31 - i);
  }
  for (auto crc : {crc32c, crc32c_by_definition}) {
    EXPECT_EQ(crc(bytes_of("123456789"), 0), 0xE3069283u);
    EXPECT_EQ(crc({}, 0), 0u);
    EXPECT_EQ(crc(zeros, 0), 0x8A9136AAu);
    EXPECT_EQ(crc(ones, 0), 0x62A8AB43u);
    EXPECT_EQ(crc(up, 0), 0x46DD794Eu);
    EXPECT_EQ(crc(down, 0), 0x113FDB5Cu);
  }
}

TEST(IntegrityCrc32c, MatchesTheDefinitionOnEveryLengthAndAlignment)
{
  const auto data = random_bytes(2 * 4096 + 64, 7);
  // Every length up to 600 and around a block, then every 37th.
  for (size_t len = 0; len <= 2 * 4096; len += (len < 600 || (len > 4000 && len < 4200)) ? 1 : 37)
    for (size_t misalign : {0, 1, 3, 8}) {
      const auto s = std::span(data).subspan(misalign, len);
      ASSERT_EQ(crc32c(s, 0), crc32c_by_definition(s, 0)) << len << " at +" << misalign;
    }
}

TEST(IntegrityCrc32c, MatchesTheDefinitionFromAnySeed)
{
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20; ++i) {
    const size_t len = rng() % (1 << 16);
    const auto data = random_bytes(len, rng());
    const uint32_t seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(crc32c(data, seed), crc32c_by_definition(data, seed)) << len;
  }
}

TEST(IntegrityCrc32c, ContinuesFromAnEarlierResult)
{
  const auto data = random_bytes(10000, 3);
  const uint32_t whole = crc32c(data, 0);
  for (size_t cut : {0, 1, 7, 8, 504, 4080, 4096, 9999, 10000}) {
    const auto s = std::span(data);
    EXPECT_EQ(crc32c(s.subspan(cut), crc32c(s.first(cut), 0)), whole) << cut;
  }
}

TEST(IntegrityCrc32c, Zeroes)
{
  for (size_t len : {0, 1, 7, 8, 9, 511, 512, 4095, 4096, 4097, 65536, 1 << 20, 3 << 20}) {
    const std::vector<std::byte> zeros(len);
    EXPECT_EQ(crc32c_of_zeroes(len), crc32c(zeros, 0)) << len;
    if (len <= 65536) {
      EXPECT_EQ(crc32c_of_zeroes(len), crc32c_by_definition(zeros, 0)) << len;
    }
  }
}

TEST(IntegrityCrc32c, EverySingleBitFlipInABlockChangesTheCrc)
{
  auto block = random_bytes(4096, 5);
  const uint32_t good = crc32c(block);
  for (size_t i = 0; i < block.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      block[i] ^= std::byte(1u << bit);
      ASSERT_NE(crc32c(block), good) << "byte " << i << " bit " << bit;
      block[i] ^= std::byte(1u << bit);
    }
}
