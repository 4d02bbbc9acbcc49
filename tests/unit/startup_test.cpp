// The plugin's start-up policy (startup/startup.hpp), step by step as
// nbdkit runs it, against the test CUDA driver.  ctest runs each test in a
// process of its own, as nbdkit runs each start.

#include "make_config.hpp"
#include "startup/startup.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

using namespace vram;

namespace {

class StartupTest : public ::testing::Test {
protected:
  void SetUp() override
  {
    dir_ =
      std::filesystem::temp_directory_path() / ("vram-startup-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    setenv("NBDKIT_VRAM_LIBCUDA", FAKECUDA_PATH, 1);
    setenv("FAKECUDA_MEMORY_FILE", (dir_ / "vram").c_str(), 1);
    setenv("FAKECUDA_GPUS", "name=Test GPU,total=64M", 1);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(StartupTest, StartsServesAndStops)
{
  Startup s(test::make_config({{"size", "16M"}, {"swap-safety", "off"}}));
  EXPECT_EQ(s.before_fork(), std::nullopt);
  EXPECT_EQ(s.store(), nullptr); // nothing of CUDA before the fork
  EXPECT_EQ(s.after_fork(), std::nullopt);
  ASSERT_NE(s.store(), nullptr);
  EXPECT_EQ(s.store()->size(), 16u << 20);
  s.stop();
  EXPECT_EQ(s.store(), nullptr);
}

TEST_F(StartupTest, BeforeTheForkAMissingGpuIsNamed)
{
  Startup s(test::make_config({{"size", "16M"}, {"device", "3"}, {"swap-safety", "off"}}));
  const Startup::Failure f = s.before_fork();
  ASSERT_TRUE(f);
  EXPECT_NE(f->find("device=3: no such GPU"), std::string::npos) << *f;
}

TEST_F(StartupTest, BeforeTheForkASizeTooLargeIsRefused)
{
  Startup s(test::make_config({{"size", "1G"}, {"swap-safety", "off"}}));
  const Startup::Failure f = s.before_fork();
  ASSERT_TRUE(f);
  EXPECT_NE(f->find("less than size=1.0 GiB"), std::string::npos) << *f;
  EXPECT_NE(f->find("min-size="), std::string::npos) << *f; // says how to accept less
}

TEST_F(StartupTest, ARequestsFileThatCannotBeMadeStopsTheStartBeforeAnyVram)
{
  const std::string path = (dir_ / "no" / "such" / "dir" / "requests").string();
  Startup s(
    test::make_config({{"size", "16M"}, {"swap-safety", "off"}, {"requests-file", path.c_str()}}));
  ASSERT_EQ(s.before_fork(), std::nullopt);
  const Startup::Failure f = s.after_fork();
  ASSERT_TRUE(f);
  EXPECT_NE(f->find("cannot create it"), std::string::npos) << *f;
  EXPECT_EQ(s.store(), nullptr);
}

} // namespace
