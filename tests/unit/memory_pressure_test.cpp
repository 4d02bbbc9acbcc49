#include "rest/memory_pressure.hpp"
#include "rest/wake_reserve.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace vram;

namespace {

const char *const psi_text = "some avg10=1.25 avg60=0.40 avg300=0.08 total=123456\n"
                             "full avg10=0.50 avg60=0.10 avg300=0.02 total=23456\n";

const char *const meminfo_text = "MemTotal:        1000000 kB\n"
                                 "MemFree:           12000 kB\n"
                                 "MemAvailable:     150000 kB\n"
                                 "Buffers:               0 kB\n";

struct TempFile {
  explicit TempFile(const std::string &text)
  {
    char name[] = "/tmp/memory-pressure-test.XXXXXX";
    const int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path = name;
    write(text);
  }
  ~TempFile() { ::unlink(path.c_str()); }
  void write(const std::string &text) const { std::ofstream(path, std::ios::trunc) << text; }
  std::string path;
};

} // namespace

TEST(MemoryPressure, ParsesTheSomeLineOfPsi)
{
  EXPECT_DOUBLE_EQ(*parse_psi_some_avg10(psi_text), 1.25);
  EXPECT_DOUBLE_EQ(*parse_psi_some_avg10("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"), 0);
  EXPECT_FALSE(parse_psi_some_avg10(""));
  EXPECT_FALSE(parse_psi_some_avg10("full avg10=3.00 avg60=0.00\n"));
  EXPECT_FALSE(parse_psi_some_avg10("some avg60=0.00\nfull avg10=3.00\n")); // not the full line's
  EXPECT_FALSE(parse_psi_some_avg10("some avg10=x\n"));
}

TEST(MemoryPressure, ParsesMeminfo)
{
  EXPECT_EQ(parse_meminfo_kb(meminfo_text, "MemAvailable"), 150000u);
  EXPECT_EQ(parse_meminfo_kb(meminfo_text, "MemTotal"), 1000000u);
  EXPECT_EQ(parse_meminfo_kb(meminfo_text, "Buffers"), 0u);
  EXPECT_FALSE(parse_meminfo_kb(meminfo_text, "Mem"));
  EXPECT_FALSE(parse_meminfo_kb(meminfo_text, "SwapTotal"));
  EXPECT_FALSE(parse_meminfo_kb("", "MemTotal"));
}

TEST(MemoryPressure, CalmIsNoStallAndATenthOfRamAvailable)
{
  EXPECT_TRUE(is_calm({0.0, 150000, 1000000}));
  EXPECT_TRUE(is_calm({0.10, 100000, 1000000}));
  EXPECT_FALSE(is_calm({0.11, 500000, 1000000}));        // stalls
  EXPECT_FALSE(is_calm({0.0, 99999, 1000000}));          // little available
  EXPECT_TRUE(is_calm({std::nullopt, 500000, 1000000})); // a kernel without PSI
  EXPECT_TRUE(is_calm({0.0, std::nullopt, std::nullopt}));
  EXPECT_FALSE(is_calm({})); // nothing known: not calm
}

TEST(MemoryProbe, ReadsTheFilesAgainAtEachLook)
{
  TempFile psi(psi_text), meminfo(meminfo_text);
  MemoryProbe probe(psi.path, meminfo.path);
  auto m = probe.read();
  EXPECT_DOUBLE_EQ(*m.some_avg10, 1.25);
  EXPECT_EQ(m.available_kb, 150000u);
  EXPECT_EQ(m.total_kb, 1000000u);
  EXPECT_FALSE(probe.calm());
  psi.write("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  EXPECT_TRUE(probe.calm());
}

TEST(MemoryProbe, MissingFilesAreNotCalm)
{
  MemoryProbe probe("/nonexistent/psi", "/nonexistent/meminfo");
  EXPECT_FALSE(probe.read().some_avg10);
  EXPECT_FALSE(probe.calm());
}

TEST(PressureWatch, SaysWhyWhenNoTriggerCanBeHad)
{
  PressureWatch none([] {}, 50000, 1000000, "/nonexistent/pressure/memory");
  EXPECT_FALSE(none.armed());
  EXPECT_NE(none.why_not().find("/nonexistent/pressure/memory"), std::string::npos)
    << none.why_not();
}

TEST(PressureWatch, ArmsOnTheKernelsPsiFile)
{
  if (::access("/proc/pressure/memory", R_OK | W_OK) != 0)
    GTEST_SKIP() << "no writable /proc/pressure/memory (a kernel without PSI, or not root)";
  PressureWatch watch([] {});
  EXPECT_TRUE(watch.armed()) << watch.why_not();
  // With CAP_SYS_RESOURCE the 1 s window itself, else 2 s.
  EXPECT_TRUE(watch.trigger() == "some 50000 1000000" || watch.trigger() == "some 100000 2000000")
    << watch.trigger();
}

TEST(WakeReserve, ReadsResidentMemoryAndKeepsWhatItIsGiven)
{
  EXPECT_EQ(WakeReserve::parse_statm_resident("1000 250 30 5 0 400 0\n", 4096), 250u * 4096);
  EXPECT_FALSE(WakeReserve::parse_statm_resident("1000", 4096));
  EXPECT_FALSE(WakeReserve::parse_statm_resident("1000 x", 4096));
  const auto before = WakeReserve::resident_bytes();
  ASSERT_TRUE(before);
  WakeReserve r;
  ASSERT_TRUE(r.keep(16 * 1024 * 1024 + 100));
  EXPECT_EQ(r.bytes(), 16u * 1024 * 1024);                               // whole pages
  EXPECT_GE(*WakeReserve::resident_bytes(), *before + 15 * 1024 * 1024); // resident
  r.release();
  EXPECT_EQ(r.bytes(), 0u);
  EXPECT_LT(*WakeReserve::resident_bytes(), *before + 4 * 1024 * 1024);
}
