// The fixture of the store's unit tests: a VramStore over the test CUDA
// driver, whose copies run asynchronously on worker threads like a real
// GPU's, with its "VRAM" in a file the test can read and poke.
#pragma once

#include "byte_size.hpp"
#include "config/config.hpp"
#include "cuda/cuda_driver.hpp"
#include "make_config.hpp"
#include "store/vram_store.hpp"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

namespace vram::test {

class StoreTest : public ::testing::Test {
protected:
  void SetUp() override
  {
    dir_ = std::filesystem::temp_directory_path() /
           ("vram-store-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    memory_file_ = (dir_ / "vram").string();
    for (const char *v :
         {"FAKECUDA_GPUS", "FAKECUDA_LATENCY_US", "FAKECUDA_FAIL_COPY", "FAKECUDA_TIMESLICE_FILE",
          "FAKECUDA_TIMESLICE_US", "FAKECUDA_FAIL_MODE", "FAKECUDA_ALLOC_FAIL_ABOVE",
          "FAKECUDA_TRIGGER_FILE", "FAKECUDA_FAIL_EVERY"})
      unsetenv(v);
    setenv("NBDKIT_VRAM_LIBCUDA", FAKECUDA_PATH, 1);
    setenv("FAKECUDA_MEMORY_FILE", memory_file_.c_str(), 1);
    setenv("FAKECUDA_GPUS", "name=Test GPU,total=64M", 1);
  }

  void TearDown() override
  {
    store_.reset();
    // Start the next test from a fresh fake driver.
    if (void *h = dlopen(FAKECUDA_PATH, RTLD_NOW | RTLD_NOLOAD)) {
      if (auto reset = reinterpret_cast<void (*)()>(dlsym(h, "fakecuda_reset"))) reset();
      dlclose(h);
    }
    std::filesystem::remove_all(dir_);
  }

  VramStore &open(test::Params params, unsigned lanes = 4)
  {
    config_ = test::make_config(params);
    std::string error;
    driver_ = CudaDriver::load(error);
    EXPECT_TRUE(driver_) << error;
    EXPECT_EQ(driver_->init(0), CUDA_SUCCESS);
    VramStore::Layout layout;
    layout.gpu_label = "GPU 0 (Test GPU)";
    layout.lanes = lanes;
    store_ = VramStore::open(*driver_, config_, layout);
    return *store_;
  }

  // The bytes of fake VRAM, as the "GPU" holds them.
  std::vector<std::byte> vram_contents(uint64_t offset, uint64_t length)
  {
    std::vector<std::byte> out(length);
    const int fd = ::open(memory_file_.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pread(fd, out.data(), length, static_cast<off_t>(offset)),
              static_cast<ssize_t>(length));
    ::close(fd);
    return out;
  }

  void poke(uint64_t offset, std::byte value)
  {
    const int fd = ::open(memory_file_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, &value, 1, static_cast<off_t>(offset)), 1);
    ::close(fd);
  }

  std::filesystem::path dir_;
  std::string memory_file_;
  Config config_;
  std::unique_ptr<CudaDriver> driver_;
  std::unique_ptr<VramStore> store_;
};

inline std::vector<std::byte> random_bytes(std::mt19937_64 &rng, size_t n)
{
  std::vector<std::byte> v(n);
  for (auto &b : v)
    b = static_cast<std::byte>(rng());
  return v;
}

} // namespace vram::test
