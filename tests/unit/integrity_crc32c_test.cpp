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

using Impl = uint32_t (*)(std::span<const std::byte>, uint32_t);

std::vector<std::pair<const char *, Impl>> implementations()
{
  std::vector<std::pair<const char *, Impl>> v{{"portable", crc32c_portable}, {"dispatch", crc32c}};
  if (crc32c_hardware_available()) v.emplace_back("sse4.2", crc32c_hardware);
  return v;
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
  for (const auto &[name, crc] : implementations()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(crc(bytes_of("123456789"), 0), 0xE3069283u);
    EXPECT_EQ(crc({}, 0), 0u);
    EXPECT_EQ(crc(zeros, 0), 0x8A9136AAu);
    EXPECT_EQ(crc(ones, 0), 0x62A8AB43u);
    EXPECT_EQ(crc(up, 0), 0x46DD794Eu);
    EXPECT_EQ(crc(down, 0), 0x113FDB5Cu);
  }
}

TEST(IntegrityCrc32c, HardwareMatchesPortableOnEveryLengthAndAlignment)
{
  if (!crc32c_hardware_available()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  const auto data = random_bytes(3 * 4096 + 64, 7);
  // Every length around the run sizes (3 x 168, 3 x 1360) and block sizes.
  for (size_t len = 0; len <= 3 * 4096; len += (len < 600 || (len > 4000 && len < 4200)) ? 1 : 37)
    for (size_t misalign : {0, 1, 3, 8}) {
      const auto s = std::span(data).subspan(misalign, len);
      ASSERT_EQ(crc32c_hardware(s, 0), crc32c_portable(s, 0)) << len << " at +" << misalign;
    }
}

TEST(IntegrityCrc32c, HardwareMatchesPortableOnRandomBuffers)
{
  if (!crc32c_hardware_available()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937_64 rng(11);
  for (int i = 0; i < 100; ++i) {
    const size_t len = rng() % (1 << 20);
    const auto data = random_bytes(len, rng());
    const uint32_t seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(crc32c_hardware(data, seed), crc32c_portable(data, seed)) << len;
  }
}

TEST(IntegrityCrc32c, ContinuesFromAnEarlierResult)
{
  const auto data = random_bytes(10000, 3);
  for (const auto &[name, crc] : implementations()) {
    SCOPED_TRACE(name);
    const uint32_t whole = crc(data, 0);
    for (size_t cut : {0, 1, 7, 8, 504, 4080, 4096, 9999, 10000}) {
      const auto s = std::span(data);
      EXPECT_EQ(crc(s.subspan(cut), crc(s.first(cut), 0)), whole) << cut;
    }
  }
}

TEST(IntegrityCrc32c, ZeroesWithoutTheBytes)
{
  for (size_t len : {0, 1, 7, 8, 9, 511, 512, 4095, 4096, 4097, 65536, 1 << 20, 3 << 20}) {
    const std::vector<std::byte> zeros(len);
    EXPECT_EQ(crc32c_of_zeroes(len), crc32c_portable(zeros, 0)) << len;
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

TEST(IntegrityCrc32c, ReportsWhichImplementationItUses)
{
  EXPECT_EQ(crc32c_implementation(), crc32c_hardware_available() ? "sse4.2" : "portable");
}

#ifdef VRAM_HAVE_ISAL
#include <isa-l/crc.h>

// The filter's CRC32C is the one ISA-L computes (crc32_iscsi, with the
// standard inversion), so the two can be compared, or swapped.
TEST(IntegrityCrc32c, MatchesIsaL)
{
  for (size_t n : {0u, 1u, 7u, 512u, 4096u, 4099u, 65536u}) {
    auto buf = random_bytes(n, n + 17);
    const uint32_t isal = ~crc32_iscsi(reinterpret_cast<unsigned char *>(buf.data()),
                                       static_cast<int>(buf.size()), ~0u);
    EXPECT_EQ(crc32c(buf), isal) << n << " bytes";
  }
}
#endif
