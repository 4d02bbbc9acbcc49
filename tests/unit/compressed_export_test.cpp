// The compressed export against VRAM made of memory: every page kind,
// every alignment, running out of VRAM, damage, compaction and threads.
#include "compress/compressed_export.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

using namespace vram::compress;

namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;
constexpr uint64_t chunk = 64 * KiB;

// Chunks of memory that exist only while mapped; a copy outside a mapped
// chunk is a bug in the store and fails the test.
class MemoryChunks final : public ChunkDevice {
public:
  explicit MemoryChunks(uint32_t chunks) : bytes_(chunks * chunk), mapped_(chunks) {}

  bool map(uint32_t c, void *) override
  {
    if (fail_maps.load()) return false;
    EXPECT_FALSE(mapped_[c].exchange(true)) << "chunk " << c << " mapped twice";
    std::fill_n(bytes_.begin() + c * chunk, chunk, std::byte{0xA5}); // not zeroed: must not matter
    ++maps;
    return true;
  }
  bool release(uint32_t c, void *) override
  {
    EXPECT_TRUE(mapped_[c].exchange(false)) << "chunk " << c << " released, not mapped";
    ++releases;
    return true;
  }
  int write(uint64_t off, std::span<const std::byte> d, void *) override
  {
    if (!inside(off, d.size())) return EFAULT;
    if (fail_writes.load()) return EIO;
    ++writes;
    std::memcpy(bytes_.data() + off, d.data(), d.size());
    return 0;
  }
  int read(uint64_t off, std::span<std::byte> d, void *) override
  {
    if (!inside(off, d.size())) return EFAULT;
    if (fail_reads.load()) return EIO;
    std::memcpy(d.data(), bytes_.data() + off, d.size());
    return 0;
  }
  std::byte *at(uint64_t off) { return bytes_.data() + off; }
  size_t mapped() const
  {
    return static_cast<size_t>(
      std::count_if(mapped_.begin(), mapped_.end(), [](const auto &m) { return m.load(); }));
  }

  std::atomic<bool> fail_maps{false}, fail_writes{false}, fail_reads{false};
  std::atomic<int> maps{0}, releases{0}, writes{0};

private:
  bool inside(uint64_t off, uint64_t n)
  {
    const uint64_t c = off / chunk;
    EXPECT_EQ((off + n - 1) / chunk, c) << "a copy across chunks";
    EXPECT_TRUE(mapped_[c].load()) << "a copy to unmapped chunk " << c;
    return mapped_[c].load();
  }
  std::vector<std::byte> bytes_;
  std::vector<std::atomic<bool>> mapped_;
};

using Bytes = std::vector<std::byte>;

// Pages of four kinds: compressible, random (incompressible), same-filled
// and zero.
Bytes make_page(unsigned kind, uint64_t seed)
{
  std::mt19937_64 rng(seed);
  Bytes p(4096);
  for (size_t i = 0; i < p.size(); i += 8) {
    uint64_t v = 0;
    switch (kind % 4) {
    case 0: v = rng() % 3 ? 0 : 0x00007f0000000000ull + rng() % 4096; break;
    case 1: v = rng(); break;
    case 2: v = 0x0101010101010101ull * (seed % 255 + 1); break;
    default: break;
    }
    std::memcpy(p.data() + i, &v, 8);
  }
  return p;
}

