// compress=: the store with compressed pages, against the test CUDA
// driver: round trips of every kind of page, VRAM that follows what is
// stored, ENOSPC and recovery, damaged pages, teardown, compaction.

#include "status/status_reporter.hpp"
#include "store_fixture.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

using namespace vram;
using test::random_bytes;
using test::StoreTest;

namespace {

constexpr uint64_t page = 4096;

// A page of each kind swap sees: random (stored whole), text-like
// (compresses well), same-filled (no VRAM), zero, half random.
std::vector<std::byte> page_of_kind(std::mt19937_64 &rng, unsigned kind)
{
  std::vector<std::byte> p(page);
  switch (kind % 5) {
  case 0: p = random_bytes(rng, page); break;
  case 1: {
    static const char words[] = "swap page of text that repeats, more or less; ";
    for (size_t i = 0; i < page; ++i)
      p[i] = static_cast<std::byte>(i % 97 ? words[i % (sizeof words - 1)] : rng());
    break;
  }
  case 2: {
    const uint64_t v = rng();
    for (size_t i = 0; i < page; i += 8)
      std::memcpy(p.data() + i, &v, 8);
    break;
  }
  case 3: break;
  case 4: {
    const auto half = random_bytes(rng, page / 2);
    std::memcpy(p.data(), half.data(), half.size());
    break;
  }
  }
  return p;
}

bool all_zero(const std::vector<std::byte> &v)
{
  return std::all_of(v.begin(), v.end(), [](std::byte b) { return b == std::byte{0}; });
}

class CompressedStoreTest : public StoreTest {
protected:
  // Random writes and zeroes of every kind of page at any alignment, over
  // a shadow copy, then all of it read back.
  void round_trip(const char *codec)
  {
    VramStore &s = open({{"size", "16M"}, {"compress", codec}, {"piece-size", "16K"}});
    ASSERT_TRUE(s.compressed());
    std::mt19937_64 rng(7);
    std::vector<std::byte> shadow(s.size());
    for (int i = 0; i < 400; ++i) {
      const uint64_t len = 1 + rng() % (64 * KiB);
      const uint64_t off = rng() % (s.size() - len);
      if (i % 7 == 6) {
        ASSERT_TRUE(s.zero(len, off)) << off << "+" << len;
        std::memset(shadow.data() + off, 0, len);
        continue;
      }
      std::vector<std::byte> data;
      while (data.size() < len) {
        const auto p = page_of_kind(rng, static_cast<unsigned>(rng()));
        data.insert(data.end(), p.begin(), p.end());
      }
      data.resize(len);
      const IoStatus st = s.write(data.data(), len, off);
      ASSERT_TRUE(st) << off << "+" << len << ": " << st.message;
      std::memcpy(shadow.data() + off, data.data(), len);
    }
    std::vector<std::byte> back(s.size());
    ASSERT_TRUE(s.read(back.data(), s.size(), 0));
    EXPECT_TRUE(back == shadow);
    const auto st = s.compress_stats();
    EXPECT_GT(st.pages.same_pages, 0u);
    EXPECT_GT(st.pages.whole_pages, 0u);
    EXPECT_GT(st.pages.stored_pages, st.pages.whole_pages);
    EXPECT_LT(st.pages.compressed_bytes, st.pages.original_bytes());
  }
};

} // namespace

TEST_F(CompressedStoreTest, Lz4RoundTripsEveryKindOfPageAtAnyAlignment) { round_trip("lz4"); }
TEST_F(CompressedStoreTest, ZstdRoundTripsEveryKindOfPageAtAnyAlignment) { round_trip("zstd:3"); }

TEST_F(CompressedStoreTest, SizeIsLogicalAndMayExceedTheGpu)
{
  VramStore &s = open({{"size", "256M"}, {"compress", "lz4"}});
  EXPECT_EQ(s.size(), 256 * MiB);
  EXPECT_EQ(s.vram_limit(), 64 * MiB); // the test GPU's
  EXPECT_EQ(s.allocation(), Allocation::lazy);
}

