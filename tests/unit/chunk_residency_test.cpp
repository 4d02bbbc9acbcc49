// The bookkeeping behind allocation=lazy: map on first write, release on
// full trim, partial trims, zero, and many writers and trimmers at once.
#include "lazy/chunk_residency.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

using vram::ChunkResidency;

namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;
constexpr uint64_t B = ChunkResidency::block_size;

// Stands in for the GPU: counts maps and unmaps, and checks that no copy
// ever runs on a chunk that is not mapped.
struct FakeGpu {
  explicit FakeGpu(size_t chunks) : mapped(chunks) {}
  std::vector<std::atomic<bool>> mapped;
  std::atomic<int> maps{0}, unmaps{0}, copies_on_unmapped{0};
  CUresult fail_map = CUDA_SUCCESS;

  auto map()
  {
    return [this](size_t c) {
      if (fail_map != CUDA_SUCCESS) return fail_map;
      EXPECT_FALSE(mapped[c].exchange(true)) << "chunk " << c << " mapped twice";
      ++maps;
      return CUDA_SUCCESS;
    };
  }
  // fail_unmap: cuMemUnmap fails, the chunk stays mapped;
  // fail_release: it is unmapped, but releasing its VRAM fails.
  CUresult fail_unmap = CUDA_SUCCESS, fail_release = CUDA_SUCCESS;

  auto unmap()
  {
    return [this](size_t c, bool &gone) {
      gone = false;
      if (fail_unmap != CUDA_SUCCESS) return fail_unmap;
      EXPECT_TRUE(mapped[c].exchange(false)) << "chunk " << c << " unmapped twice";
      ++unmaps;
      gone = true;
      return fail_release;
    };
  }
  auto copy(size_t c)
  {
    return [this, c] {
      if (!mapped[c]) ++copies_on_unmapped;
      return CUDA_SUCCESS;
    };
  }
};

CUresult write(ChunkResidency &r, FakeGpu &g, uint64_t offset, uint64_t length)
{
  return r.for_each_piece(offset, length, [&](uint64_t o, uint64_t l, size_t c) {
    return r.write(o, l, g.map(), g.copy(c));
  });
}

CUresult clear(ChunkResidency &r, FakeGpu &g, uint64_t offset, uint64_t length)
{
  return r.for_each_piece(offset, length, [&](uint64_t o, uint64_t l, size_t c) {
    return r.clear(o, l, g.copy(c), g.unmap());
  });
}

bool reads_from_vram(ChunkResidency &r, uint64_t offset)
{
  bool from_vram = false;
  EXPECT_EQ(r.read(offset, 1,
                   [&](bool mapped) {
                     from_vram = mapped;
                     return CUDA_SUCCESS;
                   }),
            CUDA_SUCCESS);
  return from_vram;
}

} // namespace

TEST(ChunkResidency, Geometry)
{
  ChunkResidency r(10 * MiB, 4 * MiB);
  EXPECT_EQ(r.chunks(), 3u); // the last one partly past the end
  EXPECT_EQ(r.mapped_chunks(), 0u);
  EXPECT_THROW(ChunkResidency(10 * MiB, 0), std::invalid_argument);
  EXPECT_THROW(ChunkResidency(10 * MiB, 100 * KiB), std::invalid_argument);

  std::vector<std::tuple<uint64_t, uint64_t, size_t>> pieces;
  r.for_each_piece(3 * MiB, 6 * MiB, [&](uint64_t o, uint64_t l, size_t c) {
    pieces.emplace_back(o, l, c);
    return CUDA_SUCCESS;
  });
  const std::vector<std::tuple<uint64_t, uint64_t, size_t>> expected{
    {3 * MiB, 1 * MiB, 0}, {4 * MiB, 4 * MiB, 1}, {8 * MiB, 1 * MiB, 2}};
  EXPECT_EQ(pieces, expected);
  // An error stops the walk.
  int calls = 0;
  EXPECT_EQ(r.for_each_piece(0, 10 * MiB,
                             [&](uint64_t, uint64_t, size_t) {
                               ++calls;
                               return CUDA_ERROR_ILLEGAL_ADDRESS;
                             }),
            CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_EQ(calls, 1);
}

TEST(ChunkResidency, FirstWriteMapsTheChunkOnce)
{
  ChunkResidency r(16 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  EXPECT_FALSE(reads_from_vram(r, 5 * MiB));
  ASSERT_EQ(write(r, g, 5 * MiB, 4 * KiB), CUDA_SUCCESS);
  ASSERT_EQ(write(r, g, 5 * MiB + 8 * KiB, 100), CUDA_SUCCESS);
  EXPECT_EQ(g.maps, 1);
  EXPECT_TRUE(r.mapped(1));
  EXPECT_EQ(r.mapped_chunks(), 1u);
  EXPECT_EQ(r.live_blocks(1), 2u);
  EXPECT_TRUE(reads_from_vram(r, 5 * MiB));
  EXPECT_TRUE(reads_from_vram(r, 4 * MiB)); // same chunk, never written: zeroes in VRAM
  EXPECT_FALSE(reads_from_vram(r, 0));
  EXPECT_FALSE(reads_from_vram(r, 12 * MiB));
  EXPECT_EQ(g.copies_on_unmapped, 0);
}

TEST(ChunkResidency, WriteAcrossChunksMapsEach)
{
  ChunkResidency r(16 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 4 * MiB - B, 2 * B + 4 * MiB), CUDA_SUCCESS);
  EXPECT_EQ(r.mapped_chunks(), 3u);
  EXPECT_EQ(r.live_blocks(0), 1u);
  EXPECT_EQ(r.live_blocks(1), 1024u);
  EXPECT_EQ(r.live_blocks(2), 1u);
}

TEST(ChunkResidency, UnalignedWriteMarksEveryBlockItTouches)
{
  ChunkResidency r(4 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, B - 1, 2), CUDA_SUCCESS); // last byte of block 0, first of block 1
  EXPECT_EQ(r.live_blocks(0), 2u);
  ASSERT_EQ(write(r, g, 0, 2 * B), CUDA_SUCCESS); // same blocks again: not counted twice
  EXPECT_EQ(r.live_blocks(0), 2u);
}

