// The integrity filter's core in front of an in-memory disk that the
// tests corrupt behind its back.
#include "checked_export.hpp"
#include "crc32c.hpp"
#include "integrity_memory_backend.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

using namespace integrity;
using integrity_test::CapturedLog;
using integrity_test::MemoryBackend;

namespace {

constexpr uint64_t kSize = 64 * 4096 + 1000; // a short last block too
const Settings kSettings{4096, MlockPolicy::off};

std::vector<std::byte> random_bytes(size_t n, std::mt19937_64 &rng)
{
  std::vector<std::byte> v(n);
  for (auto &b : v)
    b = static_cast<std::byte>(rng());
  return v;
}

struct Fixture : ::testing::Test {
  CapturedLog log;
  MemoryBackend disk{kSize};
  CheckedExport exp{"test", kSize, kSettings};
  std::vector<std::byte> shadow = std::vector<std::byte>(kSize);
  std::mt19937_64 rng{42};

  void write(uint64_t off, std::span<const std::byte> data, int expect = 0)
  {
    ASSERT_EQ(exp.write(disk, data, off, {}), expect) << "write " << data.size() << "@" << off;
    if (expect == 0) std::copy(data.begin(), data.end(), shadow.begin() + static_cast<long>(off));
  }

  // Reads and compares with what was written; returns the error.
  int read_check(uint64_t off, uint64_t len)
  {
    std::vector<std::byte> got(len, std::byte{0x5a});
    const int err = exp.read(disk, got, off);
    if (err == 0) {
      EXPECT_TRUE(std::equal(got.begin(), got.end(), shadow.begin() + static_cast<long>(off)))
        << "read " << len << "@" << off << " returned wrong data";
    } else {
      EXPECT_TRUE(
        std::all_of(got.begin(), got.end(), [](std::byte b) { return b == std::byte{0}; }))
        << "a failed read left data in the buffer";
    }
    return err;
  }
};

using IntegrityCheckedExport = Fixture;

} // namespace

TEST_F(IntegrityCheckedExport, NeverWrittenBlocksReadAsZeroes)
{
  for (auto [off, len] : std::initializer_list<std::pair<uint64_t, uint64_t>>{
         {0, 4096}, {0, kSize}, {100, 5000}, {kSize - 1000, 1000}, {kSize - 1, 1}})
    EXPECT_EQ(read_check(off, len), 0);
  EXPECT_TRUE(log.errors().empty());
}

TEST_F(IntegrityCheckedExport, RoundTripsAtEveryAlignment)
{
  for (int i = 0; i < 3000; ++i) {
    const uint64_t len = 1 + rng() % (3 * 4096 + 10);
    const uint64_t off = rng() % (kSize - len + 1);
    write(off, random_bytes(len, rng));
    const uint64_t rlen = 1 + rng() % (5 * 4096);
    const uint64_t roff = rng() % (kSize - std::min(rlen, kSize) + 1);
    ASSERT_EQ(read_check(roff, std::min(rlen, kSize - roff)), 0);
  }
  EXPECT_EQ(read_check(0, kSize), 0);
  EXPECT_TRUE(log.errors().empty());
}

TEST_F(IntegrityCheckedExport, AlignedRequestsAreOneBackendCall)
{
  const auto data = random_bytes(8 * 4096, rng);
  write(4 * 4096, data);
  EXPECT_EQ(disk.reads, 0);
  EXPECT_EQ(disk.writes, 1);
  EXPECT_EQ(read_check(4 * 4096, 8 * 4096), 0);
  EXPECT_EQ(disk.reads, 1);
}

TEST_F(IntegrityCheckedExport, UnalignedWriteReadsAndChecksOnlyThePartialBlocks)
{
  write(4096 + 10, random_bytes(3 * 4096, rng)); // blocks 1 (partial), 2, 3, 4 (partial)
  EXPECT_EQ(disk.reads, 2);
  EXPECT_EQ(disk.writes, 1);
  EXPECT_EQ(read_check(0, 6 * 4096), 0);
}

