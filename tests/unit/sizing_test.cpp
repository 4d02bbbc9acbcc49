#include "byte_size.hpp"
#include "config/sizing.hpp"
#include "make_config.hpp"

#include <gtest/gtest.h>

using namespace vram;

namespace {

using test::make_config;

std::string sizing_error(const Config &c, const GpuMemory &m)
{
  try {
    plan_size(c, m, "GPU 0 (Test, 0000:01:00.0)");
  } catch (const SizingError &e) {
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST(Sizing, DefaultReserveDependsOnDisplay)
{
  EXPECT_EQ(default_reserve(false), 1 * GiB);
  EXPECT_EQ(default_reserve(true), 3 * GiB);
}

TEST(Sizing, AutoLeavesTheReserveFree)
{
  const GpuMemory offload{8 * GiB, 7 * GiB + 300 * MiB, false};
  const SizePlan p = plan_size(make_config({{"size", "auto"}}), offload, "g");
  EXPECT_EQ(p.first, 6 * GiB + 300 * MiB);
  EXPECT_EQ(p.reserve, 1 * GiB);

  const GpuMemory desktop{8 * GiB, 7 * GiB, true};
  EXPECT_EQ(plan_size(make_config({{"size", "auto"}}), desktop, "g").first, 4 * GiB);
  EXPECT_EQ(plan_size(make_config({{"size", "auto"}, {"reserve", "512M"}}), desktop, "g").first,
            6 * GiB + 512 * MiB);
}

TEST(Sizing, AutoRoundsDownToTheGranularity)
{
  const GpuMemory m{8 * GiB, 5 * GiB + 3 * MiB + 17, false};
  const SizePlan p = plan_size(make_config({{"size", "auto"}}), m, "g");
  EXPECT_EQ(p.first % size_granularity, 0u);
  EXPECT_EQ(p.first, 4 * GiB + 2 * MiB);
}

TEST(Sizing, MaxTakesAllThatIsFree)
{
  const GpuMemory m{80 * GiB, 79 * GiB, false};
  EXPECT_EQ(plan_size(make_config({{"size", "max"}}), m, "g").first, 79 * GiB);
}

TEST(Sizing, ExplicitSizeDoesNotShrinkUnlessAllowed)
{
  const GpuMemory m{8 * GiB, 6 * GiB, false};
  const SizePlan fits = plan_size(make_config({{"size", "4G"}}), m, "g");
  EXPECT_EQ(fits.first, 4 * GiB);
  EXPECT_EQ(fits.minimum, 4 * GiB);
  EXPECT_EQ(backoff_sizes(fits), std::vector<uint64_t>{4 * GiB});

  const std::string e = sizing_error(make_config({{"size", "7G"}}), m);
  EXPECT_NE(e.find("6.0 GiB of VRAM free"), std::string::npos) << e;
  EXPECT_NE(e.find("less than size=7.0 GiB"), std::string::npos) << e;
  EXPECT_NE(e.find("min-size="), std::string::npos) << e;

  const SizePlan shrunk = plan_size(make_config({{"size", "7G"}, {"min-size", "2G"}}), m, "g");
  EXPECT_EQ(shrunk.first, 6 * GiB);
  EXPECT_EQ(shrunk.minimum, 2 * GiB);
}

TEST(Sizing, AutoWithTooLittleFreeExplainsWhy)
{
  const GpuMemory m{8 * GiB, 900 * MiB, false};
  const std::string e = sizing_error(make_config({{"size", "auto"}}), m);
  EXPECT_NE(e.find("reserve=1.0 GiB"), std::string::npos) << e;
  EXPECT_NE(e.find("lower reserve="), std::string::npos) << e;
}

TEST(Sizing, BelowMinSizeIsAnError)
{
  const GpuMemory m{8 * GiB, 1 * GiB + 100 * MiB, false};
  const std::string e = sizing_error(make_config({{"size", "auto"}, {"reserve", "1G"}}), m);
  EXPECT_NE(e.find("below min-size=256.0 MiB"), std::string::npos) << e;
}

TEST(Sizing, BackoffStepsDownToTheMinimum)
{
  SizePlan p;
  p.first = 7 * GiB;
  p.minimum = 5 * GiB;
  p.step = 512 * MiB;
  EXPECT_EQ(backoff_sizes(p), (std::vector<uint64_t>{7 * GiB, 6 * GiB + 512 * MiB, 6 * GiB,
                                                     5 * GiB + 512 * MiB, 5 * GiB}));
}

TEST(Sizing, BackoffEndsExactlyAtTheMinimum)
{
  SizePlan p;
  p.first = 1 * GiB + 300 * MiB;
  p.minimum = 1 * GiB;
  p.step = 512 * MiB;
  EXPECT_EQ(backoff_sizes(p), (std::vector<uint64_t>{1 * GiB + 300 * MiB, 1 * GiB}));
  p.first = p.minimum;
  EXPECT_EQ(backoff_sizes(p), std::vector<uint64_t>{1 * GiB});
}

TEST(Sizing, LazyExplicitSizeMustFitBesideAnExplicitReserve)
{
  // The whole 256 MiB GPU idle: 64 MiB beside 200 MiB kept free could
  // only ever get 56 MiB.
  const GpuMemory idle{256 * MiB, 256 * MiB, false};
  const Config lazy = make_config({{"size", "64M"}, {"reserve", "200M"}, {"allocation", "lazy"}});
  const std::string e = sizing_error(lazy, idle);
  EXPECT_NE(e.find("256.0 MiB of VRAM in all; size=64.0 MiB with reserve=200.0 MiB kept free could "
                   "never be filled"),
            std::string::npos)
    << e;
  EXPECT_NE(e.find("Lower size= or reserve="), std::string::npos) << e;
  // What fits beside the reserve is accepted, even while another program
  // holds part of the VRAM now.
  const GpuMemory busy{256 * MiB, 100 * MiB, false};
  EXPECT_EQ(plan_size(make_config({{"size", "56M"}, {"reserve", "200M"}, {"allocation", "lazy"}}),
                      busy, "g")
              .first,
            56 * MiB);
  // Eager ignores reserve= with an explicit size (it holds the VRAM at once).
  EXPECT_EQ(plan_size(make_config({{"size", "64M"}, {"reserve", "200M"}}), idle, "g").first,
            64 * MiB);
}

TEST(Sizing, CompressedAutoIsTwiceTheVramLeftFree)
{
  const GpuMemory gpu{8 * GiB, 7 * GiB, false};
  const SizePlan p = plan_size(make_config({{"size", "auto"}, {"compress", "lz4"}}), gpu, "g");
  EXPECT_EQ(p.vram, 6 * GiB);
  EXPECT_EQ(p.first, 12 * GiB);
  EXPECT_EQ(p.reserve, 1 * GiB);
  const SizePlan m = plan_size(make_config({{"size", "max"}, {"compress", "lz4"}}), gpu, "g");
  EXPECT_EQ(m.vram, 7 * GiB);
  EXPECT_EQ(m.first, 14 * GiB);
}

TEST(Sizing, CompressedExplicitSizeMayExceedTheGpu)
{
  const GpuMemory gpu{8 * GiB, 2 * GiB, false};
  // Nothing is allocated at start: a size past the free VRAM is no error,
  // and the VRAM range is the GPU's (less an explicit reserve=).
  const SizePlan p = plan_size(make_config({{"size", "20G"}, {"compress", "zstd"}}), gpu, "g");
  EXPECT_EQ(p.first, 20 * GiB);
  EXPECT_EQ(p.vram, 8 * GiB);
  const SizePlan r =
    plan_size(make_config({{"size", "20G"}, {"compress", "lz4"}, {"reserve", "3G"}}), gpu, "g");
  EXPECT_EQ(r.vram, 5 * GiB);
  // A small export's range: its size and a run per size class.
  EXPECT_EQ(plan_size(make_config({{"size", "1G"}, {"compress", "lz4"}}), gpu, "g").vram,
            1 * GiB + 4 * MiB);
  EXPECT_NE(
    sizing_error(make_config({{"size", "20G"}, {"compress", "lz4"}, {"reserve", "8G"}}), gpu)
      .find("reserve=8.0 GiB keeps it all free"),
    std::string::npos);
}

TEST(Sizing, CompressedAutoWithTooLittleFreeExplainsWhy)
{
  const GpuMemory gpu{8 * GiB, 1 * GiB, false};
  EXPECT_NE(sizing_error(make_config({{"size", "auto"}, {"compress", "lz4"}}), gpu)
              .find("size=auto keeps reserve=1.0 GiB free"),
            std::string::npos);
}
