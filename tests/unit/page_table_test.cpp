#include "compress/page_table.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

using namespace vram::compress;

TEST(SameFilled, EveryEightBytesAlike)
{
  std::vector<std::byte> page(4096);
  EXPECT_EQ(same_filled(page), 0u);
  const uint64_t v = 0xdeadbeef01234567ull;
  for (size_t i = 0; i < page.size(); i += 8)
    std::memcpy(page.data() + i, &v, 8);
  EXPECT_EQ(same_filled(page), v);
  page[4095] ^= std::byte{1};
  EXPECT_FALSE(same_filled(page));
  page[4095] ^= std::byte{1};
  page[3] ^= std::byte{0x80};
  EXPECT_FALSE(same_filled(page));
}

TEST(PageTable, EntriesRoundTripAndPagesStartEmpty)
{
  PageTable t(1000);
  EXPECT_EQ(t.get(0).kind, PageEntry::Kind::zero);
  EXPECT_EQ(t.get(999).kind, PageEntry::Kind::zero);
  PageEntry same{PageEntry::Kind::same, 0xffffffffffffffffull, {}, 0};
  PageEntry stored{PageEntry::Kind::stored, 0, SlotAllocator::Slot{123456, 32767, 17}, 1111};
  PageEntry whole{PageEntry::Kind::stored, 0, SlotAllocator::Slot{4000000000u, 5, 63}, 4096};
  t.set(1, same);
  t.set(2, stored);
  t.set(3, whole);
  EXPECT_EQ(t.get(1), same);
  EXPECT_EQ(t.get(2), stored);
  EXPECT_EQ(t.get(3), whole);
  EXPECT_TRUE(t.get(3).whole());
  EXPECT_FALSE(t.get(2).whole());
  EXPECT_EQ(t.get(4).kind, PageEntry::Kind::zero);
}

TEST(PageTable, StatsFollowEveryChange)
{
  PageTable t(10);
  t.set(0, {PageEntry::Kind::same, 0, {}, 0});
  t.set(1, {PageEntry::Kind::stored, 0, {0, 0, 15}, 1000});
  t.set(2, {PageEntry::Kind::stored, 0, {0, 1, 63}, 4096});
  auto s = t.stats();
  EXPECT_EQ(s.same_pages, 1u);
  EXPECT_EQ(s.stored_pages, 2u);
  EXPECT_EQ(s.whole_pages, 1u);
  EXPECT_EQ(s.compressed_bytes, 5096u);
  EXPECT_EQ(s.original_bytes(), 3 * 4096u);
  t.set(1, {PageEntry::Kind::stored, 0, {0, 2, 7}, 500}); // overwritten
  t.set(2, {});                                           // trimmed
  t.set(0, {PageEntry::Kind::same, 7, {}, 0});
  s = t.stats();
  EXPECT_EQ(s.same_pages, 1u);
  EXPECT_EQ(s.stored_pages, 1u);
  EXPECT_EQ(s.whole_pages, 0u);
  EXPECT_EQ(s.compressed_bytes, 500u);
}

TEST(PageTable, FindsThePagesOfAChunk)
{
  PageTable t(100);
  t.set(10, {PageEntry::Kind::stored, 0, {3, 0, 0}, 64});
  t.set(20, {PageEntry::Kind::stored, 0, {4, 0, 0}, 64});
  t.set(30, {PageEntry::Kind::stored, 0, {3, 9, 0}, 64});
  t.set(40, {PageEntry::Kind::same, 3, {}, 0}); // a value, not a chunk
  std::vector<uint64_t> found;
  t.for_each_in_chunk(3, [&](uint64_t page, const PageEntry &e) {
    EXPECT_EQ(e.slot.chunk, 3u);
    found.push_back(page);
  });
  EXPECT_EQ(found, (std::vector<uint64_t>{10, 30}));
}