TEST_F(IntegrityCheckedExport, EveryFlippedBitIsCaughtByEveryReadCoveringIt)
{
  write(0, random_bytes(kSize, rng));
  for (int i = 0; i < 2000; ++i) {
    const uint64_t at = rng() % kSize;
    const int bit = static_cast<int>(rng() % 8);
    disk.flip_bit(at, bit);
    // A read covering the byte, at any alignment: EIO.
    const uint64_t before = rng() % std::min<uint64_t>(at + 1, 3 * 4096);
    const uint64_t after = rng() % std::min<uint64_t>(kSize - at, 3 * 4096);
    ASSERT_EQ(read_check(at - before, before + 1 + after), EIO) << "flip at " << at;
    // Reads that do not touch the block still work.
    const ByteRange bad = exp.geometry().block(exp.geometry().block_of(at));
    if (bad.offset >= 4096) {
      ASSERT_EQ(read_check(bad.offset - 4096, 4096), 0);
    }
    if (bad.end() < kSize) {
      ASSERT_EQ(read_check(bad.end(), std::min<uint64_t>(4096, kSize - bad.end())), 0);
    }
    // Rewriting the block heals it.
    const uint64_t b = exp.geometry().block_of(at);
    const ByteRange r = exp.geometry().block(b);
    write(r.offset, random_bytes(r.length, rng));
    ASSERT_EQ(read_check(r.offset, r.length), 0);
  }
}

TEST_F(IntegrityCheckedExport, AMismatchIsLoggedOncePerBlockWithItsOffset)
{
  write(0, random_bytes(16 * 4096, rng));
  disk.flip_bit(5 * 4096 + 17, 3);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(read_check(5 * 4096, 4096), EIO);
  EXPECT_EQ(read_check(4 * 4096, 3 * 4096), EIO);
  ASSERT_EQ(log.errors().size(), 1u);
  const std::string m = log.errors()[0];
  EXPECT_NE(m.find("data corruption in export \"test\" at offset 20480 (0x5000), block 5 of "
                   "4.0 KiB"),
            std::string::npos)
    << m;

  // Written again, then corrupted again: that is news again.
  write(5 * 4096, random_bytes(4096, rng));
  disk.flip_bit(5 * 4096, 0);
  EXPECT_EQ(read_check(5 * 4096, 4096), EIO);
  EXPECT_EQ(log.errors().size(), 2u);
}

TEST_F(IntegrityCheckedExport, ARequestOverSeveralBadBlocksLogsEachOfThem)
{
  write(0, random_bytes(16 * 4096, rng));
  disk.flip_bit(2 * 4096 + 1, 0); // partial head of the read below
  disk.flip_bit(4 * 4096 + 1, 0); // a whole block in the middle
  disk.flip_bit(7 * 4096 + 1, 0); // partial tail
  EXPECT_EQ(read_check(2 * 4096 + 100, 5 * 4096 + 100), EIO);
  EXPECT_EQ(log.errors().size(), 3u);
}

TEST_F(IntegrityCheckedExport, ABlockCorruptedBeforeItWasEverWrittenIsCaught)
{
  const std::byte junk[] = {std::byte{1}};
  disk.poke(9 * 4096 + 4000, junk);
  EXPECT_EQ(read_check(9 * 4096, 4096), EIO);
  EXPECT_EQ(read_check(9 * 4096 + 4000, 1), EIO);
  EXPECT_EQ(read_check(8 * 4096, 4096), 0);
  ASSERT_EQ(log.errors().size(), 1u);
}

TEST_F(IntegrityCheckedExport, ShortLastBlockIsCheckedToo)
{
  write(kSize - 1000, random_bytes(1000, rng));
  EXPECT_EQ(read_check(kSize - 1000, 1000), 0);
  disk.flip_bit(kSize - 1, 7);
  EXPECT_EQ(read_check(kSize - 1, 1), EIO);
  EXPECT_EQ(read_check(kSize - 5000, 5000), EIO);
}

TEST_F(IntegrityCheckedExport, PartialWriteOverACorruptBlockFailsAndWritesNothing)
{
  write(0, random_bytes(4 * 4096, rng));
  disk.flip_bit(4096 + 3000, 1);
  const int writes = disk.writes;
  // Only part of block 1 would be rewritten: the rest is bad, so no new
  // checksum may vouch for it.
  write(4096 + 10, random_bytes(100, rng), EIO);
  EXPECT_EQ(disk.writes, writes);
  EXPECT_EQ(read_check(4096, 4096), EIO);
  // Writing the whole block heals it.
  write(4096, random_bytes(4096, rng));
  EXPECT_EQ(read_check(0, 4 * 4096), 0);
}

