// The core (VramStore and its lanes) against the test CUDA driver, whose
// copies run asynchronously on worker threads like a real GPU's.

#include "store_fixture.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

using namespace vram;
using test::random_bytes;
using test::StoreTest;

TEST_F(StoreTest, ExplicitSizeIsServed) { EXPECT_EQ(open({{"size", "32M"}}).size(), 32 * MiB); }

TEST_F(StoreTest, ReadsBackWhatWasWrittenAtManySizesAndAlignments)
{
  VramStore &s = open({{"size", "16M"}, {"piece-size", "16K"}});
  std::mt19937_64 rng(1);
  std::vector<std::byte> shadow(s.size());
  for (int i = 0; i < 300; ++i) {
    const uint64_t len = 1 + rng() % (200 * KiB);
    const uint64_t off = rng() % (s.size() - len);
    auto data = random_bytes(rng, len);
    ASSERT_TRUE(s.write(data.data(), len, off)) << off << "+" << len;
    std::memcpy(shadow.data() + off, data.data(), len);
  }
  std::vector<std::byte> back(s.size());
  ASSERT_TRUE(s.read(back.data(), s.size(), 0));
  EXPECT_TRUE(back == shadow);
  // And the data really lives in (fake) VRAM, not in some host cache.
  EXPECT_TRUE(vram_contents(0, s.size()) == shadow);
}

TEST_F(StoreTest, PipelinedRequestsSurviveASlowGpu)
{
  // Each async copy sleeps in the fake GPU: a lane that reused a staging
  // slot before the GPU had finished with it would corrupt data here.
  setenv("FAKECUDA_LATENCY_US", "200", 1);
  VramStore &s = open({{"size", "8M"}, {"piece-size", "4K"}});
  std::mt19937_64 rng(2);
  auto data = random_bytes(rng, 1 * MiB);
  ASSERT_TRUE(s.write(data.data(), data.size(), 12345));
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), 12345));
  EXPECT_TRUE(back == data);
}

TEST_F(StoreTest, ManyThreadsShareFewLanes)
{
  setenv("FAKECUDA_LATENCY_US", "20", 1);
  VramStore &s = open({{"size", "16M"}, {"piece-size", "8K"}}, 3);
  constexpr int threads = 8;
  const uint64_t region = s.size() / threads;
  std::vector<std::thread> pool;
  std::atomic<int> mismatches{0}, failures{0};
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      std::vector<std::byte> shadow(region);
      for (int i = 0; i < 60; ++i) {
        const uint64_t len = 1 + rng() % (48 * KiB);
        const uint64_t off = rng() % (region - len);
        auto data = random_bytes(rng, len);
        if (!s.write(data.data(), len, t * region + off)) ++failures;
        std::memcpy(shadow.data() + off, data.data(), len);
        std::vector<std::byte> back(len);
        if (!s.read(back.data(), len, t * region + off)) ++failures;
        if (back != data) ++mismatches;
      }
      std::vector<std::byte> all(region);
      if (!s.read(all.data(), region, t * region)) ++failures;
      if (all != shadow) ++mismatches;
    });
  for (auto &th : pool)
    th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(mismatches, 0);
}