TEST(ChunkResidency, FullTrimReleasesTheChunk)
{
  ChunkResidency r(16 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 4 * MiB, 64 * KiB), CUDA_SUCCESS);
  ASSERT_EQ(write(r, g, 6 * MiB, 4 * KiB), CUDA_SUCCESS);
  ASSERT_EQ(clear(r, g, 4 * MiB, 64 * KiB), CUDA_SUCCESS);
  EXPECT_TRUE(r.mapped(1)) << "a block still holds data";
  EXPECT_EQ(r.live_blocks(1), 1u);
  ASSERT_EQ(clear(r, g, 6 * MiB, 4 * KiB), CUDA_SUCCESS);
  EXPECT_FALSE(r.mapped(1));
  EXPECT_EQ(g.unmaps, 1);
  EXPECT_EQ(r.mapped_chunks(), 0u);
  EXPECT_FALSE(reads_from_vram(r, 6 * MiB));
  // And it comes back on the next write.
  ASSERT_EQ(write(r, g, 7 * MiB, 1), CUDA_SUCCESS);
  EXPECT_EQ(g.maps, 2);
  EXPECT_TRUE(r.mapped(1));
}

TEST(ChunkResidency, TrimOfTheWholeExportReleasesEverything)
{
  ChunkResidency r(10 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 0, 10 * MiB), CUDA_SUCCESS);
  EXPECT_EQ(r.mapped_chunks(), 3u);
  ASSERT_EQ(clear(r, g, 0, 10 * MiB), CUDA_SUCCESS);
  EXPECT_EQ(r.mapped_chunks(), 0u);
  EXPECT_EQ(g.unmaps, 3);
}

TEST(ChunkResidency, PartialTrimKeepsPartlyCoveredBlocks)
{
  ChunkResidency r(4 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 0, 4 * B), CUDA_SUCCESS);
  // Bytes 100 .. 3B+100: block 0 and block 3 only partly, blocks 1 and 2 entirely.
  ASSERT_EQ(clear(r, g, 100, 3 * B), CUDA_SUCCESS);
  EXPECT_EQ(r.live_blocks(0), 2u);
  // A trim inside one block frees nothing.
  ASSERT_EQ(clear(r, g, 1, B - 2), CUDA_SUCCESS);
  EXPECT_EQ(r.live_blocks(0), 2u);
  EXPECT_TRUE(r.mapped(0));
  ASSERT_EQ(clear(r, g, 0, 100), CUDA_SUCCESS);
  ASSERT_EQ(clear(r, g, 0, B), CUDA_SUCCESS);
  EXPECT_EQ(r.live_blocks(0), 1u);
  ASSERT_EQ(clear(r, g, 3 * B, B), CUDA_SUCCESS);
  EXPECT_FALSE(r.mapped(0));
  EXPECT_EQ(g.copies_on_unmapped, 0);
}

