#include "compress/slot_allocator.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

using vram::compress::SlotAllocator;
using Slot = SlotAllocator::Slot;

namespace {

// Four runs of 64 KiB to a chunk.
constexpr uint64_t chunk_bytes = 256 * 1024;
constexpr uint64_t run_bytes = SlotAllocator::run_bytes;

// The VRAM side, recorded: which chunks are mapped, and every call.
struct FakeVram {
  std::set<uint32_t> mapped;
  int maps = 0, releases = 0;
  bool fail_map = false, fail_release = false;
  std::mutex mu;

  SlotAllocator make(uint32_t chunks, uint32_t spares = 0)
  {
    return SlotAllocator(
      chunk_bytes, chunks, spares,
      [this](uint32_t c, void *) {
        const std::lock_guard lock(mu);
        ++maps;
        if (fail_map) return false;
        EXPECT_TRUE(mapped.insert(c).second) << "chunk " << c << " mapped twice";
        return true;
      },
      [this](uint32_t c, void *) {
        const std::lock_guard lock(mu);
        ++releases;
        if (fail_release) return false;
        EXPECT_EQ(mapped.erase(c), 1u) << "chunk " << c << " released but not mapped";
        return true;
      });
  }
};

// Whole pages filling `chunks` chunks (16 to a run, 64 to a chunk), in
// the order allocated.
std::vector<Slot> fill_with_pages(SlotAllocator &a, int chunks)
{
  std::vector<Slot> slots;
  for (int i = 0; i < chunks * 64; ++i) {
    const auto s = a.allocate(4096);
    EXPECT_TRUE(s) << "page " << i;
    if (s) slots.push_back(*s);
  }
  return slots;
}

} // namespace

TEST(SlotAllocator, ClassesAreMultiplesOf64BytesUpToAPage)
{
  EXPECT_EQ(SlotAllocator::class_of(1), 0);
  EXPECT_EQ(SlotAllocator::class_of(64), 0);
  EXPECT_EQ(SlotAllocator::class_of(65), 1);
  EXPECT_EQ(SlotAllocator::class_of(4095), 63);
  EXPECT_EQ(SlotAllocator::class_of(4096), 63);
  EXPECT_EQ(SlotAllocator::class_bytes(0), 64u);
  EXPECT_EQ(SlotAllocator::class_bytes(63), 4096u);
  for (uint32_t n = 1; n <= 4096; ++n) {
    const uint32_t slot = SlotAllocator::class_bytes(SlotAllocator::class_of(n));
    ASSERT_GE(slot, n);
    ASSERT_LT(slot - n, 64u) << n;
  }
}

TEST(SlotAllocator, ARunFillsBeforeTheClassTakesAnother)
{
  FakeVram vram;
  auto a = vram.make(4);
  const uint16_t cls = SlotAllocator::class_of(1000); // 1024-byte slots
  const uint32_t per = SlotAllocator::slots_per_run(cls);
  EXPECT_EQ(per, 64u);
  std::set<uint64_t> offsets;
  for (uint32_t i = 0; i < per; ++i) {
    const auto s = a.allocate(1000);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->chunk, 0u);
    EXPECT_EQ(s->index >> 16, 0u); // the first run
    EXPECT_TRUE(offsets.insert(a.offset(*s)).second);
    EXPECT_LE(a.offset(*s) + 1024, run_bytes);
  }
  const auto next = a.allocate(1000);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->chunk, 0u);
  EXPECT_EQ(next->index >> 16, 1u); // the next run of the same chunk
  EXPECT_EQ(a.offset(*next), run_bytes);
  EXPECT_EQ(vram.maps, 1);
  const auto st = a.stats();
  EXPECT_EQ(st.chunks_in_use, 1u);
  EXPECT_EQ(st.runs_in_use, 2u);
  EXPECT_EQ(st.slot_bytes, (per + 1) * 1024u);
  EXPECT_EQ(st.vram_bytes, chunk_bytes);
}

TEST(SlotAllocator, ClassesShareAChunkInRunsOfTheirOwn)
{
  FakeVram vram;
  auto a = vram.make(8);
  const auto small = a.allocate(100);
  const auto whole = a.allocate(4096);
  const auto mid = a.allocate(2000);
  const auto more = a.allocate(3000);
  ASSERT_TRUE(small && whole && mid && more);
  // Four classes, four runs: one chunk.
  for (const auto &s : {small, whole, mid, more})
    EXPECT_EQ(s->chunk, 0u);
  std::set<uint32_t> runs{small->index >> 16, whole->index >> 16, mid->index >> 16,
                          more->index >> 16};
  EXPECT_EQ(runs.size(), 4u);
  // A fifth class needs a run: the chunk has none left, so another chunk.
  const auto fifth = a.allocate(500);
  ASSERT_TRUE(fifth);
  EXPECT_EQ(fifth->chunk, 1u);
  EXPECT_EQ(a.stats().chunks_in_use, 2u);
  EXPECT_EQ(vram.maps, 2);
}