TEST_F(CompressedStoreTest, SameFilledPagesTakeNoVram)
{
  VramStore &s = open({{"size", "64M"}, {"compress", "lz4"}, {"lazy-spare", "0"}});
  std::vector<std::byte> data(16 * MiB);
  for (uint64_t p = 0; p < data.size() / page; ++p) {
    const uint64_t v = p % 3 ? 0x0101010101010101ull * (p & 0xff) : p * 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < page; i += 8)
      std::memcpy(data.data() + p * page + i, &v, 8);
  }
  ASSERT_TRUE(s.write(data.data(), data.size(), 8 * MiB));
  EXPECT_EQ(s.held(), 0u);
  EXPECT_EQ(s.compress_stats().pages.same_pages, data.size() / page);
  EXPECT_EQ(s.compress_stats().pages.original_bytes(), data.size());
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), 8 * MiB));
  EXPECT_TRUE(back == data);
}

TEST_F(CompressedStoreTest, TrimGivesTheVramBackZeroed)
{
  VramStore &s = open({{"size", "64M"}, {"compress", "lz4"}, {"lazy-spare", "0"}});
  std::mt19937_64 rng(3);
  const auto data = random_bytes(rng, 16 * MiB); // incompressible: stored whole
  ASSERT_TRUE(s.write(data.data(), data.size(), 0));
  EXPECT_GE(s.held(), 16 * MiB);
  EXPECT_EQ(s.compress_stats().pages.whole_pages, data.size() / page);
  ASSERT_TRUE(s.zero(data.size(), 0));
  EXPECT_EQ(s.held(), 0u);
  EXPECT_EQ(s.compress_stats().pages.original_bytes(), 0u);
  // Swap holds secrets: what went back to the driver was zeroed first.
  EXPECT_TRUE(all_zero(vram_contents(0, s.vram_limit())));
}

TEST_F(CompressedStoreTest, TeardownZeroesVram)
{
  VramStore &s = open({{"size", "64M"}, {"compress", "zstd"}});
  std::mt19937_64 rng(4);
  for (uint64_t off = 0; off < 8 * MiB; off += page) {
    const auto p = page_of_kind(rng, static_cast<unsigned>(off / page));
    ASSERT_TRUE(s.write(p.data(), page, off));
  }
  ASSERT_GT(s.held(), 0u);
  store_.reset();
  EXPECT_TRUE(all_zero(vram_contents(0, 64 * MiB)));
}

