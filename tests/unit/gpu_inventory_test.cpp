#include "cuda/gpu_inventory.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace vram;

namespace {

Inventory two_gpus()
{
  Inventory inv;
  inv.driver_version = 13000;
  GpuInfo a;
  a.index = 0;
  a.name = "NVIDIA H100 80GB HBM3";
  a.uuid = *parse_gpu_uuid("GPU-8a3c1f2e-0b4d-4e5f-9a6b-7c8d9e0f1a2b");
  a.pci = *parse_pci_address("0000:01:00.0");
  a.total = 85899345920;
  a.free = 85000000000;
  GpuInfo b = a;
  b.index = 1;
  b.name = "Fake GPU\twith a tab";
  b.uuid[15] = 0x2c;
  b.pci.bus = 0x41;
  b.free.reset();
  b.display = true;
  inv.gpus = {a, b};
  return inv;
}

} // namespace

TEST(Inventory, SerializationRoundTrips)
{
  Inventory inv = two_gpus();
  inv.error = "line one\nline two";
  auto back = deserialize(serialize(inv));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->driver_version, 13000);
  EXPECT_EQ(back->error, inv.error);
  ASSERT_EQ(back->gpus.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back->gpus[i].index, inv.gpus[i].index);
    EXPECT_EQ(back->gpus[i].name, inv.gpus[i].name);
    EXPECT_EQ(back->gpus[i].uuid, inv.gpus[i].uuid);
    EXPECT_EQ(back->gpus[i].pci, inv.gpus[i].pci);
    EXPECT_EQ(back->gpus[i].total, inv.gpus[i].total);
    EXPECT_EQ(back->gpus[i].free, inv.gpus[i].free);
    EXPECT_EQ(back->gpus[i].display, inv.gpus[i].display);
  }
}

TEST(Inventory, BackslashesNewlinesAndTabsSurviveTheRoundTrip)
{
  Inventory inv = two_gpus();
  // A literal backslash-n must stay two characters, not become a newline.
  inv.error = "cannot load C:\\new\\libcuda.so.1\nsecond line\tand a tab\\";
  inv.gpus[0].name = "odd \\n name\nover two lines";
  const std::string text = serialize(inv);
  // One record per line: nothing in a text field may break a line.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);
  auto back = deserialize(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->error, inv.error);
  EXPECT_EQ(back->gpus[0].name, inv.gpus[0].name);
  EXPECT_EQ(back->gpus[1].name, inv.gpus[1].name);
}

TEST(Inventory, AnUnknownEscapeIsRejected)
{
  EXPECT_FALSE(deserialize("driver\t13000\nerror\tbad \\q escape\n"));
  EXPECT_FALSE(deserialize("driver\t13000\nerror\tends in a backslash \\\n"));
}

TEST(Inventory, GarbageIsRejected)
{
  EXPECT_FALSE(deserialize(""));
  EXPECT_FALSE(deserialize("hello\n"));
  EXPECT_FALSE(deserialize("driver\t13000\ngpu\t0\tx\n"));
}

TEST(Inventory, SelectsByIndexUuidAndPci)
{
  const Inventory inv = two_gpus();
  std::string error;
  EXPECT_EQ(select_gpu(inv, *parse_device_selector("1"), error), &inv.gpus[1]);
  EXPECT_EQ(
    select_gpu(inv, *parse_device_selector("GPU-8a3c1f2e-0b4d-4e5f-9a6b-7c8d9e0f1a2c"), error),
    &inv.gpus[1]);
  EXPECT_EQ(select_gpu(inv, *parse_device_selector("00000000:41:00.0"), error), &inv.gpus[1]);
  EXPECT_EQ(select_gpu(inv, *parse_device_selector("0000:01:00.0"), error), &inv.gpus[0]);
}

TEST(Inventory, NoMatchListsTheGpusThatExist)
{
  const Inventory inv = two_gpus();
  std::string error;
  EXPECT_EQ(select_gpu(inv, *parse_device_selector("2"), error), nullptr);
  EXPECT_NE(error.find("device=2: no such GPU, this machine has 2 GPUs (device=0 to 1)"),
            std::string::npos)
    << error;
  EXPECT_NE(error.find("NVIDIA H100 80GB HBM3"), std::string::npos) << error;
  EXPECT_EQ(select_gpu(inv, *parse_device_selector("0000:02:00.0"), error), nullptr);
  EXPECT_NE(error.find("no GPU has this PCI bus id"), std::string::npos) << error;
}

TEST(Inventory, DriverVersionFormat)
{
  EXPECT_EQ(format_driver_version(13000), "13.0");
  EXPECT_EQ(format_driver_version(12080), "12.8");
}