TEST(SlotAllocator, RunsComeFromTheLowestChunkWithOneFree)
{
  FakeVram vram;
  auto a = vram.make(4);
  // Three chunks of whole pages.
  const std::vector<Slot> slots = fill_with_pages(a, 3);
  EXPECT_EQ(slots.back().chunk, 2u);
  // A run of chunk 0 empties; the next class's run goes there, not to a
  // new chunk or to chunk 2.
  for (const Slot &s : slots)
    if (s.chunk == 0 && (s.index >> 16) == 1) a.free(s);
  const auto t = a.allocate(700);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->chunk, 0u);
  EXPECT_EQ(t->index >> 16, 1u);
  EXPECT_EQ(vram.maps, 3);
}

TEST(SlotAllocator, TheLastFreeReleasesTheChunkAndItsVramIsGone)
{
  FakeVram vram;
  auto a = vram.make(2);
  std::vector<Slot> slots;
  for (int i = 0; i < 10; ++i)
    slots.push_back(*a.allocate(4096));
  slots.push_back(*a.allocate(100));
  EXPECT_EQ(vram.mapped.size(), 1u);
  for (size_t i = 0; i + 1 < slots.size(); ++i)
    a.free(slots[i]);
  EXPECT_EQ(vram.releases, 0);
  EXPECT_EQ(a.stats().runs_in_use, 1u);
  a.free(slots.back());
  EXPECT_EQ(vram.releases, 1);
  EXPECT_TRUE(vram.mapped.empty());
  const auto st = a.stats();
  EXPECT_EQ(st.vram_bytes, 0u);
  EXPECT_EQ(st.slot_bytes, 0u);
  EXPECT_EQ(st.runs_in_use, 0u);
}

TEST(SlotAllocator, SparesKeepTheirVramForTheNextRun)
{
  FakeVram vram;
  auto a = vram.make(4, /*spares=*/1);
  const auto s = *a.allocate(300);
  a.free(s);
  EXPECT_EQ(vram.releases, 0);
  EXPECT_EQ(a.stats().spare_chunks, 1u);
  EXPECT_EQ(a.stats().vram_bytes, chunk_bytes);
  const auto t = *a.allocate(3000); // takes the spare: no map
  EXPECT_EQ(t.chunk, s.chunk);
  EXPECT_EQ(vram.maps, 1);
  EXPECT_EQ(a.stats().spare_chunks, 0u);
}

TEST(SlotAllocator, NoSpaceUntilSomethingIsFreed)
{
  FakeVram vram;
  auto a = vram.make(2);
  std::vector<Slot> held;
  while (auto s = a.allocate(4096))
    held.push_back(*s);
  EXPECT_EQ(held.size(), 2 * chunk_bytes / 4096);
  EXPECT_FALSE(a.allocate(64)); // another class needs a run: none left
  a.free(held.back());
  held.pop_back();
  EXPECT_TRUE(a.allocate(4096)); // the hole
  EXPECT_FALSE(a.allocate(4096));
}

TEST(SlotAllocator, AFailedMapGivesTheChunkBack)
{
  FakeVram vram;
  auto a = vram.make(1);
  vram.fail_map = true;
  EXPECT_FALSE(a.allocate(500));
  EXPECT_EQ(a.stats().chunks_in_use, 0u);
  vram.fail_map = false;
  const auto s = a.allocate(500);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->chunk, 0u);
}

TEST(SlotAllocator, AChunkThatCannotBeReleasedStaysASpare)
{
  FakeVram vram;
  auto a = vram.make(1);
  const auto s = *a.allocate(500);
  vram.fail_release = true;
  a.free(s);
  EXPECT_EQ(a.stats().spare_chunks, 1u);
  EXPECT_EQ(a.stats().vram_bytes, chunk_bytes);
  vram.fail_release = false;
  EXPECT_TRUE(a.allocate(500)); // reused without a map
  EXPECT_EQ(vram.maps, 1);
}

TEST(SlotAllocator, MisuseIsRefusedLoudly)
{
  FakeVram vram;
  auto a = vram.make(2);
  const auto s = *a.allocate(500);
  const auto keep = *a.allocate(500);
  a.free(s);
  EXPECT_THROW(a.free(s), std::logic_error);
  Slot wrong = keep;
  wrong.cls = SlotAllocator::class_of(4096);
  EXPECT_THROW(a.free(wrong), std::logic_error);
  Slot outside = keep;
  outside.chunk = 7;
  EXPECT_THROW(a.free(outside), std::logic_error);
  EXPECT_FALSE(a.allocate(0));
  EXPECT_FALSE(a.allocate(4097));
}