struct Fixture {
  Fixture(uint64_t size, uint32_t chunks, CodecSetting codec = {Algorithm::lz4, 0},
          uint64_t max_request = 1 * MiB)
    : vram(chunks), exp(CompressedExport::Settings{size, chunk, chunks, 0, max_request}, vram),
      worker(codec, max_request), model(size)
  {
  }
  int write(const Bytes &d, uint64_t off)
  {
    std::string m;
    const int r = exp.write(worker, d, off, m);
    if (r == 0) std::copy(d.begin(), d.end(), model.begin() + off);
    return r;
  }
  int zero(uint64_t len, uint64_t off)
  {
    std::string m;
    const int r = exp.zero(worker, len, off, m);
    if (r == 0) std::fill_n(model.begin() + off, len, std::byte{0});
    return r;
  }
  Bytes read(uint64_t len, uint64_t off, int *err = nullptr)
  {
    Bytes b(len);
    std::string m;
    const int r = exp.read(worker, b, off, m);
    if (err) *err = r;
    else EXPECT_EQ(r, 0) << m;
    return b;
  }
  void verify()
  {
    for (uint64_t off = 0; off < model.size(); off += 256 * KiB) {
      const uint64_t n = std::min<uint64_t>(256 * KiB, model.size() - off);
      ASSERT_TRUE(read(n, off) == Bytes(model.begin() + off, model.begin() + off + n))
        << "at " << off;
    }
  }
  MemoryChunks vram;
  CompressedExport exp;
  Worker worker;
  Bytes model;
};

} // namespace

TEST(CompressedExport, EveryKindOfPageReadsBackAtEveryAlignment)
{
  for (CodecSetting codec : {CodecSetting{Algorithm::lz4, 0}, CodecSetting{Algorithm::zstd, 1},
                             CodecSetting{Algorithm::none, 0}}) {
    SCOPED_TRACE(format_codec(codec));
    Fixture f(4 * MiB, 128, codec);
    std::mt19937_64 rng(1);
    for (int i = 0; i < 300; ++i) {
      const uint64_t len = 1 + rng() % (40 * KiB);
      const uint64_t off = rng() % (f.model.size() - len);
      Bytes d;
      while (d.size() < len) {
        const Bytes p = make_page(static_cast<unsigned>(rng()), rng());
        d.insert(d.end(), p.begin(), p.end());
      }
      d.resize(len);
      ASSERT_EQ(f.write(d, off), 0);
      if (i % 7 == 0) {
        const uint64_t zlen = 1 + rng() % (20 * KiB);
        ASSERT_EQ(f.zero(zlen, rng() % (f.model.size() - 20 * KiB)), 0);
      }
    }
    f.verify();
  }
}

TEST(CompressedExport, SameFilledAndZeroPagesTakeNoVramAndNoCopy)
{
  Fixture f(1 * MiB, 16);
  Bytes d;
  for (unsigned i = 0; i < 64; ++i) {
    const Bytes p = make_page(i % 2 ? 2 : 3, i);
    d.insert(d.end(), p.begin(), p.end());
  }
  ASSERT_EQ(f.write(d, 0), 0);
  const auto s = f.exp.stats();
  EXPECT_EQ(s.pages.same_pages, 64u);
  EXPECT_EQ(s.pages.stored_pages, 0u);
  EXPECT_EQ(s.vram.vram_bytes, 0u);
  EXPECT_EQ(f.vram.writes, 0);
  EXPECT_EQ(f.vram.maps, 0);
  f.verify();
}

TEST(CompressedExport, PagesThatWillNotCompressAreStoredWhole)
{
  Fixture f(1 * MiB, 16);
  ASSERT_EQ(f.write(make_page(1, 5), 0), 0);
  ASSERT_EQ(f.write(make_page(0, 6), 4096), 0);
  const auto s = f.exp.stats();
  EXPECT_EQ(s.pages.stored_pages, 2u);
  EXPECT_EQ(s.pages.whole_pages, 1u);
  EXPECT_LT(s.pages.compressed_bytes, 4096u + 2048u);
  EXPECT_EQ(s.pages.original_bytes(), 8192u);
  f.verify();
}