TEST_F(IntegrityCheckedExport, ZeroAndTrimAlignedAndUnaligned)
{
  write(0, random_bytes(kSize, rng));
  struct Case {
    bool trim;
    uint64_t off, len;
  };
  for (const Case c : {Case{false, 4096, 4096}, Case{true, 8192, 3 * 4096}, Case{false, 100, 50},
                       Case{true, 20 * 4096 + 5, 4 * 4096}, Case{false, kSize - 1500, 1500},
                       Case{true, 30 * 4096 - 1, 2}}) {
    const int err = c.trim ? exp.trim(disk, c.len, c.off, false) : exp.zero(disk, c.len, c.off, {});
    ASSERT_EQ(err, 0);
    std::fill_n(shadow.begin() + static_cast<long>(c.off), c.len, std::byte{0});
    if (c.trim) {
      EXPECT_TRUE(disk.last_flags().may_trim);
    }
  }
  EXPECT_EQ(read_check(0, kSize), 0);
  EXPECT_TRUE(log.errors().empty());
  EXPECT_EQ(disk.writes, 1); // zero and trim went to the backend's zero
}

TEST_F(IntegrityCheckedExport, ZeroHealsACorruptBlockButAPartialZeroDoesNot)
{
  write(0, random_bytes(8 * 4096, rng));
  disk.flip_bit(2 * 4096 + 5, 0);
  EXPECT_EQ(exp.zero(disk, 100, 2 * 4096 + 1000, {}), EIO);
  EXPECT_EQ(read_check(2 * 4096, 4096), EIO);
  EXPECT_EQ(exp.zero(disk, 4096, 2 * 4096, {}), 0);
  std::fill_n(shadow.begin() + 2 * 4096, 4096, std::byte{0});
  EXPECT_EQ(read_check(0, 8 * 4096), 0);
}

TEST_F(IntegrityCheckedExport, FailedBackendReadIsPassedOnWithAnEmptyBuffer)
{
  write(0, random_bytes(4096, rng));
  disk.fail_reads = true;
  EXPECT_EQ(read_check(0, 4096), EIO);
  EXPECT_EQ(read_check(10, 10), EIO);
  disk.fail_reads = false;
  EXPECT_EQ(read_check(0, 4096), 0);
  EXPECT_TRUE(log.errors().empty()); // not corruption: the plugin logs its own errors
}

TEST_F(IntegrityCheckedExport, AfterAFailedWriteTheBlocksTakeWhatTheBackendHolds)
{
  write(0, random_bytes(8 * 4096, rng));
  // The backend writes one and a half blocks of four, then fails.
  disk.fail_writes_after = 4096 + 2048;
  const auto data = random_bytes(4 * 4096, rng);
  EXPECT_EQ(exp.write(disk, data, 2 * 4096, {}), EIO);
  disk.fail_writes_after = -1;
  std::copy_n(disk.contents().begin() + 2 * 4096, 4 * 4096, shadow.begin() + 2 * 4096);
  // Whatever is there now reads back without a false alarm.
  EXPECT_EQ(read_check(0, 8 * 4096), 0);
  EXPECT_TRUE(log.errors().empty());
}

TEST_F(IntegrityCheckedExport, AFailedWriteThatCannotBeReadBackIsSettledByTheNextRead)
{
  write(0, random_bytes(8 * 4096, rng));
  // A transient GPU error fails the write part way, and the read-back
  // right after it fails too: the blocks' contents are unknown.
  disk.fail_writes_after = 4096 + 2048;
  disk.fail_reads = true;
  const auto data = random_bytes(4 * 4096, rng);
  EXPECT_EQ(exp.write(disk, data, 2 * 4096, {}), EIO);
  disk.fail_writes_after = -1;
  EXPECT_EQ(read_check(2 * 4096, 4096), EIO); // still the backend's error
  disk.fail_reads = false;
  std::copy_n(disk.contents().begin() + 2 * 4096, 4 * 4096, shadow.begin() + 2 * 4096);
  // Now the read takes what the backend holds, with no false alarm.
  EXPECT_EQ(read_check(0, 8 * 4096), 0);
  EXPECT_EQ(read_check(3 * 4096 + 10, 100), 0);
  EXPECT_TRUE(log.errors().empty()) << log.errors().front();
  // And corruption is still caught there afterwards.
  disk.flip_bit(3 * 4096 + 7, 1);
  EXPECT_EQ(read_check(3 * 4096, 4096), EIO);
  EXPECT_EQ(log.errors().size(), 1u);
}

TEST_F(IntegrityCheckedExport, APartialWriteIntoAnUnsettledBlockTakesItsOtherBytesAsTheyAre)
{
  write(0, random_bytes(4 * 4096, rng));
  disk.fail_writes_after = 2048;
  disk.fail_reads = true;
  EXPECT_EQ(exp.write(disk, random_bytes(4096, rng), 4096, {}), EIO);
  disk.fail_writes_after = -1;
  disk.fail_reads = false;
  std::copy_n(disk.contents().begin() + 4096, 4096, shadow.begin() + 4096);
  write(4096 + 100, random_bytes(10, rng)); // read-modify-write of block 1
  EXPECT_EQ(read_check(0, 4 * 4096), 0);
  EXPECT_TRUE(log.errors().empty()) << log.errors().front();
}