TEST(SlotAllocator, EvacuationEmptiesTheChunkWithLeastIntoTheOthers)
{
  FakeVram vram;
  auto a = vram.make(8);
  // Three chunks of whole pages.
  const std::vector<Slot> slots = fill_with_pages(a, 3);
  // Chunk 0 keeps 8 pages, chunk 1 keeps 40, chunk 2 stays full.
  std::vector<Slot> live;
  std::map<uint32_t, int> kept;
  for (const Slot &s : slots) {
    const bool drop = (s.chunk == 0 && kept[0] >= 8) || (s.chunk == 1 && kept[1] >= 40);
    if (drop) {
      a.free(s);
    } else {
      ++kept[s.chunk];
      live.push_back(s);
    }
  }
  const auto chunk = a.start_evacuation();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, 0u);
  // Moves go elsewhere, never into the chunk being emptied, and map
  // nothing new.
  for (const Slot &s : live)
    if (s.chunk == 0) {
      const auto to = a.allocate(4096, nullptr, /*may_map=*/false);
      ASSERT_TRUE(to);
      EXPECT_EQ(to->chunk, 1u);
      a.free(s);
    }
  EXPECT_EQ(vram.maps, 3);
  EXPECT_EQ(vram.releases, 1);
  EXPECT_EQ(vram.mapped.count(0), 0u);
  EXPECT_TRUE(a.finish_evacuation(*chunk)); // already given back: nothing happens
  EXPECT_EQ(a.stats().chunks_in_use, 2u);
  EXPECT_EQ(a.class_stats(SlotAllocator::class_of(4096)).used_slots, 48u + 64u);
}

TEST(SlotAllocator, NoEvacuationWithoutRoomElsewhere)
{
  FakeVram vram;
  auto a = vram.make(8);
  const std::vector<Slot> slots = fill_with_pages(a, 2);
  int freed = 0;
  for (const Slot &s : slots)
    if (s.chunk == 0 && freed < 16) a.free(s), ++freed; // chunk 0 three quarters full
  EXPECT_FALSE(a.start_evacuation());                   // 48 pages, 16 free slots elsewhere
  EXPECT_EQ(a.stats().chunks_in_use, 2u);
  // Without may_map, a full export gives no slot rather than a new chunk.
  for (int i = 0; i < 16; ++i)
    ASSERT_TRUE(a.allocate(4096, nullptr, false));
  EXPECT_FALSE(a.allocate(4096, nullptr, false));
  EXPECT_EQ(vram.maps, 2);
}

TEST(SlotAllocator, AChunkPutBackAfterAnEvacuationTakesPagesAgain)
{
  FakeVram vram;
  auto a = vram.make(8);
  const std::vector<Slot> slots = fill_with_pages(a, 3);
  // Chunk 2 has one page left, and room elsewhere.
  for (const Slot &s : slots)
    if (s.chunk == 2 && s.index != 0) a.free(s);
  for (int i = 0; i < 8; ++i)
    a.free(slots[static_cast<size_t>(i)]);
  const auto chunk = a.start_evacuation();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, 2u);
  // While it is evacuated its free slots take nothing: chunk 0's do.
  const auto t = a.allocate(4096, nullptr, false);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->chunk, 0u);
  a.free(*t);
  EXPECT_FALSE(a.finish_evacuation(*chunk)); // not emptied: back in service
  std::set<uint32_t> chunks;
  for (int i = 0; i < 8 + 15; ++i)
    chunks.insert(a.allocate(4096)->chunk);
  EXPECT_EQ(chunks, (std::set<uint32_t>{0, 2}));
  EXPECT_EQ(vram.maps, 3);
}

TEST(SlotAllocator, ThreadsNeverShareASlot)
{
  FakeVram vram;
  constexpr uint32_t chunks = 64;
  auto a = vram.make(chunks, 2);
  // One owner word per 64-byte granule of the VRAM range.
  std::vector<std::atomic<int>> owner(chunks * chunk_bytes / 64);
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 1; t <= 8; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<Slot> mine;
      for (int i = 0; i < 20000; ++i) {
        if (mine.empty() || rng() % 3 != 0) {
          const auto s = a.allocate(1 + rng() % 4096);
          if (!s) continue;
          const uint64_t first = a.offset(*s) / 64, n = SlotAllocator::class_bytes(s->cls) / 64;
          for (uint64_t g = first; g < first + n; ++g) {
            int expected = 0;
            if (!owner[g].compare_exchange_strong(expected, t)) ++overlaps;
          }
          mine.push_back(*s);
        } else {
          const size_t k = rng() % mine.size();
          const Slot s = mine[k];
          mine[k] = mine.back();
          mine.pop_back();
          const uint64_t first = a.offset(s) / 64, n = SlotAllocator::class_bytes(s.cls) / 64;
          for (uint64_t g = first; g < first + n; ++g)
            owner[g].store(0);
          a.free(s);
        }
      }
      for (const Slot &s : mine) {
        const uint64_t first = a.offset(s) / 64, n = SlotAllocator::class_bytes(s.cls) / 64;
        for (uint64_t g = first; g < first + n; ++g)
          owner[g].store(0);
        a.free(s);
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(overlaps, 0);
  const auto st = a.stats();
  EXPECT_EQ(st.slot_bytes, 0u);
  EXPECT_EQ(st.chunks_in_use, 0u);
  EXPECT_EQ(st.runs_in_use, 0u);
  EXPECT_LE(st.spare_chunks, 2u);
  EXPECT_EQ(vram.mapped.size(), st.spare_chunks);
}