TEST(ChunkResidency, ClearOfUnmappedChunkDoesNothing)
{
  ChunkResidency r(8 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  int zeroed = 0;
  ASSERT_EQ(r.clear(
              0, 4 * MiB,
              [&] {
                ++zeroed;
                return CUDA_SUCCESS;
              },
              g.unmap()),
            CUDA_SUCCESS);
  EXPECT_EQ(zeroed, 0);
  EXPECT_EQ(g.unmaps, 0);
}

TEST(ChunkResidency, FailedMapMarksNothingAndIsReturned)
{
  ChunkResidency r(8 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  g.fail_map = CUDA_ERROR_OUT_OF_MEMORY;
  int copies = 0;
  EXPECT_EQ(r.write(0, B, g.map(),
                    [&] {
                      ++copies;
                      return CUDA_SUCCESS;
                    }),
            CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(copies, 0);
  EXPECT_FALSE(r.mapped(0));
  EXPECT_EQ(r.live_blocks(0), 0u);
  g.fail_map = CUDA_SUCCESS; // memory is free again
  EXPECT_EQ(write(r, g, 0, B), CUDA_SUCCESS);
  EXPECT_TRUE(r.mapped(0));
}

TEST(ChunkResidency, FailedZeroKeepsTheBlocks)
{
  ChunkResidency r(4 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 0, B), CUDA_SUCCESS);
  EXPECT_EQ(r.clear(
              0, B, [] { return CUDA_ERROR_LAUNCH_FAILED; }, g.unmap()),
            CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_EQ(r.live_blocks(0), 1u);
  EXPECT_TRUE(r.mapped(0));
}

TEST(ChunkResidency, ReleaseAllVisitsMappedChunks)
{
  ChunkResidency r(16 * MiB, 4 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 0, 1), CUDA_SUCCESS);
  ASSERT_EQ(write(r, g, 12 * MiB, 1), CUDA_SUCCESS);
  std::vector<size_t> seen;
  r.release_all([&](size_t c) { seen.push_back(c); });
  EXPECT_EQ(seen, (std::vector<size_t>{0, 3}));
  EXPECT_EQ(r.mapped_chunks(), 0u);
}

// Writers and trimmers on the same few chunks at once: a chunk is mapped
// exactly when it holds data, no copy ever runs on an unmapped chunk, and
// the counts agree with a serial replay of the final state.
TEST(ChunkResidency, ConcurrentWritersAndTrimmersOnOneChunk)
{
  ChunkResidency r(8 * MiB, 2 * MiB);
  FakeGpu g(r.chunks());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 20000; ++i) {
        // Mostly chunk 0, sometimes straddling into chunk 1.
        const uint64_t offset = (rng() % 600) * B;
        const uint64_t length = (1 + rng() % 4) * B - (rng() % 2) * 7;
        if (t % 2 == 0) ASSERT_EQ(write(r, g, offset, length), CUDA_SUCCESS);
        else ASSERT_EQ(clear(r, g, offset, length), CUDA_SUCCESS);
      }
    });
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(g.copies_on_unmapped, 0);
  EXPECT_GT(g.unmaps.load(), 0) << "trimmers never emptied a chunk: the test proves little";
  for (size_t c = 0; c < r.chunks(); ++c) {
    EXPECT_EQ(r.mapped(c), g.mapped[c].load()) << c;
    EXPECT_EQ(r.mapped(c), r.live_blocks(c) != 0) << c;
  }
  // Clearing everything releases everything, whatever state was left.
  ASSERT_EQ(clear(r, g, 0, 8 * MiB), CUDA_SUCCESS);
  EXPECT_EQ(r.mapped_chunks(), 0u);
  EXPECT_EQ(g.maps.load(), g.unmaps.load());
}

TEST(ChunkResidency, AChunkThatCouldNotBeUnmappedStaysMappedAndIsRetried)
{
  ChunkResidency r(8 * MiB, 2 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 2 * MiB, 4 * KiB), CUDA_SUCCESS);
  g.fail_unmap = CUDA_ERROR_INVALID_VALUE;
  EXPECT_EQ(clear(r, g, 2 * MiB, 4 * KiB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(r.mapped_chunks(), 1u); // still mapped: its VRAM is still there
  // Writes and reads still go to the mapped VRAM, never to an unmapped range.
  ASSERT_EQ(write(r, g, 2 * MiB + 8 * KiB, 4 * KiB), CUDA_SUCCESS);
  EXPECT_EQ(g.maps, 1);
  g.fail_unmap = CUDA_SUCCESS;
  ASSERT_EQ(clear(r, g, 2 * MiB, 2 * MiB), CUDA_SUCCESS);
  EXPECT_EQ(r.mapped_chunks(), 0u);
  EXPECT_EQ(g.unmaps, 1);
  EXPECT_EQ(g.copies_on_unmapped, 0);
}

TEST(ChunkResidency, AChunkUnmappedWhoseVramCouldNotBeReleasedIsOutOfTheExport)
{
  ChunkResidency r(8 * MiB, 2 * MiB);
  FakeGpu g(r.chunks());
  ASSERT_EQ(write(r, g, 4 * MiB, 4 * KiB), CUDA_SUCCESS);
  g.fail_release = CUDA_ERROR_INVALID_VALUE;
  // The release's error is the request's, but the chunk is gone: marking it
  // mapped would send later copies to an unmapped range.
  EXPECT_EQ(clear(r, g, 4 * MiB, 4 * KiB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(r.mapped_chunks(), 0u);
  g.fail_release = CUDA_SUCCESS;
  ASSERT_EQ(write(r, g, 4 * MiB, 4 * KiB), CUDA_SUCCESS); // maps it again
  EXPECT_EQ(g.maps, 2);
  EXPECT_EQ(g.copies_on_unmapped, 0);
}