TEST_F(StoreTest, NewAllocationIsZeroedEvenIfVramHeldOldData)
{
  {
    std::vector<char> junk(8 * MiB, 'S');
    const int fd = ::open(memory_file_.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  VramStore &s = open({{"size", "8M"}});
  std::vector<std::byte> back(s.size(), std::byte{1});
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  EXPECT_TRUE(std::all_of(back.begin(), back.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_F(StoreTest, TeardownZeroesVram)
{
  VramStore &s = open({{"size", "4M"}});
  std::vector<std::byte> secret(s.size(), std::byte{0x5a});
  ASSERT_TRUE(s.write(secret.data(), secret.size(), 0));
  ASSERT_EQ(vram_contents(100, 1)[0], std::byte{0x5a});
  store_.reset();
  const auto after = vram_contents(0, 4 * MiB);
  EXPECT_TRUE(
    std::all_of(after.begin(), after.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_F(StoreTest, ZeroClearsExactlyTheRange)
{
  VramStore &s = open({{"size", "4M"}});
  std::vector<std::byte> ones(64 * KiB, std::byte{0xff});
  ASSERT_TRUE(s.write(ones.data(), ones.size(), 0));
  ASSERT_TRUE(s.zero(1000, 3000));
  std::vector<std::byte> back(ones.size());
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  for (size_t i = 0; i < back.size(); ++i)
    ASSERT_EQ(back[i], (i >= 3000 && i < 4000) ? std::byte{0} : std::byte{0xff}) << i;
}

TEST_F(StoreTest, ReadSeesBytesChangedBehindOurBack)
{
  VramStore &s = open({{"size", "4M"}});
  poke(4097, std::byte{0x42});
  std::byte b{};
  ASSERT_TRUE(s.read(&b, 1, 4097));
  EXPECT_EQ(b, std::byte{0x42});
}

TEST_F(StoreTest, RequestsPastTheEndAreRefused)
{
  VramStore &s = open({{"size", "4M"}});
  std::vector<std::byte> buf(8192);
  const IoStatus st = s.read(buf.data(), buf.size(), s.size() - 4096);
  EXPECT_EQ(st.errnum, EIO);
  EXPECT_NE(st.message.find("past the end"), std::string::npos) << st.message;
  EXPECT_FALSE(s.failed());
}

TEST_F(StoreTest, BackOffLandsOnTheLargestSizeThatAllocates)
{
  setenv("FAKECUDA_GPUS", "total=3G", 1);
  setenv("FAKECUDA_ALLOC_FAIL_ABOVE", "700M", 1);
  // auto: 3G free - 1G reserve = 2G, then 1.5G, 1G, 512M fits.
  EXPECT_EQ(open({{"size", "auto"}}, 1).size(), 512 * MiB);
}

TEST_F(StoreTest, BackOffBelowMinSizeFails)
{
  setenv("FAKECUDA_GPUS", "total=8G", 1);
  setenv("FAKECUDA_ALLOC_FAIL_ABOVE", "1G", 1);
  try {
    open({{"size", "6G"}, {"min-size", "2G"}}, 1);
    ADD_FAILURE() << "opened";
  } catch (const StartupError &e) {
    EXPECT_NE(std::string(e.what()).find("could not allocate even min-size=2.0 GiB"),
              std::string::npos)
      << e.what();
  }
}

TEST_F(StoreTest, TransientCopyFailureFailsOnlyThatRequest)
{
  setenv("FAKECUDA_FAIL_COPY", "2", 1);
  setenv("FAKECUDA_FAIL_MODE", "transient", 1);
  VramStore &s = open({{"size", "4M"}});
  std::vector<std::byte> data(4096, std::byte{7}), back(4096);
  ASSERT_TRUE(s.write(data.data(), data.size(), 0));       // copy 1
  const IoStatus st = s.read(back.data(), back.size(), 0); // copy 2 fails
  EXPECT_EQ(st.errnum, EIO);
  EXPECT_NE(st.message.find("read of 4096 bytes at offset 0 failed"), std::string::npos)
    << st.message;
  EXPECT_FALSE(s.failed());
  ASSERT_TRUE(s.read(back.data(), back.size(), 0));
  EXPECT_TRUE(back == data);
}

TEST_F(StoreTest, StickyFailureFailsEveryLaterRequest)
{
  setenv("FAKECUDA_FAIL_COPY", "2", 1);
  setenv("FAKECUDA_FAIL_MODE", "sticky", 1);
  VramStore &s = open({{"size", "4M"}});
  std::vector<std::byte> data(4096, std::byte{7}), back(4096);
  ASSERT_TRUE(s.write(data.data(), data.size(), 0));
  const IoStatus first = s.write(data.data(), data.size(), 0);
  EXPECT_EQ(first.errnum, EIO);
  EXPECT_FALSE(first.quiet);
  EXPECT_NE(first.message.find("out of service"), std::string::npos) << first.message;
  EXPECT_TRUE(s.failed());
  // Later failures set EIO but are rate-limited in the log (one per 10 s).
  for (int i = 0; i < 3; ++i) {
    const IoStatus st = s.read(back.data(), back.size(), 0);
    EXPECT_EQ(st.errnum, EIO);
    EXPECT_TRUE(st.quiet) << st.message;
  }
  EXPECT_EQ(s.zero(4096, 0).errnum, EIO);
  EXPECT_EQ(s.flush().errnum, EIO);
}

TEST_F(StoreTest, StickyFailureDuringAPipelinedReadReturnsNoData)
{
  setenv("FAKECUDA_FAIL_COPY", "5", 1);
  setenv("FAKECUDA_FAIL_MODE", "sticky", 1);
  VramStore &s = open({{"size", "4M"}, {"piece-size", "4K"}});
  std::vector<std::byte> back(64 * KiB);
  EXPECT_EQ(s.read(back.data(), back.size(), 0).errnum, EIO);
  EXPECT_TRUE(s.failed());
}

// Zeroes come from a 1 MiB pinned buffer, in as many copies as a range
// needs; small and odd-sized writes go as two-row copies.  None of it is
// an operation the real driver would queue behind other programs' kernels
// (the fake records those in FAKECUDA_TIMESLICE_FILE).
std::vector<std::string> read_lines(const std::string &path)
{
  std::vector<std::string> v;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);)
    v.push_back(l);
  return v;
}

// share-gpu=auto: the fast one-row copies alone on the GPU; once they
// keep waiting for another program's time slice (the fake's
// FAKECUDA_TIMESLICE_US), the copy engines only.
TEST_F(StoreTest, AutoUsesTheFastPathUntilAnotherProgramIsSeen)
{
  const std::string timesliced = (dir_ / "timesliced").string();
  setenv("FAKECUDA_TIMESLICE_FILE", timesliced.c_str(), 1);
  setenv("FAKECUDA_TIMESLICE_US", "50000", 1);
  VramStore &s = open({{"size", "16M"}, {"share-gpu", "auto"}});
  unsetenv("FAKECUDA_TIMESLICE_FILE");
  unsetenv("FAKECUDA_TIMESLICE_US");
  EXPECT_EQ(s.share_gpu(), ShareGpu::automatic);
  EXPECT_FALSE(s.sharing_now());
  const size_t at_start = read_lines(timesliced).size();
  std::mt19937_64 rng(9);
  const auto page = random_bytes(rng, 4096);
  ASSERT_TRUE(s.write(page.data(), page.size(), 8192));
  ASSERT_TRUE(s.write(page.data(), page.size(), 8192));
  // The fast path, and each took 50 ms: perhaps threads that lost their
  // CPU.
  EXPECT_EQ(read_lines(timesliced).size(), at_start + 2);
  EXPECT_EQ(s.shared_gpu_detections(), 0u);
  // Three in a row, over 5 ms: another program.
  ASSERT_TRUE(s.write(page.data(), page.size(), 8192));
  EXPECT_EQ(read_lines(timesliced).size(), at_start + 3);
  EXPECT_EQ(s.shared_gpu_detections(), 1u);
  EXPECT_TRUE(s.sharing_now());
  // Now (for a second) nothing that would wait.
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(s.write(page.data(), page.size(), i * 4096 * 7));
    ASSERT_TRUE(s.zero(4096, 1 * MiB + i * 4096));
  }
  EXPECT_EQ(read_lines(timesliced).size(), at_start + 3);
  EXPECT_EQ(vram_contents(8192, 4096), page);
}

TEST_F(StoreTest, WritesAndZeroesOfEveryShapeStayOnTheCopyEngines)
{
  const std::string timesliced = (dir_ / "timesliced").string();
  setenv("FAKECUDA_TIMESLICE_FILE", timesliced.c_str(), 1);
  VramStore &s = open({{"size", "16M"}, {"piece-size", "4K"}, {"share-gpu", "yes"}});
  unsetenv("FAKECUDA_TIMESLICE_FILE");
  const auto lines = [&] {
    std::vector<std::string> v;
    std::ifstream in(timesliced);
    for (std::string l; std::getline(in, l);)
      v.push_back(l);
    return v;
  };
  const size_t at_start = lines().size(); // the allocation's one memset
  EXPECT_LE(at_start, 1u);
  std::mt19937_64 rng(5);
  std::vector<std::byte> shadow(s.size());
  const auto fill = random_bytes(rng, s.size());
  ASSERT_TRUE(s.write(fill.data(), fill.size(), 0));
  shadow = fill;
  const std::pair<uint64_t, uint64_t> zeroes[] = {
    {3, 1}, {4096, 2}, {10000, 4097}, {1 * MiB - 5, 3 * MiB + 11}, {9 * MiB + 1, 32 * KiB - 1}};
  for (const auto &[off, n] : zeroes) {
    ASSERT_TRUE(s.zero(n, off)) << off;
    std::fill_n(shadow.begin() + static_cast<long>(off), n, std::byte{0});
  }
  for (uint64_t n : {2u, 3u, 4097u, 8191u, 12289u, 40961u}) {
    const uint64_t off = rng() % (s.size() - n);
    const auto data = random_bytes(rng, n);
    ASSERT_TRUE(s.write(data.data(), n, off));
    std::copy(data.begin(), data.end(), shadow.begin() + static_cast<long>(off));
  }
  EXPECT_EQ(vram_contents(0, s.size()), shadow);
  std::vector<std::string> during = lines();
  during.erase(during.begin(), during.begin() + static_cast<long>(at_start));
  // The one-byte zero at offset 3 is the one exception.
  EXPECT_EQ(during, std::vector<std::string>{"cuMemcpyHtoDAsync_v2 bytes=1"});
}
