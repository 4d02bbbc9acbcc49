#include "checksum_table.hpp"
#include "crc32c.hpp"
#include "export_registry.hpp"
#include "integrity_memory_backend.hpp"

#include <gtest/gtest.h>

using namespace integrity;
using integrity_test::CapturedLog;

TEST(IntegrityChecksumTable, StartsAsZeroes)
{
  const BlockGeometry g(10 * 4096 + 100, 4096);
  const ChecksumTable t(g, MlockPolicy::off, "test table");
  ASSERT_EQ(t.blocks(), 11u);
  for (uint64_t b = 0; b < 10; ++b)
    EXPECT_EQ(t.get(b), crc32c_of_zeroes(4096));
  EXPECT_EQ(t.get(10), crc32c_of_zeroes(100));
  EXPECT_EQ(t.zero_crc(10), crc32c_of_zeroes(100));
  EXPECT_EQ(t.zero_crc(3), crc32c_of_zeroes(4096));
}

TEST(IntegrityChecksumTable, FourBytesAndOneBitPerBlock)
{
  EXPECT_EQ(ChecksumTable::bytes_for(64), 64u * 4 + 8);
  EXPECT_EQ(ChecksumTable::bytes_for(65), (65u * 4 + 4) + 16);
  // 7 GiB in 4 KiB blocks: 7 MiB of CRCs + 224 KiB of bits, about 0.1%.
  const uint64_t blocks = (7ull << 30) / 4096;
  EXPECT_EQ(ChecksumTable::bytes_for(blocks), (7u << 20) + (7u << 20) / 32);
}

TEST(IntegrityChecksumTable, MismatchIsNewsOncePerWrite)
{
  ChecksumTable t(BlockGeometry(1 << 20, 4096), MlockPolicy::off, "test table");
  EXPECT_TRUE(t.note_mismatch(70));
  EXPECT_FALSE(t.note_mismatch(70));
  EXPECT_TRUE(t.note_mismatch(71)); // same bitmap word, other block
  t.forget_mismatch(70);
  t.forget_mismatch(5); // never noted: no effect
  EXPECT_TRUE(t.note_mismatch(70));
  EXPECT_FALSE(t.note_mismatch(71));
}

TEST(IntegrityChecksumTable, LockedWhenAllowed)
{
  ChecksumTable t(BlockGeometry(64 << 20, 4096), MlockPolicy::attempt, "test table");
  EXPECT_EQ(t.bytes(), ChecksumTable::bytes_for(16384));
  if (!t.locked()) GTEST_SKIP() << "mlock not permitted here: " << t.not_locked_reason();
  EXPECT_TRUE(t.not_locked_reason().empty());
}

TEST(IntegrityChecksumTable, MlockOffSaysSo)
{
  ChecksumTable t(BlockGeometry(1 << 20, 4096), MlockPolicy::off, "test table");
  EXPECT_FALSE(t.locked());
  EXPECT_EQ(t.not_locked_reason(), "integrity-mlock=off");
}

TEST(IntegrityChecksumTable, AllocationFailureIsAClearError)
{
  // More address space than the machine has: mmap fails.
  try {
    ChecksumTable t(BlockGeometry(uint64_t{1} << 62, 4096), MlockPolicy::off,
                    "the checksum table of export \"huge\"");
    FAIL() << "a 4 PiB table was allocated";
  } catch (const AllocationError &e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cannot allocate the checksum table of export \"huge\" ("), std::string::npos)
      << m;
    EXPECT_NE(m.find("Cannot allocate memory"), std::string::npos) << m;
  }
}

TEST(IntegrityExportRegistry, OneTablePerExportNameSharedByConnections)
{
  CapturedLog log;
  ExportRegistry r;
  const Settings s{4096, MlockPolicy::off};
  const auto a = r.get("", 1 << 20, s);
  const auto b = r.get("", 1 << 20, s);
  const auto c = r.get("other", 2 << 20, s);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(c->geometry().export_size(), 2u << 20);
  // The table's size is logged once per export.
  const auto infos = log.infos();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_NE(infos[0].find("checking export \"\" (1.0 MiB) in 4096-byte blocks with CRC32C ("),
            std::string::npos)
    << infos[0];
  EXPECT_NE(infos[0].find("checksum table 1.0 KiB for 256 blocks"), std::string::npos) << infos[0];
  EXPECT_NE(infos[0].find("not locked in RAM (integrity-mlock=off)"), std::string::npos);
}

TEST(IntegrityExportRegistry, AnExportThatChangedSizeIsRefused)
{
  CapturedLog log;
  ExportRegistry r;
  const Settings s{4096, MlockPolicy::off};
  r.get("", 1 << 20, s);
  try {
    r.get("", 2 << 20, s);
    FAIL();
  } catch (const ExportRegistry::Refused &e) {
    EXPECT_NE(std::string(e.what()).find("cannot follow an export that changes size"),
              std::string::npos);
  }
}

TEST(IntegrityExportRegistry, ClientsCannotMakeTablesWithoutEnd)
{
  CapturedLog log;
  ExportRegistry r;
  const Settings s{4096, MlockPolicy::off};
  for (size_t i = 0; i < ExportRegistry::max_exports; ++i)
    r.get("name" + std::to_string(i), 1 << 20, s);
  EXPECT_NO_THROW(r.get("name0", 1 << 20, s)); // known names still work
  try {
    r.get("one-too-many", 1 << 20, s);
    FAIL();
  } catch (const ExportRegistry::Refused &e) {
    EXPECT_NE(std::string(e.what()).find("export \"one-too-many\": the filter already keeps "
                                         "checksums for 16 export names"),
              std::string::npos)
      << e.what();
  }
}
