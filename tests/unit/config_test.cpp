#include "byte_size.hpp"
#include "config/config.hpp"
#include "make_config.hpp"

#include <gtest/gtest.h>

using namespace vram;

namespace {

using test::make_config;
using test::Params;

// The message must name the parameter and say what is accepted.
void expect_error(Params kv, const std::string &mentions)
{
  try {
    make_config(kv);
    ADD_FAILURE() << "accepted; expected an error mentioning " << mentions;
  } catch (const ConfigError &e) {
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

} // namespace

TEST(Config, Defaults)
{
  const Config c = make_config({{"size", "7G"}});
  EXPECT_EQ(c.size.kind, SizeRequest::Kind::bytes);
  EXPECT_EQ(c.size.bytes, 7 * GiB);
  EXPECT_FALSE(c.reserve);
  EXPECT_EQ(c.step, 512 * MiB);
  EXPECT_FALSE(c.min_size);
  EXPECT_EQ(c.device.kind, DeviceSelector::Kind::index);
  EXPECT_EQ(c.device.index, 0u);
  EXPECT_EQ(c.lanes, 0u);
  EXPECT_EQ(c.piece_size, 256 * KiB);
  EXPECT_EQ(c.swap_safety, SwapSafety::attempt);
  EXPECT_EQ(c.allocation, Allocation::eager);
  EXPECT_EQ(c.lazy_chunk, 2 * MiB); // about the kernel's 1 MiB swap cluster
  EXPECT_FALSE(c.lazy_spare);       // the default follows the chunk size
  EXPECT_TRUE(c.status_file.empty());
  EXPECT_EQ(c.share_gpu, ShareGpu::automatic);
}

TEST(Config, ShareGpu)
{
  EXPECT_EQ(make_config({{"size", "1G"}, {"share-gpu", "yes"}}).share_gpu, ShareGpu::yes);
  EXPECT_EQ(make_config({{"size", "1G"}, {"share-gpu", "no"}}).share_gpu, ShareGpu::no);
  EXPECT_EQ(make_config({{"size", "1G"}, {"share-gpu", "auto"}}).share_gpu, ShareGpu::automatic);
  expect_error({{"size", "1G"}, {"share-gpu", "sometimes"}},
               "share-gpu=sometimes: expected 'auto'");
}

TEST(Config, LazyParameters)
{
  const Config c = make_config({{"size", "7G"},
                                {"allocation", "lazy"},
                                {"lazy-chunk", "64M"},
                                {"status-file", "/run/x.status"},
                                {"lazy-spare", "0"}});
  EXPECT_EQ(c.allocation, Allocation::lazy);
  EXPECT_EQ(c.lazy_chunk, 64 * MiB);
  EXPECT_EQ(c.lazy_spare, 0u);
  EXPECT_EQ(make_config({{"size", "7G"}, {"lazy-spare", "64"}}).lazy_spare, 64u);
  EXPECT_EQ(c.status_file, "/run/x.status");
}

TEST(Config, AutoAndMax)
{
  EXPECT_EQ(make_config({{"size", "auto"}}).size.kind, SizeRequest::Kind::automatic);
  EXPECT_EQ(make_config({{"size", "max"}}).size.kind, SizeRequest::Kind::max);
}

TEST(Config, EveryParameter)
{
  const Config c = make_config({{"size", "auto"},
                                {"reserve", "2G"},
                                {"step", "256M"},
                                {"min-size", "1G"},
                                {"device", "GPU-8a3c1f2e-0b4d-4e5f-9a6b-7c8d9e0f1a2b"},
                                {"lanes", "8"},
                                {"piece-size", "1M"},
                                {"swap-safety", "require"},
                                {"init-timeout", "0"},
                                {"wait", "block"}});
  EXPECT_EQ(*c.reserve, 2 * GiB);
  EXPECT_EQ(c.step, 256 * MiB);
  EXPECT_EQ(*c.min_size, 1 * GiB);
  EXPECT_EQ(c.device.kind, DeviceSelector::Kind::uuid);
  EXPECT_EQ(c.lanes, 8u);
  EXPECT_EQ(c.piece_size, 1 * MiB);
  EXPECT_EQ(c.swap_safety, SwapSafety::require);
  EXPECT_EQ(c.init_timeout_s, 0u);
  EXPECT_EQ(c.wait, WaitMode::block);
}

TEST(Config, ErrorsNameTheParameterAndTheAcceptedForms)
{
  expect_error({}, "size= is required");
  expect_error({{"size", "lots"}}, "size=lots: expected a size");
  expect_error({{"size", "lots"}}, "'auto' or 'max'");
  expect_error({{"size", "0"}}, "multiple of 4096");
  expect_error({{"size", "1000"}}, "multiple of 4096");
  expect_error({{"size", "18446744073709547520"}}, "larger than any export nbdkit can serve");
  expect_error({{"size", "8E"}}, "larger than any export nbdkit can serve");
  expect_error({{"size", "1G"}, {"reserve", "x"}}, "reserve=x");
  expect_error({{"size", "1G"}, {"step", "100K"}}, "step=100K");
  expect_error({{"size", "1G"}, {"min-size", "2G"}}, "min-size=");
  expect_error({{"size", "1G"}, {"device", "first"}}, "device=first: expected a CUDA device index");
  expect_error({{"size", "1G"}, {"lanes", "0"}}, "lanes=0: expected a whole number from 1");
  expect_error({{"size", "1G"}, {"lanes", "many"}}, "lanes=many");
  expect_error({{"size", "1G"}, {"chunk-size", "1000"}}, "chunk-size=1000");
  expect_error({{"size", "1G"}, {"swap-safety", "yes"}}, "swap-safety=yes: expected 'attempt'");
  expect_error({{"size", "1G"}, {"init-timeout", "-1"}}, "init-timeout=-1");
  expect_error({{"size", "1G"}, {"wait", "busy"}}, "wait=busy: expected 'auto'");
  expect_error({{"size", "1G"}, {"colour", "blue"}}, "unknown parameter 'colour'");
}

TEST(Config, DefaultLanesScaleWithCpusWithinBounds)
{
  EXPECT_EQ(default_lanes(0), 4u);
  EXPECT_EQ(default_lanes(1), 4u);
  EXPECT_EQ(default_lanes(2), 4u);
  EXPECT_EQ(default_lanes(3), 6u);
  EXPECT_EQ(default_lanes(16), 32u);
  EXPECT_EQ(default_lanes(32), 64u);
  EXPECT_EQ(default_lanes(128), 64u);
}

TEST(Config, CompressChoosesTheCodecAndHoldsVramLazily)
{
  EXPECT_FALSE(make_config({{"size", "7G"}}).compressed());
  EXPECT_FALSE(make_config({{"size", "7G"}, {"compress", "none"}}).compressed());
  const Config lz4 = make_config({{"size", "14G"}, {"compress", "lz4"}});
  EXPECT_TRUE(lz4.compressed());
  EXPECT_EQ(lz4.compress.algorithm, compress::Algorithm::lz4);
  EXPECT_EQ(lz4.allocation, Allocation::lazy);
  const Config zstd =
    make_config({{"size", "14G"}, {"compress", "zstd:5"}, {"allocation", "lazy"}});
  EXPECT_EQ(zstd.compress, (compress::CodecSetting{compress::Algorithm::zstd, 5}));
  EXPECT_EQ(zstd.allocation, Allocation::lazy);
  expect_error({{"size", "7G"}, {"compress", "gzip"}}, "compress=gzip: unknown; use none, lz4");
  expect_error({{"size", "7G"}, {"compress", "zstd:0"}}, "compress=zstd:0: the zstd level");
  expect_error({{"size", "7G"}, {"compress", "lz4"}, {"allocation", "eager"}},
               "compress=lz4 with allocation=eager");
  // Uncompressed, allocation= is as given.
  EXPECT_EQ(make_config({{"size", "7G"}, {"compress", "none"}}).allocation, Allocation::eager);
}

TEST(Config, IdleReleaseTakesATimeAndHoldsVramLazily)
{
  using std::chrono::milliseconds;
  EXPECT_FALSE(make_config({{"size", "7G"}}).idle_release);
  EXPECT_FALSE(make_config({{"size", "7G"}, {"idle-release", "off"}}).idle_release);
  const Config c = make_config({{"size", "7G"}, {"idle-release", "30s"}});
  EXPECT_EQ(c.idle_release, milliseconds(30000));
  EXPECT_EQ(c.allocation, Allocation::lazy);
  EXPECT_EQ(
    make_config({{"size", "7G"}, {"idle-release", "5m"}, {"allocation", "lazy"}}).idle_release,
    milliseconds(300000));
  EXPECT_EQ(make_config({{"size", "7G"}, {"idle-release", "2"}}).idle_release, milliseconds(2000));
  expect_error({{"size", "7G"}, {"idle-release", "soon"}}, "idle-release=soon: expected 'off'");
  expect_error({{"size", "7G"}, {"idle-release", "0"}}, "idle-release=0: expected 'off'");
  expect_error({{"size", "7G"}, {"idle-release", "30s"}, {"allocation", "eager"}},
               "idle-release= with allocation=eager");
}

TEST(Config, Durations)
{
  using std::chrono::milliseconds;
  EXPECT_EQ(parse_duration("45"), milliseconds(45000));
  EXPECT_EQ(parse_duration("45s"), milliseconds(45000));
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300000));
  EXPECT_EQ(parse_duration("5min"), milliseconds(300000));
  EXPECT_EQ(parse_duration("2h"), milliseconds(7200000));
  EXPECT_EQ(parse_duration("168h"), milliseconds(uint64_t{168} * 3600 * 1000));
  for (const char *bad :
       {"", "s", "0", "0s", "-5s", "5 s", "5x", "1.5s", "169h", "99999999999999999999"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}