TEST(CompressedExport, OverwritesAndTrimsGiveVramBack)
{
  Fixture f(2 * MiB, 64);
  std::mt19937_64 rng(2);
  for (int round = 0; round < 5; ++round)
    for (uint64_t off = 0; off < f.model.size(); off += 64 * KiB) {
      Bytes d;
      for (int i = 0; i < 16; ++i) {
        const Bytes p = make_page(rng() % 2, rng());
        d.insert(d.end(), p.begin(), p.end());
      }
      ASSERT_EQ(f.write(d, off), 0);
    }
  f.verify();
  EXPECT_GT(f.exp.stats().vram.vram_bytes, 0u);
  ASSERT_EQ(f.zero(f.model.size(), 0), 0);
  const auto s = f.exp.stats();
  EXPECT_EQ(s.vram.vram_bytes, 0u);
  EXPECT_EQ(s.vram.slot_bytes, 0u);
  EXPECT_EQ(s.pages.stored_pages, 0u);
  EXPECT_EQ(f.vram.mapped(), 0u);
  EXPECT_EQ(f.vram.maps, f.vram.releases);
  f.verify();
}

TEST(CompressedExport, OutOfVramAWriteFailsWholeAndChangesNothing)
{
  Fixture f(4 * MiB, 8); // 512 KiB of VRAM for 4 MiB of pages
  std::mt19937_64 rng(3);
  uint64_t off = 0;
  int r = 0;
  while (off < f.model.size()) {
    r = f.write(make_page(1, rng()), off); // incompressible: a whole slot each
    if (r != 0) break;
    off += 4096;
  }
  EXPECT_EQ(r, ENOSPC);
  EXPECT_EQ(off, 8 * chunk); // exactly what the VRAM holds
  // A larger write over old and new pages fails as a whole: nothing of it
  // is read back, and the old pages are intact.
  Bytes big;
  for (int i = 0; i < 8; ++i) {
    const Bytes p = make_page(1, 1000 + i);
    big.insert(big.end(), p.begin(), p.end());
  }
  std::string m;
  EXPECT_EQ(f.exp.write(f.worker, big, off - 4 * 4096, m), ENOSPC);
  EXPECT_NE(m.find("no VRAM left"), std::string::npos) << m;
  f.verify();
  // Same-filled pages still fit: they need no VRAM.
  EXPECT_EQ(f.write(make_page(2, 9), off), 0);
  // Trimming gives room back, and writes work again.
  ASSERT_EQ(f.zero(64 * KiB, 0), 0);
  EXPECT_EQ(f.write(make_page(1, 77), off + 4096), 0);
  f.verify();
}

TEST(CompressedExport, AFailedMapOrCopyFailsTheRequestAndChangesNothing)
{
  Fixture f(1 * MiB, 16);
  ASSERT_EQ(f.write(make_page(0, 1), 0), 0);
  f.vram.fail_maps = true;
  EXPECT_EQ(f.write(make_page(1, 2), 4096), ENOSPC); // a whole page: another class, no chunk
  f.vram.fail_maps = false;
  f.vram.fail_writes = true;
  EXPECT_EQ(f.write(make_page(0, 3), 0), EIO);
  f.vram.fail_writes = false;
  f.verify();
  f.vram.fail_reads = true;
  int err = 0;
  f.read(4096, 0, &err);
  EXPECT_EQ(err, EIO);
  // A partial write needs the rest of the page: it fails too.
  std::string m;
  EXPECT_EQ(f.exp.write(f.worker, Bytes(100, std::byte{1}), 10, m), EIO);
  f.vram.fail_reads = false;
  f.verify();
}

TEST(CompressedExport, APageThatNoLongerDecompressesIsAnErrorNotWrongData)
{
  Fixture f(1 * MiB, 16);
  ASSERT_EQ(f.write(make_page(0, 4), 8192), 0);
  // Find its bytes in VRAM and ruin them.
  Bytes before = f.read(4096, 8192);
  const auto s = f.exp.stats();
  ASSERT_EQ(s.pages.stored_pages, 1u);
  std::memset(f.vram.at(0), 0xff, s.pages.compressed_bytes); // the only slot: chunk 0, slot 0
  int err = 0;
  f.read(4096, 8192, &err);
  EXPECT_EQ(err, EIO);
  std::string m;
  Bytes b(4096);
  f.exp.read(f.worker, b, 8192, m);
  EXPECT_NE(m.find("does not decompress"), std::string::npos) << m;
  EXPECT_NE(m.find("page 2"), std::string::npos) << m;
}