TEST_F(CompressedStoreTest, FullVramIsEnospcChangesNothingAndRecovers)
{
  // 16 MiB of VRAM for a 64 MiB export of incompressible pages.
  setenv("FAKECUDA_GPUS", "name=Test GPU,total=16M", 1);
  VramStore &s = open({{"size", "64M"}, {"compress", "lz4"}, {"lazy-spare", "0"}});
  std::mt19937_64 rng(5);
  std::vector<std::byte> shadow(s.size());
  IoStatus st;
  uint64_t off = 0;
  for (; off < s.size(); off += MiB) {
    const auto data = random_bytes(rng, MiB);
    st = s.write(data.data(), MiB, off);
    if (!st) break;
    std::memcpy(shadow.data() + off, data.data(), MiB);
  }
  ASSERT_EQ(st.errnum, ENOSPC) << st.message;
  EXPECT_EQ(off, 16 * MiB); // whole pages fill chunks exactly
  EXPECT_NE(st.message.find("write of 1048576 bytes at offset " + std::to_string(off) +
                            " failed with ENOSPC"),
            std::string::npos)
    << st.message;
  EXPECT_NE(st.message.find("Data already stored is unaffected"), std::string::npos) << st.message;
  EXPECT_FALSE(s.failed());
  // The failed write left nothing behind: every byte as before.
  std::vector<std::byte> back(s.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  EXPECT_TRUE(back == shadow);
  // Trimmed pages give VRAM back, and the write succeeds.
  ASSERT_TRUE(s.zero(4 * MiB, 0));
  std::memset(shadow.data(), 0, 4 * MiB);
  const auto data = random_bytes(rng, MiB);
  ASSERT_TRUE(s.write(data.data(), MiB, off));
  std::memcpy(shadow.data() + off, data.data(), MiB);
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  EXPECT_TRUE(back == shadow);
}

TEST_F(CompressedStoreTest, ReserveIsKeptFreeAndNamedWhenVramRunsShort)
{
  // Other programs hold 24 MiB; 32 MiB are to stay free.
  setenv("FAKECUDA_GPUS", "name=Test GPU,total=64M,free=40M", 1);
  VramStore &s =
    open({{"size", "256M"}, {"compress", "lz4"}, {"reserve", "32M"}, {"lazy-spare", "0"}});
  std::mt19937_64 rng(6);
  IoStatus st;
  for (uint64_t off = 0; off < s.size() && st; off += MiB) {
    const auto data = random_bytes(rng, MiB);
    st = s.write(data.data(), MiB, off);
  }
  ASSERT_EQ(st.errnum, ENOSPC) << st.message;
  EXPECT_EQ(s.held(), 8 * MiB);
  EXPECT_NE(st.message.find("has no VRAM for another 2.0 MiB chunk"), std::string::npos)
    << st.message;
  EXPECT_NE(st.message.find("reserve= keeps 32.0 MiB"), std::string::npos) << st.message;
}

TEST_F(CompressedStoreTest, APageThatDoesNotDecompressIsEio)
{
  VramStore &s = open({{"size", "16M"}, {"compress", "lz4"}, {"lazy-spare", "0"}});
  std::mt19937_64 rng(8);
  const auto p = page_of_kind(rng, 1); // text: compresses well
  ASSERT_TRUE(s.write(p.data(), page, 0));
  // Where its compressed bytes are in (fake) VRAM: spoil them there.
  compress::PageCodec codec({compress::Algorithm::lz4, 0});
  std::vector<std::byte> packed(page);
  packed.resize(codec.compress(p, packed, page));
  ASSERT_GT(packed.size(), 32u);
  const auto vram = vram_contents(0, 64 * MiB);
  const auto at = std::search(vram.begin(), vram.end(), packed.begin(), packed.end());
  ASSERT_NE(at, vram.end());
  for (uint64_t i = 0; i < 32; ++i)
    poke(static_cast<uint64_t>(at - vram.begin()) + i, std::byte{0xff});
  std::vector<std::byte> back(page);
  const IoStatus st = s.read(back.data(), page, 0);
  EXPECT_EQ(st.errnum, EIO);
  EXPECT_NE(st.message.find("page 0 (offset 0) does not decompress"), std::string::npos)
    << st.message;
  EXPECT_FALSE(s.failed());
  // A page written again reads back.
  ASSERT_TRUE(s.write(p.data(), page, 0));
  ASSERT_TRUE(s.read(back.data(), page, 0));
  EXPECT_TRUE(back == p);
}

TEST_F(CompressedStoreTest, StickyFailureTakesTheStoreOutOfService)
{
  setenv("FAKECUDA_FAIL_COPY", "3", 1);
  setenv("FAKECUDA_FAIL_MODE", "sticky", 1);
  VramStore &s = open({{"size", "16M"}, {"compress", "lz4"}, {"lazy-spare", "0"}});
  std::mt19937_64 rng(9);
  const auto p = random_bytes(rng, page);
  std::vector<std::byte> back(page);
  IoStatus st;
  for (int i = 0; i < 4 && st; ++i)
    st = i % 2 ? s.read(back.data(), page, 0) : s.write(p.data(), page, 0);
  EXPECT_EQ(st.errnum, EIO);
  EXPECT_NE(st.message.find("out of service"), std::string::npos) << st.message;
  EXPECT_TRUE(s.failed());
}

TEST_F(CompressedStoreTest, CompactionGivesBackChunksLeftSparse)
{
  VramStore &s = open({{"size", "64M"}, {"compress", "lz4"}, {"lazy-spare", "0"}});
  // Pages half random, half zero: about 2 KiB compressed, one size class.
  std::mt19937_64 rng(10);
  const uint64_t pages = 16384;
  std::vector<std::byte> shadow(pages * page);
  for (uint64_t p = 0; p < pages; ++p) {
    const auto d = page_of_kind(rng, 4);
    std::memcpy(shadow.data() + p * page, d.data(), page);
  }
  for (uint64_t off = 0; off < shadow.size(); off += MiB)
    ASSERT_TRUE(s.write(shadow.data() + off, MiB, off));
  const uint64_t full = s.held();
  // Three pages in four trimmed: every chunk a quarter used.
  for (uint64_t p = 0; p < pages; ++p)
    if (p % 4) {
      ASSERT_TRUE(s.zero(page, p * page));
      std::memset(shadow.data() + p * page, 0, page);
    }
  EXPECT_EQ(s.held(), full); // no chunk emptied by the trims alone
  // The compactor's thread polls once a second, and works until VRAM
  // held is back within its margin: an eighth over the slots in use, or
  // four chunks.
  const auto wanted = [&] {
    const auto st = s.compress_stats();
    return Compactor::worth_it(st.vram.vram_bytes, st.vram.slot_bytes, 4 * 2 * MiB);
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((wanted() || s.held() == full) && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto st = s.compress_stats();
  EXPECT_LE(s.held(), full / 2);
  EXPECT_GT(st.compacted_chunks, 0u);
  EXPECT_LE(st.vram.vram_bytes,
            std::max(st.vram.slot_bytes * 9 / 8, st.vram.slot_bytes + 4 * 2 * MiB));
  std::vector<std::byte> back(shadow.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  EXPECT_TRUE(back == shadow);
}

TEST_F(CompressedStoreTest, StatusFileReportsWhatThePagesTake)
{
  VramStore &s = open({{"size", "16M"}, {"compress", "zstd:3"}, {"lazy-spare", "0"}});
  std::mt19937_64 rng(11);
  for (unsigned k = 0; k < 5; ++k) {
    const auto p = page_of_kind(rng, k);
    ASSERT_TRUE(s.write(p.data(), page, k * page));
  }
  const std::string text = StatusReporter::status_text(s, "GPU 0");
  const auto st = s.compress_stats();
  for (const std::string &line : std::vector<std::string>{
         "compress=zstd:3\n", "original_bytes=20480\n",
         "compressed_bytes=" + std::to_string(st.pages.compressed_bytes) + "\n", "same_pages=2\n",
         "stored_pages=3\n", "whole_pages=1\n", "held=" + std::to_string(s.held()) + "\n",
         "vram_limit=" + std::to_string(20 * MiB) + "\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << " in\n" << text;
}

TEST_F(CompressedStoreTest, CompactionRunsBesideWritersAndLosesNothing)
{
  VramStore &s = open({{"size", "64M"}, {"compress", "lz4"}, {"lazy-spare", "0"}}, 6);
  // Sparse chunks for the compactor to work on: pages written, then three
  // in four trimmed.
  std::mt19937_64 rng(12);
  std::vector<std::byte> shadow(s.size());
  for (uint64_t off = 0; off < 32 * MiB; off += page) {
    const auto p = page_of_kind(rng, 4);
    std::memcpy(shadow.data() + off, p.data(), page);
  }
  ASSERT_TRUE(s.write(shadow.data(), 32 * MiB, 0));
  for (uint64_t off = 0; off < 32 * MiB; off += page)
    if ((off / page) % 4) {
      ASSERT_TRUE(s.zero(page, off));
      std::memset(shadow.data() + off, 0, page);
    }
  // Four writers, each in its own 16 MiB, while the compactor moves pages.
  const uint64_t before = s.compress_stats().compacted_chunks;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (unsigned t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      std::mt19937_64 r(100 + t);
      const uint64_t base = t * 16 * MiB;
      const auto stop = std::chrono::steady_clock::now() + std::chrono::seconds(4);
      while (std::chrono::steady_clock::now() < stop) {
        const uint64_t off = base + r() % (16 * MiB - 64 * KiB);
        const uint64_t len = 1 + r() % (64 * KiB);
        std::vector<std::byte> d;
        while (d.size() < len) {
          const auto p = page_of_kind(r, static_cast<unsigned>(r()));
          d.insert(d.end(), p.begin(), p.end());
        }
        d.resize(len);
        const bool trim = r() % 4 == 0;
        if (!(trim ? s.zero(len, off) : s.write(d.data(), len, off))) ++failures;
        if (trim) std::memset(shadow.data() + off, 0, len);
        else std::memcpy(shadow.data() + off, d.data(), len);
        std::vector<std::byte> back(len);
        if (!s.read(back.data(), len, off) || std::memcmp(back.data(), shadow.data() + off, len))
          ++failures;
      }
    });
  for (auto &w : writers)
    w.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(s.compress_stats().compacted_chunks, before);
  std::vector<std::byte> back(s.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  EXPECT_TRUE(back == shadow);
}