TEST_F(IntegrityCheckedExport, RefusedFastZeroChangesNothing)
{
  write(0, random_bytes(4 * 4096, rng));
  disk.refuse_fast_zero = true;
  const int reads = disk.reads;
  EXPECT_EQ(exp.zero(disk, 4096, 4096, {.fast_zero = true}), ENOTSUP);
  EXPECT_EQ(disk.reads, reads); // no re-read: nothing changed
  EXPECT_EQ(read_check(0, 4 * 4096), 0);
}

TEST_F(IntegrityCheckedExport, FailedZeroResyncs)
{
  write(0, random_bytes(4 * 4096, rng));
  disk.fail_zeroes = true;
  EXPECT_EQ(exp.zero(disk, 4096, 4096, {}), EIO);
  EXPECT_EQ(read_check(0, 4 * 4096), 0);
}

TEST_F(IntegrityCheckedExport, FlagsArePassedOn)
{
  const auto data = random_bytes(4096, rng);
  EXPECT_EQ(exp.write(disk, data, 0, {.fua = true}), 0);
  EXPECT_TRUE(disk.last_flags().fua);
  EXPECT_EQ(exp.trim(disk, 4096, 0, true), 0);
  EXPECT_TRUE(disk.last_flags().fua);
  EXPECT_TRUE(disk.last_flags().may_trim);
  EXPECT_FALSE(disk.last_flags().fast_zero);
}

TEST(IntegrityCheckedExportBlockSizes, SmallAndLargeBlocks)
{
  CapturedLog log;
  std::mt19937_64 rng(9);
  for (uint32_t bs : {512u, 65536u, 1u << 20}) {
    const uint64_t size = 3 * (1u << 20) + 777;
    MemoryBackend disk(size);
    CheckedExport exp("bs", size, Settings{bs, MlockPolicy::off});
    std::vector<std::byte> data(size);
    for (auto &b : data)
      b = static_cast<std::byte>(rng());
    ASSERT_EQ(exp.write(disk, std::span(data).subspan(3, size - 10), 3, {}), 0);
    std::vector<std::byte> got(size - 10);
    ASSERT_EQ(exp.read(disk, got, 3), 0);
    ASSERT_TRUE(std::equal(got.begin(), got.end(), data.begin() + 3)) << bs;
    disk.flip_bit(size / 2, 2);
    std::vector<std::byte> one(1);
    EXPECT_EQ(exp.read(disk, one, size / 2), EIO) << bs;
    EXPECT_EQ(exp.read(disk, one, (size / 2) / bs * bs - 1), 0) << bs;
  }
}

// Readers, writers, zeroes and trims race on a few overlapping blocks of
// a disk whose copies are slow and interleave.  Every block always holds
// one writer's pattern whole; with the locking right a read never sees
// data and checksum out of step, so there is never a false alarm.
TEST(IntegrityCheckedExportConcurrency, NoFalseAlarmsUnderRacingRequests)
{
  CapturedLog log;
  constexpr uint64_t size = 16 * 4096;
  MemoryBackend disk(size);
  disk.slow = true;
  CheckedExport exp("race", size, Settings{4096, MlockPolicy::off}, 4);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 100);
      for (int i = 0; i < 400; ++i) {
        const uint64_t first = rng() % 16;
        const uint64_t n = 1 + rng() % std::min<uint64_t>(4, 16 - first);
        const uint64_t off = first * 4096, len = n * 4096;
        const unsigned op = rng() % 8;
        if (op < 3) {
          std::vector<std::byte> data(len, std::byte(rng() | 1));
          // Sometimes unaligned: read-modify-write racing everything else.
          const uint64_t skew = rng() % 2 ? 0 : 1 + rng() % 4000;
          if (exp.write(disk, std::span(data).subspan(0, len - skew), off + skew, {}) != 0)
            ++failures;
        } else if (op == 3) {
          if (exp.zero(disk, len - 100, off + 50, {}) != 0) ++failures;
        } else if (op == 4) {
          if (exp.trim(disk, len, off, false) != 0) ++failures;
        } else {
          std::vector<std::byte> got(len);
          const uint64_t skew = rng() % 2 ? 0 : 1 + rng() % 4000;
          if (exp.read(disk, std::span(got).subspan(0, len - skew), off + skew) != 0) ++failures;
        }
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_TRUE(log.errors().empty()) << log.errors().front();
}
