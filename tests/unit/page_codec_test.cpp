#include "compress/page_codec.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

using namespace vram::compress;

namespace {

using Page = std::vector<std::byte>;

Page random_page(uint64_t seed)
{
  std::mt19937_64 rng(seed);
  Page p(4096);
  for (size_t i = 0; i < p.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(p.data() + i, &v, 8);
  }
  return p;
}

// Like a heap page: small integers and pointers, mostly zero bytes.
Page heap_like_page(uint64_t seed)
{
  std::mt19937_64 rng(seed);
  Page p(4096);
  for (size_t i = 0; i < p.size(); i += 8) {
    uint64_t v = 0;
    switch (rng() % 4) {
    case 0: v = 0x00007f3a12000000ull + (rng() % 65536) * 16; break;
    case 1: v = rng() % 100; break;
    default: break;
    }
    std::memcpy(p.data() + i, &v, 8);
  }
  return p;
}

std::vector<CodecSetting> codecs()
{
  return {{Algorithm::lz4, 0}, {Algorithm::zstd, 1}, {Algorithm::zstd, 3}};
}

} // namespace

TEST(PageCodecSetting, ParsesWhatTheManPageSays)
{
  std::string err;
  EXPECT_EQ(parse_codec("none", err), (CodecSetting{Algorithm::none, 0}));
  EXPECT_EQ(parse_codec("lz4", err), (CodecSetting{Algorithm::lz4, 0}));
  EXPECT_EQ(parse_codec("zstd", err), (CodecSetting{Algorithm::zstd, 1}));
  EXPECT_EQ(parse_codec("zstd:7", err), (CodecSetting{Algorithm::zstd, 7}));
  EXPECT_EQ(parse_codec("zstd:-3", err), (CodecSetting{Algorithm::zstd, -3}));
  for (const char *bad : {"zstd:0", "zstd:", "zstd:99", "zstd:1x", "gzip", "LZ4", ""}) {
    err.clear();
    EXPECT_FALSE(parse_codec(bad, err)) << bad;
    EXPECT_NE(err.find("compress="), std::string::npos) << err;
  }
  parse_codec("gzip", err);
  EXPECT_NE(err.find("none, lz4, zstd"), std::string::npos) << err;
  EXPECT_EQ(format_codec({Algorithm::zstd, 3}), "zstd:3");
}

TEST(PageCodec, RoundTripsPagesThatCompress)
{
  for (const auto &c : codecs()) {
    SCOPED_TRACE(format_codec(c));
    PageCodec codec(c);
    EXPECT_GT(codec.state_bytes(), 0u);
    for (uint64_t seed = 0; seed < 50; ++seed) {
      const Page page = heap_like_page(seed);
      Page out(4096), back(4096);
      const size_t n = codec.compress(page, out, 4096);
      ASSERT_GT(n, 0u);
      ASSERT_LT(n, 4096u / 2) << "a heap-like page should compress to under half";
      ASSERT_TRUE(codec.decompress(std::span(out).first(n), back));
      ASSERT_EQ(back, page);
    }
  }
}

TEST(PageCodec, APageThatDoesNotCompressIsStoredWhole)
{
  for (const auto &c : codecs()) {
    SCOPED_TRACE(format_codec(c));
    PageCodec codec(c);
    Page out(4096);
    EXPECT_EQ(codec.compress(random_page(1), out, 3072), 0u);
    // The limit is respected exactly.
    const Page page = heap_like_page(2);
    const size_t n = codec.compress(page, out, 4096);
    ASSERT_GT(n, 1u);
    EXPECT_EQ(codec.compress(page, out, n), n);
    EXPECT_EQ(codec.compress(page, out, n - 1), 0u);
  }
}

TEST(PageCodec, DamagedDataIsRefusedNotDecodedIntoSomethingElse)
{
  for (const auto &c : codecs()) {
    SCOPED_TRACE(format_codec(c));
    PageCodec codec(c);
    const Page page = heap_like_page(3);
    Page out(4096), back(4096);
    const size_t n = codec.compress(page, out, 4096);
    ASSERT_GT(n, 8u);
    EXPECT_FALSE(codec.decompress(std::span(out).first(n - 5), back)) << "truncated";
    EXPECT_FALSE(codec.decompress(std::span(out).first(0), back));
    // Garbage never crashes it, and never decodes to a page silently
    // unless it really is a stream that decodes to one page.
    std::mt19937_64 rng(9);
    for (int i = 0; i < 1000; ++i) {
      Page junk(1 + rng() % 2000);
      for (auto &b : junk)
        b = static_cast<std::byte>(rng());
      (void)codec.decompress(junk, back);
    }
  }
}

TEST(PageCodec, CodecsAreIndependentPerLane)
{
  // Two codecs used from two threads at once, each on its own pages.
  PageCodec a({Algorithm::zstd, 1}), b({Algorithm::zstd, 1});
  auto work = [](PageCodec &codec, uint64_t seed, bool &ok) {
    ok = true;
    for (uint64_t i = 0; i < 200; ++i) {
      const Page page = heap_like_page(seed + i);
      Page out(4096), back(4096);
      const size_t n = codec.compress(page, out, 4096);
      ok = ok && n > 0 && codec.decompress(std::span(out).first(n), back) && back == page;
    }
  };
  bool ok_a = false, ok_b = false;
  std::thread ta(work, std::ref(a), 100, std::ref(ok_a)),
    tb(work, std::ref(b), 900, std::ref(ok_b));
  ta.join();
  tb.join();
  EXPECT_TRUE(ok_a);
  EXPECT_TRUE(ok_b);
}