TEST(CompressedExport, RequestsOutsideTheExportAreRefused)
{
  Fixture f(1 * MiB, 4);
  std::string m;
  Bytes b(4096);
  EXPECT_EQ(f.exp.read(f.worker, b, 1 * MiB - 100, m), EINVAL);
  EXPECT_EQ(f.exp.write(f.worker, b, 1 * MiB, m), EINVAL);
  EXPECT_EQ(f.exp.zero(f.worker, 1, 1 * MiB, m), EINVAL);
  EXPECT_EQ(f.exp.zero(f.worker, 0, 1 * MiB, m), 0);
}

TEST(CompressedExport, CompactionGivesBackTheChunksThatTrimsLeftSparse)
{
  Fixture f(8 * MiB, 256);
  std::mt19937_64 rng(5);
  // Fill with compressible pages, then trim three pages in four at random
  // places: every chunk keeps some, none can be released.
  for (uint64_t off = 0; off < f.model.size(); off += 64 * KiB) {
    Bytes d;
    for (int i = 0; i < 16; ++i) {
      const Bytes p = make_page(0, rng());
      d.insert(d.end(), p.begin(), p.end());
    }
    ASSERT_EQ(f.write(d, off), 0);
  }
  for (uint64_t p = 0; p < f.model.size() / 4096; ++p)
    if (rng() % 4) {
      ASSERT_EQ(f.zero(4096, p * 4096), 0);
    }
  const auto before = f.exp.stats();
  const size_t emptied = f.exp.compact(f.worker);
  const auto after = f.exp.stats();
  EXPECT_GT(emptied, 0u);
  EXPECT_EQ(after.compacted_chunks, emptied);
  EXPECT_LT(after.vram.vram_bytes, before.vram.vram_bytes);
  EXPECT_EQ(after.vram.slot_bytes, before.vram.slot_bytes);
  // What is left is the slots in use, and at most a chunk's worth of free
  // slots in each class (the one compaction could not empty).
  EXPECT_LE(after.vram.vram_bytes,
            after.vram.slot_bytes * 5 / 4 + SlotAllocator::class_count * chunk);
  f.verify();
}

TEST(CompressedExport, ConnectionsInParallelEachReadBackTheirOwn)
{
  constexpr int threads = 6;
  Fixture f(6 * MiB, 512);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t)
    workers.push_back(std::make_unique<Worker>(CodecSetting{Algorithm::lz4, 0}, 1 * MiB));
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      Worker &w = *workers[t];
      const uint64_t base = t * 1 * MiB; // each its own MiB
      Bytes model(1 * MiB);
      std::mt19937_64 rng(t);
      std::string m;
      for (int i = 0; i < 400; ++i) {
        const uint64_t len = 1 + rng() % (16 * KiB);
        const uint64_t off = rng() % (model.size() - len);
        if (rng() % 5 == 0) {
          if (f.exp.zero(w, len, base + off, m) != 0) ++failures;
          std::fill_n(model.begin() + off, len, std::byte{0});
        } else {
          Bytes d = make_page(static_cast<unsigned>(rng()), rng());
          while (d.size() < len) {
            const Bytes p = make_page(static_cast<unsigned>(rng()), rng());
            d.insert(d.end(), p.begin(), p.end());
          }
          d.resize(len);
          if (f.exp.write(w, d, base + off, m) != 0) ++failures;
          std::copy(d.begin(), d.end(), model.begin() + off);
        }
        if (i % 50 == 0 && t == 0) f.exp.compact(w); // compaction among the writers
      }
      Bytes back(model.size());
      if (f.exp.read(w, back, base, m) != 0 || back != model) ++failures;
    });
  for (auto &t : pool)
    t.join();
  EXPECT_EQ(failures, 0);
}
